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
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(sos) => bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
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
