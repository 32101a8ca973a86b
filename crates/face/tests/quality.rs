//! The enrolment quality gate: each failure with its own code.

use consentry_face::{FaceError, QualityGate};
use consentry_types::{ErrorCode, HasErrorCode};
use image::imageops::{self, FilterType};
use image::RgbImage;

use crate::common::{engine, load};

fn enrol_code(img: &RgbImage) -> Result<(), ErrorCode> {
    engine()
        .enrol(img, &QualityGate::default())
        .map(|_| ())
        .map_err(|e: FaceError| e.code())
}

#[test]
fn a_good_portrait_passes_with_its_measurements() {
    for name in ["obama.jpg", "obama2.jpg", "biden.jpg"] {
        let (face, report) = engine()
            .enrol(&load(name), &QualityGate::default())
            .expect(name);
        assert_eq!(face.embedding.0.len(), 128);
        assert!(
            report.eye_distance > 40.0 && report.yaw_degrees.abs() < 35.0,
            "{name}: {report:?}"
        );
        assert!(
            report.sharpness > QualityGate::default().min_sharpness,
            "{name}: {report:?}"
        );
    }
}

#[test]
fn group_photo_is_multiple_faces() {
    assert_eq!(enrol_code(&load("t1.jpg")), Err(ErrorCode::MultipleFaces));
}

#[test]
fn blank_image_is_no_face() {
    let blank = RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]));
    assert_eq!(enrol_code(&blank), Err(ErrorCode::NoFace));
    assert_eq!(
        engine()
            .embed_primary(&blank)
            .map(|_| ())
            .map_err(|e| e.code()),
        Err(ErrorCode::NoFace)
    );
}

#[test]
fn tiny_face_is_too_small() {
    let img = load("obama2.jpg");
    let (w, h) = img.dimensions();
    let tiny = imageops::resize(&img, w / 6, h / 6, FilterType::Triangle);
    // Pad it into a larger canvas so the detector sees a small face, not a small image.
    let mut canvas = RgbImage::from_pixel(640, 480, image::Rgb([90, 90, 90]));
    imageops::replace(&mut canvas, &tiny, 200, 150);
    assert_eq!(enrol_code(&canvas), Err(ErrorCode::FaceTooSmall));
}

#[test]
fn blurred_face_is_too_blurry() {
    let img = load("obama2.jpg");
    let blurred = imageops::blur(&img, 6.0);
    assert_eq!(enrol_code(&blurred), Err(ErrorCode::TooBlurry));
}

#[test]
fn face_cut_by_the_border_is_refused() {
    let img = load("obama.jpg");
    let face = engine().embed_primary(&img).expect("face").detection;
    // Cut the image through the middle of the face, right of the nose.
    let cut_x = face.landmarks[2][0] as u32;
    let cut = imageops::crop_imm(&img, 0, 0, cut_x + 5, img.height()).to_image();
    let code = enrol_code(&cut);
    assert!(
        matches!(
            code,
            Err(ErrorCode::FaceCutOff) | Err(ErrorCode::FaceTurned) | Err(ErrorCode::NoFace)
        ),
        "{code:?}"
    );
    assert!(code.is_err());
}

#[test]
fn low_confidence_and_turned_thresholds_apply() {
    let img = load("obama2.jpg");
    let strict = QualityGate {
        min_score: 0.999,
        ..QualityGate::default()
    };
    let r = engine()
        .enrol(&img, &strict)
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(r, Err(ErrorCode::LowConfidence));
    let frontal_only = QualityGate {
        max_yaw_degrees: 0.01,
        ..QualityGate::default()
    };
    let r = engine()
        .enrol(&img, &frontal_only)
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(r, Err(ErrorCode::FaceTurned));
}
