//! The quality gate enrolment uses: one clear, frontal, large enough, sharp face.
//!
//! Each failure has its own error (and so its own stable code), checked in a fixed order so a
//! photo gets the most basic reason first: no face, several faces, low confidence, cut off at
//! the border, too small, turned too far, too blurry.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::{AlignedFace, CROP};
use crate::detect::Detection;
use crate::FaceError;

/// Enrolment thresholds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct QualityGate {
    /// Minimum inter-eye distance in pixels of the original image.
    pub min_eye_distance: f32,
    /// Minimum variance of the Laplacian of the aligned grey crop.
    pub min_sharpness: f32,
    /// Maximum estimated yaw in degrees.
    pub max_yaw_degrees: f32,
    /// Minimum detector score.
    pub min_score: f32,
}

impl Default for QualityGate {
    fn default() -> Self {
        QualityGate {
            min_eye_distance: 28.0,
            min_sharpness: 40.0,
            max_yaw_degrees: 40.0,
            min_score: 0.8,
        }
    }
}

/// What the gate measured on the face it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// Inter-eye distance in pixels.
    pub eye_distance: f32,
    /// Variance of the Laplacian of the aligned grey crop.
    pub sharpness: f32,
    /// Estimated yaw in degrees (signed; 0 is frontal).
    pub yaw_degrees: f32,
    /// Detector score.
    pub score: f32,
}

/// Index of the largest face (by box area).
pub fn largest(dets: &[Detection]) -> Option<usize> {
    (0..dets.len()).max_by(|&a, &b| dets[a].area().total_cmp(&dets[b].area()))
}

/// Index of the primary face of a photo: the largest, with the area that lies inside the image
/// counted and weighted down the further the face is from the centre (Gaussian, σ = 0.15 of the
/// diagonal). A bystander's face cut by the frame edge therefore loses to the central subject of
/// similar size, as a person expects at a kiosk or in a portrait; of two central faces the larger
/// still wins. Measured on LFW dev: plain "largest" picked the wrong person in several pairs.
pub fn primary(dets: &[Detection], width: u32, height: u32) -> Option<usize> {
    let (w, h) = (width as f32, height as f32);
    let diag2 = (w * w + h * h).max(1.0);
    let weight = |d: &Detection| {
        let [x, y, bw, bh] = d.bbox;
        let inside =
            ((x + bw).min(w) - x.max(0.0)).max(0.0) * ((y + bh).min(h) - y.max(0.0)).max(0.0);
        let (cx, cy) = (x + bw / 2.0 - w / 2.0, y + bh / 2.0 - h / 2.0);
        let r2 = (cx * cx + cy * cy) / diag2;
        inside * (-r2 / (2.0 * 0.15 * 0.15)).exp()
    };
    (0..dets.len()).max_by(|&a, &b| weight(&dets[a]).total_cmp(&weight(&dets[b])))
}

/// Yaw estimate from landmarks in aligned coordinates: the nose tip's offset from the eyes'
/// midpoint, relative to half the eye distance, is `(d/e)·tan(yaw)` for a nose protruding `d` in
/// front of eyes `±e` apart; `d/e ≈ 0.8` for an average adult face.
pub fn yaw_degrees(face: &AlignedFace, det: &Detection) -> f32 {
    let t = &face.transform;
    let [le, re, nose] = [
        t.apply(det.landmarks[0]),
        t.apply(det.landmarks[1]),
        t.apply(det.landmarks[2]),
    ];
    let half = ((re[0] - le[0]) / 2.0).abs().max(1.0);
    let ratio = (nose[0] - (le[0] + re[0]) / 2.0) / half;
    (ratio / 0.8).atan().to_degrees()
}

/// Variance of the 4-neighbour Laplacian over the inner part of the aligned grey crop.
pub fn sharpness(face: &AlignedFace) -> f32 {
    let grey: Vec<f32> = face
        .rgb
        .chunks_exact(3)
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let (lo, hi) = (16, CROP - 16);
    let mut values = Vec::with_capacity((hi - lo) * (hi - lo));
    for y in lo..hi {
        for x in lo..hi {
            let c = grey[y * CROP + x];
            let lap = grey[(y - 1) * CROP + x]
                + grey[(y + 1) * CROP + x]
                + grey[y * CROP + x - 1]
                + grey[y * CROP + x + 1]
                - 4.0 * c;
            values.push(lap);
        }
    }
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n
}

/// Picks the one face to enrol and checks it. `align` aligns a detection (the engine's).
pub fn check(
    img: &RgbImage,
    dets: &[Detection],
    gate: &QualityGate,
    align: impl Fn(&Detection) -> Result<AlignedFace, FaceError>,
) -> Result<(usize, AlignedFace, QualityReport), FaceError> {
    let idx = primary(dets, img.width(), img.height()).ok_or(FaceError::NoFace)?;
    // Faces too small to enrol do not count as rivals: a passer-by far behind does not block.
    let candidates = dets
        .iter()
        .filter(|d| d.eye_distance() >= gate.min_eye_distance)
        .count();
    if candidates > 1 {
        return Err(FaceError::MultipleFaces(candidates));
    }
    let det = &dets[idx];
    if det.score < gate.min_score {
        return Err(FaceError::LowConfidence {
            score: det.score,
            min: gate.min_score,
        });
    }
    let (w, h) = (img.width() as f32, img.height() as f32);
    if det
        .landmarks
        .iter()
        .any(|p| p[0] < 0.0 || p[1] < 0.0 || p[0] >= w || p[1] >= h)
    {
        return Err(FaceError::FaceCutOff);
    }
    let eye_distance = det.eye_distance();
    if eye_distance < gate.min_eye_distance {
        return Err(FaceError::FaceTooSmall {
            eye_distance,
            min: gate.min_eye_distance,
        });
    }
    let face = align(det)?;
    let yaw = yaw_degrees(&face, det);
    if yaw.abs() > gate.max_yaw_degrees {
        return Err(FaceError::FaceTurned {
            yaw_degrees: yaw.abs(),
            max: gate.max_yaw_degrees,
        });
    }
    let sharp = sharpness(&face);
    if sharp < gate.min_sharpness {
        return Err(FaceError::TooBlurry {
            sharpness: sharp,
            min: gate.min_sharpness,
        });
    }
    let report = QualityReport {
        eye_distance,
        sharpness: sharp,
        yaw_degrees: yaw,
        score: det.score,
    };
    Ok((idx, face, report))
}
