//! Any bytes as an uploaded photo, followed up to the detector's input: decoding within limits
//! (JPEG or PNG only, size checked before allocation, EXIF orientation applied), the detector's
//! scaled and padded input for both detector models at two sizes, and the 5-point alignment with
//! landmarks taken from the input's last bytes (so NaN, infinite and degenerate points are tried).
#![no_main]

use consentry_face::align::align;
use consentry_face::decode::{decode_image, DecodeLimits};
use consentry_face::detect::{detector_input, DetectorModel};
use libfuzzer_sys::fuzz_target;

/// Smaller than the server's (10 MiB, 40 MP) so one input stays fast under AddressSanitizer;
/// the code paths are the same.
const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 2 << 20,
    max_pixels: 4_000_000,
    max_side: 4096,
};

fuzz_target!(|data: &[u8]| {
    let Ok(img) = decode_image(data, &LIMITS) else {
        return;
    };
    let (w, h) = img.dimensions();
    assert!(w > 0 && h > 0 && w <= LIMITS.max_side && h <= LIMITS.max_side);
    assert!(u64::from(w) * u64::from(h) <= LIMITS.max_pixels);
    assert_eq!(img.as_raw().len(), w as usize * h as usize * 3);
    for model in [DetectorModel::YuNet, DetectorModel::Scrfd] {
        for side in [160, 320] {
            let (iw, ih, values) = detector_input(&img, side, model).expect("detector input");
            assert!(iw % 32 == 0 && ih % 32 == 0 && iw > 0 && ih > 0);
            assert!(
                iw.max(ih) <= side as usize + 31,
                "{iw}x{ih} for side {side}"
            );
            assert_eq!(values.len(), 3 * iw * ih);
            assert!(values.iter().all(|v| v.is_finite()));
        }
    }
    let mut landmarks = [[0f32; 2]; 5];
    let tail = &data[data.len().saturating_sub(40)..];
    for (i, chunk) in tail.chunks_exact(4).enumerate() {
        landmarks[i / 2][i % 2] = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    if let Some(face) = align(&img, &landmarks) {
        assert_eq!(face.rgb.len(), 112 * 112 * 3);
    }
});
