//! QR codes: a pass drawn as SVG or PNG (error correction M), and passes read back from a
//! photo of a screen or a paper (PNG or JPEG).

use image::{GrayImage, ImageFormat, Luma};
use qrcode::{Color, EcLevel, QrCode};

use crate::PassError;

/// The largest photo read, in pixels.
pub const MAX_PHOTO_PIXELS: u64 = 40_000_000;
/// The largest photo read, in bytes.
pub const MAX_PHOTO_BYTES: usize = 20 << 20;

fn code(text: &str) -> Result<QrCode, PassError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|_| PassError::Malformed("too long for a QR code"))
}

/// The QR version (1 to 40) `text` needs at error correction M.
pub fn version(text: &str) -> Result<i16, PassError> {
    match code(text)?.version() {
        qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => Ok(v),
    }
}

/// The code as an SVG document, `module` pixels a module, with the four-module quiet zone.
pub fn svg(text: &str, module: u32) -> Result<String, PassError> {
    let c = code(text)?;
    Ok(c.render::<qrcode::render::svg::Color<'_>>()
        .module_dimensions(module, module)
        .quiet_zone(true)
        .build())
}

/// The code drawn as a grey image, `module` pixels a module, with the four-module quiet zone.
pub fn image(text: &str, module: u32) -> Result<GrayImage, PassError> {
    let c = code(text)?;
    let width = u32::try_from(c.width()).map_err(|_| PassError::Malformed("size"))?;
    let colors = c.to_colors();
    let module = module.max(1);
    let side = (width + 8) * module;
    let mut img = GrayImage::from_pixel(side, side, Luma([255]));
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let i = u32::try_from(i).map_err(|_| PassError::Malformed("size"))?;
        let (x, y) = ((i % width + 4) * module, (i / width + 4) * module);
        for dy in 0..module {
            for dx in 0..module {
                img.put_pixel(x + dx, y + dy, Luma([0]));
            }
        }
    }
    Ok(img)
}

/// The code as PNG bytes.
pub fn png(text: &str, module: u32) -> Result<Vec<u8>, PassError> {
    let img = image(text, module)?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|_| PassError::Malformed("PNG encoding"))?;
    Ok(out.into_inner())
}

/// Why a photo gave no pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not a PNG or JPEG this reader decodes, or larger than its limits.
    #[error("not a readable PNG or JPEG photo (or larger than {MAX_PHOTO_PIXELS} pixels)")]
    NotAnImage,
    /// No QR code was found or none decoded.
    #[error("no QR code could be read in the photo")]
    NoCode,
}

/// The texts of the QR codes found in a PNG or JPEG photo.
pub fn read(bytes: &[u8]) -> Result<Vec<String>, ReadError> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(ReadError::NotAnImage);
    }
    let reader = || -> Result<image::ImageReader<std::io::Cursor<&[u8]>>, ReadError> {
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|_| ReadError::NotAnImage)?;
        if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
            return Err(ReadError::NotAnImage);
        }
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(MAX_PHOTO_PIXELS * 4);
        limits.max_image_width = Some(20_000);
        limits.max_image_height = Some(20_000);
        reader.limits(limits);
        Ok(reader)
    };
    // The header first: no pixel is allocated for a photo over the limit.
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|_| ReadError::NotAnImage)?;
    if u64::from(w) * u64::from(h) > MAX_PHOTO_PIXELS {
        return Err(ReadError::NotAnImage);
    }
    let img = reader()?
        .decode()
        .map_err(|_| ReadError::NotAnImage)?
        .into_luma8();
    let found = read_grey(&img);
    if found.is_empty() {
        Err(ReadError::NoCode)
    } else {
        Ok(found)
    }
}

/// The texts of the QR codes found in a grey image. A photo of a screen at an angle defeats
/// the detector at some scales and not others, so when nothing decodes at full size it tries
/// again at smaller ones.
pub fn read_grey(img: &GrayImage) -> Vec<String> {
    let found = decode_grey(img);
    if !found.is_empty() {
        return found;
    }
    for scale in [0.75, 0.5, 0.6, 0.9] {
        let (w, h) = (
            (f64::from(img.width()) * scale).round() as u32,
            (f64::from(img.height()) * scale).round() as u32,
        );
        if w < 21 || h < 21 {
            break;
        }
        let small = image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle);
        let found = decode_grey(&small);
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

fn decode_grey(img: &GrayImage) -> Vec<String> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img.as_raw()[y * w + x]);
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}
