#!/usr/bin/env python3
"""Writes the hostile corpus's binary files into this folder (run from anywhere; standard
library only). Input: fuzz/corpus/image_decode/t1-small.jpg, tests/fixtures/t1.jpg scaled to
96 pixels wide by ffmpeg (see tests/fixtures/PROVENANCE.md for t1.jpg). The files are committed;
this script is how they were made, so that anyone can check there is nothing else in them."""
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
T1 = (HERE.parent.parent / "fuzz" / "corpus" / "image_decode" / "t1-small.jpg").read_bytes()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, idat: bytes, color_type: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def sof_patched(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF0/SOF2) declaring another size."""
    at = next(i for i in range(len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] in (0xC0, 0xC2))
    out = bytearray(jpeg)
    out[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(out)


files = {
    # A few hundred bytes that declare 65535 x 65535 pixels (12.9 GB as RGB).
    "png-bomb-65535.png": png(65535, 65535, zlib.compress(b"\x00" * 1024)),
    # Just over the 40-megapixel limit (6500 x 6500), declared.
    "png-42mp.png": png(6500, 6500, zlib.compress(b"\x00" * 1024)),
    # A real 36-megapixel grey image within every limit, 35 kB on the wire: decoded in full.
    "png-36mp-zeros.png": png(6000, 6000, zlib.compress(b"\x00" * (6001 * 6000), 9), 0),
    # A photo whose frame header claims 65500 x 65500.
    "jpeg-bomb-65500.jpg": sof_patched(T1, 65500, 65500),
    # The first half of a photo.
    "jpeg-truncated.jpg": T1[: len(T1) // 2],
    # A PNG signature in front of a JPEG.
    "polyglot-png-jpeg.png": b"\x89PNG\r\n\x1a\n" + T1,
    # A JPEG with a zip archive appended (a classic polyglot): the photo is still the photo.
    "polyglot-jpeg-zip.jpg": T1 + b"PK\x03\x04" + b"\x00" * 26 + b"PK\x05\x06" + b"\x00" * 18,
    # A GIF (a format not accepted) and a ZIP sent as a photo.
    "tiny.gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
    "archive.zip": b"PK\x05\x06" + b"\x00" * 18,
    # A PNG whose image data checksum is wrong (byte 54 is in the IDAT chunk's CRC).
    "png-bad-crc.png": bytes(b ^ 0xFF if i == 54 else b for i, b in enumerate(png(4, 4, zlib.compress(b"\x00" * 52)))),
    # A JPEG whose EXIF block points its first directory far outside itself.
    "jpeg-exif-bad-offset.jpg": T1[:2]
    + b"\xff\xe1"
    + struct.pack(">H", 2 + 6 + 8)
    + b"Exif\x00\x00II*\x00\xff\xff\xff\x7f"
    + T1[2:],
}

for name, data in files.items():
    (HERE / name).write_bytes(data)
    print(f"{name}: {len(data)} bytes")
