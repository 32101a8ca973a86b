//! Presentation-attack detection: the passive check on one frame, and the per-frame signals the
//! active challenge is judged from (head pose, eye state, landmarks).
//!
//! Passive profiles ([`PadProfile`]):
//! - `faceplugin` (the default, shipped; MIT, from the npm package `faceplugin-face-recognition-js`):
//!   the detector's box enlarged 2.7× about its centre (kept inside the image), resized to
//!   128×128, **BGR** 0..255, scored with its mirror image; the softmax's class 0 is "real". The
//!   package's JavaScript feeds RGB (a canvas's order), but the network answers as one trained on
//!   OpenCV's BGR frames: in BGR it separates the NUAA dev subjects completely, in RGB it rejects
//!   one real face in eighteen (docs/liveness.md).
//! - `minifasnet` (supported, not shipped; Apache-2.0, the operator gives the directory holding
//!   `2.7_80x80_MiniFASNetV2.onnx` and `4_0_0_80x80_MiniFASNetV1SE.onnx`): the box made square,
//!   then enlarged 2.7× and 4.0×, each 80×80 BGR 0..255; the two softmaxes are added, as upstream
//!   does, and class 1 is "real".
//!
//! The challenge signals come from the same npm package: a 68-point landmark model (64×64 gray
//! face box), an eye-state model (24×24 gray eye crops around the landmarks) and a HopeNet-style
//! pose model (the box enlarged by a quarter on each side, 224×224 RGB with ImageNet
//! normalisation, 66 bins of 3° per angle).

use std::path::PathBuf;

use image::RgbImage;
use ort::value::TensorRef;
use serde::Serialize;

use crate::detect::Detection;
use crate::runtime::{Assets, SessionPool};
use crate::FaceError;

/// Which passive presentation-attack model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PadProfile {
    /// faceplugin's `fr_liveness` (shipped).
    Faceplugin,
    /// The MiniFASNet pair from this directory (operator-supplied).
    MiniFasNet(PathBuf),
}

impl PadProfile {
    /// Parses `faceplugin` or `minifasnet:DIR`.
    pub fn parse(text: &str) -> Result<PadProfile, String> {
        match text.split_once(':') {
            None if text == "faceplugin" => Ok(PadProfile::Faceplugin),
            Some(("minifasnet", dir)) if !dir.is_empty() => {
                Ok(PadProfile::MiniFasNet(PathBuf::from(dir)))
            }
            _ => Err(format!(
                "{text:?}: a PAD profile is `faceplugin` or `minifasnet:DIR` (DIR holding \
                 2.7_80x80_MiniFASNetV2.onnx and 4_0_0_80x80_MiniFASNetV1SE.onnx)"
            )),
        }
    }

    /// The profile's name.
    pub fn name(&self) -> &'static str {
        match self {
            PadProfile::Faceplugin => "faceplugin",
            PadProfile::MiniFasNet(_) => "minifasnet",
        }
    }

    /// The default threshold on the "real" probability: at or above it, a frame is bona fide.
    pub fn default_threshold(&self) -> f32 {
        match self {
            PadProfile::Faceplugin => FACEPLUGIN_THRESHOLD,
            PadProfile::MiniFasNet(_) => 0.5,
        }
    }
}

/// The faceplugin model's default threshold: its softmax's own boundary, not fitted to any data
/// (on the NUAA dev subjects no bona fide face scores under 0.84 and no attack over 0.16;
/// docs/liveness.md).
pub const FACEPLUGIN_THRESHOLD: f32 = 0.5;

struct Net {
    pool: SessionPool,
    /// Crop scales about the box (each one inference; their scores are averaged).
    scales: Vec<f32>,
    /// Also score each crop's mirror image.
    flip: bool,
    /// Make the detector's box square before enlarging it ([`square_box`]).
    square: bool,
    size: usize,
    bgr: bool,
    real_class: usize,
}

/// The passive check.
pub struct PassiveDetector {
    profile: PadProfile,
    nets: Vec<Net>,
    /// sha256 of each model file.
    pub digests: Vec<String>,
}

impl std::fmt::Debug for PassiveDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassiveDetector")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// The face box `bbox` (`[x, y, w, h]`) scaled about its centre by `scale` (less when the image
/// is too small), shifted to lie inside the image: `[x0, y0, w, h]` in whole pixels, as the
/// upstream preprocessing computes it.
pub fn scaled_box(bbox: [f32; 4], width: u32, height: u32, scale: f32) -> [u32; 4] {
    let (sw, sh) = (width as f32, height as f32);
    let [x, y, w, h] = bbox;
    let (w, h) = (w.max(1.0), h.max(1.0));
    let s = scale.min((sh - 1.0) / h).min((sw - 1.0) / w).max(0.0);
    let (nw, nh) = (w * s, h * s);
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    let (mut x0, mut y0, mut x1, mut y1) =
        (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if x0 < 0.0 {
        x1 -= x0;
        x0 = 0.0;
    }
    if y0 < 0.0 {
        y1 -= y0;
        y0 = 0.0;
    }
    if x1 > sw - 1.0 {
        x0 -= x1 - sw + 1.0;
        x1 = sw - 1.0;
    }
    if y1 > sh - 1.0 {
        y0 -= y1 - sh + 1.0;
        y1 = sh - 1.0;
    }
    let x0 = x0.max(0.0) as u32;
    let y0 = y0.max(0.0) as u32;
    let w = ((x1 - x0 as f32) as u32).clamp(1, width.saturating_sub(x0).max(1));
    let h = ((y1 - y0 as f32) as u32).clamp(1, height.saturating_sub(y0).max(1));
    [x0, y0, w, h]
}

/// The region `[x0, y0, w, h]` of `img`, resized to `out_w`×`out_h` by bilinear interpolation
/// with pixel centres aligned (OpenCV's `INTER_LINEAR`), as interleaved RGB.
pub fn crop_resize(img: &RgbImage, region: [u32; 4], out_w: usize, out_h: usize) -> Vec<u8> {
    let [x0, y0, w, h] = region;
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let raw = img.as_raw();
    let (sx, sy) = (w as f32 / out_w as f32, h as f32 / out_h as f32);
    let px = |x: i64, y: i64, c: usize| -> f32 {
        let (x, y) = (x.clamp(0, iw - 1), y.clamp(0, ih - 1));
        f32::from(raw[((y * iw + x) * 3) as usize + c])
    };
    let mut out = vec![0u8; out_w * out_h * 3];
    for v in 0..out_h {
        let fy = ((v as f32 + 0.5) * sy - 0.5).max(0.0);
        let (y, dy) = (fy.floor() as i64, fy - fy.floor());
        let yl = (y + i64::from(y0)).min(i64::from(y0 + h) - 1);
        let yh = (y + 1 + i64::from(y0)).min(i64::from(y0 + h) - 1);
        for u in 0..out_w {
            let fx = ((u as f32 + 0.5) * sx - 0.5).max(0.0);
            let (x, dx) = (fx.floor() as i64, fx - fx.floor());
            let xl = (x + i64::from(x0)).min(i64::from(x0 + w) - 1);
            let xh = (x + 1 + i64::from(x0)).min(i64::from(x0 + w) - 1);
            for c in 0..3 {
                let top = px(xl, yl, c) * (1.0 - dx) + px(xh, yl, c) * dx;
                let bottom = px(xl, yh, c) * (1.0 - dx) + px(xh, yh, c) * dx;
                out[(v * out_w + u) * 3 + c] =
                    (top * (1.0 - dy) + bottom * dy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn run(
    pool: &SessionPool,
    shape: [usize; 4],
    data: &[f32],
    outputs: &[&str],
) -> Result<Vec<Vec<f32>>, FaceError> {
    pool.with(|session| {
        let tensor = TensorRef::from_array_view((shape, data))?;
        let out = session.run(ort::inputs!["input" => tensor])?;
        outputs
            .iter()
            .map(|name| {
                let v = out
                    .get(*name)
                    .ok_or_else(|| FaceError::Inference(format!("output {name} missing")))?;
                Ok(v.try_extract_tensor::<f32>()?.1.to_vec())
            })
            .collect()
    })
}

/// Planar `[3, h, w]` floats from interleaved RGB, in the given channel order, `f(value)`.
fn planar(rgb: &[u8], w: usize, h: usize, bgr: bool, f: impl Fn(usize, f32) -> f32) -> Vec<f32> {
    let plane = w * h;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            let src = if bgr { 2 - c } else { c };
            out[c * plane + i] = f(c, f32::from(px[src]));
        }
    }
    out
}

impl PassiveDetector {
    /// Loads the profile's model(s): the shipped one from the assets (sha256-checked), or the
    /// operator's from their directory (their sha256 kept in [`digests`](Self::digests)).
    pub fn load(assets: &Assets, profile: &PadProfile, threads: usize) -> Result<Self, FaceError> {
        match profile {
            PadProfile::Faceplugin => {
                let rel = "models/faceplugin_fr_liveness.onnx";
                let pool = SessionPool::new(assets, rel, threads)?;
                let digest = crate::runtime::expected_sha256(rel)
                    .unwrap_or_default()
                    .to_string();
                Ok(PassiveDetector {
                    profile: profile.clone(),
                    // Upstream's crop (the box as found, 2.7×) in BGR, with its mirror image
                    // (docs/liveness.md).
                    nets: vec![Net {
                        pool,
                        scales: vec![2.7],
                        flip: true,
                        square: false,
                        size: 128,
                        bgr: true,
                        real_class: 0,
                    }],
                    digests: vec![digest],
                })
            }
            PadProfile::MiniFasNet(dir) => {
                let mut nets = Vec::new();
                let mut digests = Vec::new();
                for (file, scale) in [
                    ("2.7_80x80_MiniFASNetV2.onnx", 2.7),
                    ("4_0_0_80x80_MiniFASNetV1SE.onnx", 4.0),
                ] {
                    let (pool, digest) = SessionPool::from_file(assets, &dir.join(file), threads)?;
                    nets.push(Net {
                        pool,
                        scales: vec![scale],
                        flip: false,
                        square: true,
                        size: 80,
                        bgr: true,
                        real_class: 1,
                    });
                    digests.push(digest);
                }
                Ok(PassiveDetector {
                    profile: profile.clone(),
                    nets,
                    digests,
                })
            }
        }
    }

    /// The profile.
    pub fn profile(&self) -> &PadProfile {
        &self.profile
    }

    /// The probability that the face `det` in `img` is a live person (0..1): the mean of the
    /// "real" class after softmax over the profile's crops (and their mirror images, for
    /// `faceplugin`).
    pub fn score(&self, img: &RgbImage, det: &Detection) -> Result<f32, FaceError> {
        let (mut total, mut n) = (0.0, 0.0);
        for net in &self.nets {
            let bbox = if net.square {
                square_box(det.bbox)
            } else {
                det.bbox
            };
            for &scale in &net.scales {
                let region = scaled_box(bbox, img.width(), img.height(), scale);
                let rgb = crop_resize(img, region, net.size, net.size);
                let mut views = vec![rgb];
                if net.flip {
                    views.push(mirror(&views[0], net.size));
                }
                for view in &views {
                    let data = planar(view, net.size, net.size, net.bgr, |_, v| v);
                    let out = run(&net.pool, [1, 3, net.size, net.size], &data, &["output"])?;
                    total += softmax(&out[0]).get(net.real_class).copied().unwrap_or(0.0);
                    n += 1.0;
                }
            }
        }
        Ok(if n > 0.0 { total / n } else { 0.0 })
    }
}

/// YuNet's box made square (side 0.9 × its longer side) about its centre, for MiniFASNet. YuNet's
/// boxes are tall (width/height 0.75 on NUAA); MiniFASNet was trained on squarer ones, and on
/// the NUAA dev subjects the square box took its BPCER at threshold 0.5 from 3.6% to 0.2%
/// (docs/liveness.md).
fn square_box([x, y, w, h]: [f32; 4]) -> [f32; 4] {
    let side = w.max(h) * 0.9;
    [
        x + w / 2.0 - side / 2.0,
        y + h / 2.0 - side / 2.0,
        side,
        side,
    ]
}

/// A square interleaved-RGB crop mirrored left to right.
fn mirror(rgb: &[u8], size: usize) -> Vec<u8> {
    let mut out = vec![0u8; rgb.len()];
    for y in 0..size {
        for x in 0..size {
            let (d, s) = ((y * size + x) * 3, (y * size + size - 1 - x) * 3);
            out[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
        }
    }
    out
}

/// What one frame shows, for the challenge.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FrameSignals {
    /// Head yaw in degrees, HopeNet's convention: negative when the face points to the
    /// picture's left.
    pub yaw: f32,
    /// Head pitch in degrees (positive looking up).
    pub pitch: f32,
    /// Head roll in degrees.
    pub roll: f32,
    /// Probability that the eyes are closed (mean of both eyes).
    pub eyes_closed: f32,
}

/// The challenge models: landmarks, eye state, head pose.
pub struct ChallengeModels {
    landmark: SessionPool,
    eye: SessionPool,
    pose: SessionPool,
}

impl std::fmt::Debug for ChallengeModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeModels")
    }
}

fn gray(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| {
            (0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])).round()
                as u8
        })
        .collect()
}

impl ChallengeModels {
    /// Loads the three models from the assets (sha256-checked).
    pub fn load(assets: &Assets, threads: usize) -> Result<Self, FaceError> {
        Ok(ChallengeModels {
            landmark: SessionPool::new(assets, "models/faceplugin_fr_landmark.onnx", threads)?,
            eye: SessionPool::new(assets, "models/faceplugin_fr_eye.onnx", threads)?,
            pose: SessionPool::new(assets, "models/faceplugin_fr_pose.onnx", threads)?,
        })
    }

    /// The 68 landmarks of the face in `det` (image coordinates).
    pub fn landmarks(&self, img: &RgbImage, det: &Detection) -> Result<Vec<[f32; 2]>, FaceError> {
        let region = scaled_box(det.bbox, img.width(), img.height(), 1.0);
        let g = gray(&crop_resize(img, region, 64, 64));
        let data: Vec<f32> = g.iter().map(|&v| f32::from(v) / 256.0).collect();
        let out = run(&self.landmark, [1, 1, 64, 64], &data, &["output"])?;
        let [x0, y0, w, h] = region.map(|v| v as f32);
        Ok(out[0]
            .chunks_exact(2)
            .map(|p| [p[0] * w + x0, p[1] * h + y0])
            .collect())
    }

    /// The probability that the eye around landmarks `points` (6 of the 68) is closed.
    fn eye_closed(&self, img: &RgbImage, points: &[[f32; 2]]) -> Result<f32, FaceError> {
        // Centre: the mean of the upper and lower lid points; size: corner to corner × 1.6.
        let cx = (points[1][0] + points[2][0] + points[4][0] + points[5][0]) / 4.0;
        let cy = (points[1][1] + points[2][1] + points[4][1] + points[5][1]) / 4.0;
        let size = ((points[3][0] - points[0][0]) * 1.6).max(4.0);
        let x0 = (cx - size / 2.0).max(0.0) as u32;
        let y0 = (cy - size / 2.0).max(0.0) as u32;
        let side = (size as u32)
            .min(img.width().saturating_sub(x0 + 1))
            .min(img.height().saturating_sub(y0 + 1))
            .max(1);
        let g = gray(&crop_resize(img, [x0, y0, side, side], 24, 24));
        let data: Vec<f32> = g.iter().map(|&v| f32::from(v) / 255.0).collect();
        let out = run(&self.eye, [1, 1, 24, 24], &data, &["output"])?;
        Ok(softmax(&out[0]).first().copied().unwrap_or(0.0))
    }

    /// Head pose and eye state of the face in `det`.
    pub fn signals(&self, img: &RgbImage, det: &Detection) -> Result<FrameSignals, FaceError> {
        let [x, y, w, h] = det.bbox;
        let (x0, y0) = ((x - w / 4.0).max(0.0), (y - h / 4.0).max(0.0));
        let x1 = (x + w + w / 4.0).min(img.width() as f32);
        let y1 = (y + h + h / 4.0).min(img.height() as f32);
        let region = [
            x0 as u32,
            y0 as u32,
            ((x1 - x0) as u32).max(1),
            ((y1 - y0) as u32).max(1),
        ];
        let rgb = crop_resize(img, region, 224, 224);
        const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
        const STD: [f32; 3] = [0.229, 0.224, 0.225];
        let data = planar(&rgb, 224, 224, false, |c, v| (v / 255.0 - MEAN[c]) / STD[c]);
        let out = run(
            &self.pose,
            [1, 3, 224, 224],
            &data,
            &["output", "617", "618"],
        )?;
        let angle = |bins: &[f32]| {
            softmax(bins)
                .iter()
                .enumerate()
                .map(|(i, p)| p * i as f32)
                .sum::<f32>()
                * 3.0
                - 99.0
        };
        let marks = self.landmarks(img, det)?;
        let closed = if marks.len() == 68 {
            (self.eye_closed(img, &marks[36..42])? + self.eye_closed(img, &marks[42..48])?) / 2.0
        } else {
            0.0
        };
        Ok(FrameSignals {
            yaw: angle(&out[0]),
            pitch: angle(&out[1]),
            roll: angle(&out[2]),
            eyes_closed: closed,
        })
    }
}

/// Error rates of a presentation-attack detector per ISO/IEC 30107-3, from scores (the
/// probability of "real"; a sample at or above the threshold is taken for bona fide).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PadMetrics {
    /// The threshold the rates are at.
    pub threshold: f32,
    /// Bona fide presentations scored.
    pub n_real: usize,
    /// Attack presentations scored.
    pub n_attack: usize,
    /// Attack presentation classification error rate: the worst attack type's share of attacks
    /// taken for bona fide.
    pub apcer: f64,
    /// APCER of each attack type.
    pub apcer_per_type: Vec<(String, f64)>,
    /// Bona fide presentation classification error rate: the share of bona fide presentations
    /// taken for attacks.
    pub bpcer: f64,
    /// The lowest BPCER at a threshold where APCER ≤ 5% (`None`: no such threshold).
    pub bpcer_at_apcer_5: Option<f64>,
    /// The same at APCER ≤ 1%.
    pub bpcer_at_apcer_1: Option<f64>,
    /// The rate where APCER and BPCER cross.
    pub eer: f64,
}

fn share(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// APCER (worst type) and BPCER at threshold `t`.
fn rates(real: &[f32], attacks: &[(String, Vec<f32>)], t: f32) -> (f64, f64) {
    let apcer = attacks
        .iter()
        .map(|(_, s)| share(s.iter().filter(|&&v| v >= t).count(), s.len()))
        .fold(0.0, f64::max);
    (
        apcer,
        share(real.iter().filter(|&&v| v < t).count(), real.len()),
    )
}

/// The DET curve: (APCER of the worst type, BPCER) at every threshold that changes either, from
/// accepting everything to refusing everything.
pub fn det_curve(real: &[f32], attacks: &[(String, Vec<f32>)]) -> Vec<(f64, f64)> {
    let mut thresholds: Vec<f32> = real
        .iter()
        .chain(attacks.iter().flat_map(|(_, s)| s.iter()))
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup();
    thresholds.push(f32::INFINITY);
    let mut out = vec![rates(real, attacks, f32::NEG_INFINITY)];
    out.extend(thresholds.iter().map(|&t| rates(real, attacks, t)));
    out
}

/// The metrics at `threshold`, and the operating points read off the DET curve.
pub fn pad_metrics(real: &[f32], attacks: &[(String, Vec<f32>)], threshold: f32) -> PadMetrics {
    let (apcer, bpcer) = rates(real, attacks, threshold);
    let curve = det_curve(real, attacks);
    let at = |limit: f64| {
        curve
            .iter()
            .filter(|(a, _)| *a <= limit + 1e-12)
            .map(|(_, b)| *b)
            .fold(None, |m: Option<f64>, b| Some(m.map_or(b, |m| m.min(b))))
    };
    let eer = curve
        .iter()
        .map(|&(a, b)| ((a - b).abs(), (a + b) / 2.0))
        .fold(
            (f64::INFINITY, 1.0),
            |best, x| if x.0 < best.0 { x } else { best },
        )
        .1;
    PadMetrics {
        threshold,
        n_real: real.len(),
        n_attack: attacks.iter().map(|(_, s)| s.len()).sum(),
        apcer,
        apcer_per_type: attacks
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    share(s.iter().filter(|&&v| v >= threshold).count(), s.len()),
                )
            })
            .collect(),
        bpcer,
        bpcer_at_apcer_5: at(0.05),
        bpcer_at_apcer_1: at(0.01),
        eer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_iso_30107_3_on_known_scores() {
        let real = vec![0.9, 0.8, 0.7, 0.6, 0.4];
        let attacks = vec![
            ("print".to_string(), vec![0.1, 0.2, 0.3, 0.55]),
            ("replay".to_string(), vec![0.1, 0.1]),
        ];
        let m = pad_metrics(&real, &attacks, 0.5);
        assert_eq!((m.n_real, m.n_attack), (5, 6));
        assert_eq!(
            m.apcer_per_type,
            vec![("print".into(), 0.25), ("replay".into(), 0.0)]
        );
        assert!((m.apcer - 0.25).abs() < 1e-9, "the worst type");
        assert!((m.bpcer - 0.2).abs() < 1e-9);
        // APCER ≤ 5% needs the threshold above 0.55: then 0.4 is refused, 1 of 5.
        assert_eq!(m.bpcer_at_apcer_5, Some(0.2));
        let curve = det_curve(&real, &attacks);
        assert_eq!(curve.first(), Some(&(1.0, 0.0)));
        assert_eq!(curve.last(), Some(&(0.0, 1.0)));
    }

    #[test]
    fn the_box_is_scaled_about_its_centre_and_kept_inside() {
        // 2.7x of a 100x100 box at (270, 190) in 640x480: 270x270 centred, inside.
        assert_eq!(
            scaled_box([270.0, 190.0, 100.0, 100.0], 640, 480, 2.7),
            [185, 105, 270, 270]
        );
        // Near the left edge: shifted right, not cut.
        assert_eq!(
            scaled_box([0.0, 190.0, 100.0, 100.0], 640, 480, 2.7),
            [0, 105, 270, 270]
        );
        // Larger than the image allows: the scale shrinks to fit.
        let b = scaled_box([200.0, 100.0, 300.0, 300.0], 640, 480, 2.7);
        assert!(b[3] <= 480 && b[2] <= 640, "{b:?}");
    }

    #[test]
    fn crop_resize_of_a_uniform_image_is_uniform_and_of_the_right_size() {
        let img = RgbImage::from_pixel(64, 48, image::Rgb([10, 20, 30]));
        let out = crop_resize(&img, [5, 5, 40, 30], 24, 24);
        assert_eq!(out.len(), 24 * 24 * 3);
        assert!(out.chunks_exact(3).all(|p| p == [10, 20, 30]));
    }
}
