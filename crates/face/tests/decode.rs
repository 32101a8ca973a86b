//! Bad input: every case gets its own code, and nothing panics.

use consentry_face::decode::{decode_image, DecodeLimits};
use consentry_types::{ErrorCode, HasErrorCode};

use crate::common::photo;

fn code(bytes: &[u8], limits: &DecodeLimits) -> Result<(u32, u32), ErrorCode> {
    decode_image(bytes, limits)
        .map(|i| i.dimensions())
        .map_err(|e| e.code())
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::GrayImage::new(width, height);
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode");
    out.into_inner()
}

#[test]
fn each_bad_input_has_its_code() {
    let limits = DecodeLimits::default();
    let jpeg = std::fs::read(photo("obama2.jpg")).expect("photo");
    assert!(code(&jpeg, &limits).is_ok());
    assert_eq!(
        code(b"hello, this is text", &limits),
        Err(ErrorCode::NotAnImage)
    );
    assert_eq!(code(&[], &limits), Err(ErrorCode::NotAnImage));
    assert_eq!(
        code(&jpeg[..jpeg.len() / 3], &limits),
        Err(ErrorCode::TruncatedImage)
    );
    assert_eq!(code(&jpeg[..200], &limits), Err(ErrorCode::TruncatedImage));
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    assert_eq!(code(gif, &limits), Err(ErrorCode::UnsupportedFormat));
    assert_eq!(
        code(b"BM\x00\x00\x00\x00\x00\x00", &limits),
        Err(ErrorCode::UnsupportedFormat)
    );
}

#[test]
fn oversized_images_are_refused_before_decoding() {
    // 20000 x 1 compresses to a few bytes but exceeds the side limit.
    let wide = png(20_000, 1);
    assert!(wide.len() < 2_000);
    assert_eq!(
        code(&wide, &DecodeLimits::default()),
        Err(ErrorCode::ImageTooLarge)
    );
    let small_limit = DecodeLimits {
        max_pixels: 5_000,
        ..DecodeLimits::default()
    };
    assert_eq!(
        code(&png(100, 100), &small_limit),
        Err(ErrorCode::ImageTooLarge)
    );
    let byte_limit = DecodeLimits {
        max_bytes: 100,
        ..DecodeLimits::default()
    };
    assert_eq!(
        code(&png(100, 100).repeat(10), &byte_limit),
        Err(ErrorCode::PayloadTooLarge)
    );
}

#[test]
fn grey_and_alpha_pngs_decode_to_rgb() {
    let grey = png(64, 48);
    assert_eq!(code(&grey, &DecodeLimits::default()), Ok((64, 48)));
    let rgba = image::RgbaImage::new(10, 20);
    let mut out = std::io::Cursor::new(Vec::new());
    rgba.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode");
    assert_eq!(code(out.get_ref(), &DecodeLimits::default()), Ok((10, 20)));
}

#[test]
fn corrupted_images_never_panic() {
    // Deterministic xorshift so a failure reproduces.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let limits = DecodeLimits::default();
    let seeds = [
        std::fs::read(photo("yaoming.jpg")).expect("photo"),
        png(40, 30),
    ];
    for seed in &seeds {
        for _ in 0..150 {
            let mut bytes = seed.clone();
            for _ in 0..(1 + next() % 8) {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            let cut = (next() as usize) % (bytes.len() + 1);
            let _ = decode_image(&bytes[..cut.max(bytes.len() / 2)], &limits);
            let _ = decode_image(&bytes, &limits);
        }
    }
}
