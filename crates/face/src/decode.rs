//! Image decoding with limits: the only place untrusted image bytes are parsed.
//!
//! The header is read first and its declared size checked against [`DecodeLimits`] before any
//! pixel buffer is allocated, so a small file that declares a gigapixel image (a decompression
//! bomb) is refused cheaply. EXIF orientation is applied, so phone photos come out upright.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage};

use crate::FaceError;

/// Limits applied to every decoded image.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Largest encoded file accepted, in bytes.
    pub max_bytes: usize,
    /// Largest width × height accepted.
    pub max_pixels: u64,
    /// Largest width or height accepted.
    pub max_side: u32,
}

impl Default for DecodeLimits {
    /// 10 MiB, 40 megapixels, 12000 px per side: more than any camera in a kiosk or phone.
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 10 << 20,
            max_pixels: 40_000_000,
            max_side: 12_000,
        }
    }
}

/// Decodes JPEG or PNG bytes into an upright 8-bit RGB image.
pub fn decode_image(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, FaceError> {
    if bytes.len() > limits.max_bytes {
        return Err(FaceError::PayloadTooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| FaceError::NotAnImage)?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
        return Err(FaceError::UnsupportedFormat(
            format!("{format:?}").to_lowercase(),
        ));
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(FaceError::Truncated(
            "JPEG data ends before its end-of-image marker".into(),
        ));
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(e, (0, 0), limits))?;
    let (width, height) = decoder.dimensions();
    let too_large = FaceError::ImageTooLarge {
        width,
        height,
        max_pixels: limits.max_pixels,
        max_side: limits.max_side,
    };
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(too_large);
    }
    if width == 0 || height == 0 {
        return Err(FaceError::Truncated(
            "image has zero width or height".into(),
        ));
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    // 16-bit RGBA is the widest layout: 8 bytes a pixel, plus slack for the decoder's own buffers.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    decoder
        .set_limits(decoder_limits)
        .map_err(|_| too_large_again(width, height, limits))?;
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| map_image_error(e, (width, height), limits))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img.into_rgb8())
}

/// The JPEG decoder fills a cut-off scan with grey instead of failing, so completeness is checked
/// here: the end-of-image marker `FF D9` must follow the last start-of-scan `FF DA`. Inside
/// entropy-coded data every `FF` byte is stuffed as `FF 00`, so neither marker occurs by chance.
///
/// The same test, scanning only the file's two ends instead of its whole scan data twice: the
/// last `FF D9` is looked for from the end (where it is), and the file is complete when no
/// `FF DA` comes after it and one comes before it (the first is near the start).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const SOS: [u8; 2] = [0xFF, 0xDA];
    const EOI: [u8; 2] = [0xFF, 0xD9];
    let Some(eoi) = bytes.windows(2).rposition(|w| w == EOI) else {
        return false;
    };
    !bytes[eoi..].windows(2).any(|w| w == SOS) && bytes[..eoi].windows(2).any(|w| w == SOS)
}

fn too_large_again(width: u32, height: u32, limits: &DecodeLimits) -> FaceError {
    FaceError::ImageTooLarge {
        width,
        height,
        max_pixels: limits.max_pixels,
        max_side: limits.max_side,
    }
}

/// A decoder's refusal: its own limits are the size limit (`image_too_large`), not a truncated
/// file.
fn map_image_error(e: ImageError, (width, height): (u32, u32), limits: &DecodeLimits) -> FaceError {
    match e {
        ImageError::Unsupported(u) => FaceError::UnsupportedFormat(u.to_string()),
        ImageError::Limits(_) => too_large_again(width, height, limits),
        other => FaceError::Truncated(other.to_string()),
    }
}

/// Reads and decodes a file, with the same limits (the file size is checked before reading).
pub fn read_image(path: &std::path::Path, limits: &DecodeLimits) -> Result<RgbImage, FaceError> {
    let unreadable = |source| FaceError::FileUnreadable {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.len() > limits.max_bytes as u64 {
        return Err(FaceError::PayloadTooLarge {
            size: usize::try_from(meta.len()).unwrap_or(usize::MAX),
            max: limits.max_bytes,
        });
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    decode_image(&bytes, limits)
}

#[cfg(test)]
mod tests {
    use super::jpeg_is_complete;

    /// The definition: an end-of-image marker somewhere after the last start-of-scan.
    fn by_definition(bytes: &[u8]) -> bool {
        let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
        last_sos.is_some_and(|sos| bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]))
    }

    #[test]
    fn completeness_check_agrees_with_its_definition() {
        // Short byte strings drawn mostly from the marker bytes, so markers occur, overlap
        // (FF FF DA, FF D9 FF DA) and cut each other off in every order.
        let alphabet = [0xFFu8, 0xDA, 0xD9, 0x00, 0x12];
        let mut seed = 0x2545_F491u32;
        let (mut complete, mut incomplete) = (0, 0);
        for len in 0..12usize {
            for _ in 0..4000 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        alphabet[(seed >> 24) as usize % alphabet.len()]
                    })
                    .collect();
                let expected = by_definition(&bytes);
                assert_eq!(jpeg_is_complete(&bytes), expected, "{bytes:02X?}");
                if expected {
                    complete += 1;
                } else {
                    incomplete += 1;
                }
            }
        }
        // Both answers were exercised, many times.
        assert!(
            complete > 500 && incomplete > 500,
            "{complete} / {incomplete}"
        );
    }
}
