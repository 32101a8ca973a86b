//! Face detection at the image's own size: YuNet (default) or, opted into, InsightFace's SCRFD.
//!
//! The image is scaled so its longer side is at most [`DetectorConfig::max_side`] (never
//! enlarged), padded right and bottom to a multiple of 32 (both prepared graphs take any
//! such size), and converted to the model's planar input (YuNet: BGR 0..255; SCRFD: RGB,
//! (x − 127.5)/128). Boxes and landmarks are
//! decoded per stride (8, 16, 32), filtered by score, suppressed by IoU, and mapped back to the
//! original image's coordinates by the one scale factor, so any size and aspect works.

use image::RgbImage;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::runtime::{Assets, SessionPool};
use crate::FaceError;

/// Which detection network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorModel {
    /// YuNet 2023mar (MIT), the default.
    YuNet,
    /// SCRFD-500M with keypoints (InsightFace; non-commercial upstream licence).
    Scrfd,
}

impl DetectorModel {
    /// Asset path of the prepared model.
    pub fn asset(self) -> &'static str {
        match self {
            DetectorModel::YuNet => "models/yunet_2023mar_dynamic.onnx",
            DetectorModel::Scrfd => "models/scrfd_500m_bnkps.onnx",
        }
    }

    fn input_name(self) -> &'static str {
        match self {
            DetectorModel::YuNet => "input",
            DetectorModel::Scrfd => "input.1",
        }
    }
}

/// One detected face, in pixel coordinates of the original image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// `[x, y, w, h]` of the face box.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// Left eye, right eye, nose tip, left and right mouth corners (`[x, y]` each), as seen in
    /// the image (the subject's right eye is the image's left eye).
    pub landmarks: [[f32; 2]; 5],
    /// Detector confidence in 0..1.
    pub score: f32,
}

impl Detection {
    /// Distance between the two eye landmarks in pixels.
    pub fn eye_distance(&self) -> f32 {
        let [l, r] = [self.landmarks[0], self.landmarks[1]];
        ((l[0] - r[0]).powi(2) + (l[1] - r[1]).powi(2)).sqrt()
    }

    /// Box area in square pixels.
    pub fn area(&self) -> f32 {
        self.bbox[2].max(0.0) * self.bbox[3].max(0.0)
    }
}

/// Detector settings.
#[derive(Clone, Copy, Debug)]
pub struct DetectorConfig {
    /// Longest side the image is scaled down to before detection (rounded up to 32).
    pub max_side: u32,
    /// Longest side for the quick first pass used when only the primary face is wanted
    /// (verification, comparison); a full pass follows only when it finds nothing.
    pub quick_side: u32,
    /// Minimum score for a face to be reported.
    pub score_threshold: f32,
    /// IoU above which the weaker of two boxes is suppressed.
    pub nms_iou: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            max_side: 640,
            quick_side: 320,
            score_threshold: 0.6,
            nms_iou: 0.3,
        }
    }
}

/// The face detector.
#[derive(Debug)]
pub struct Detector {
    pool: SessionPool,
    config: DetectorConfig,
    model: DetectorModel,
}

const STRIDES: [usize; 3] = [8, 16, 32];

impl Detector {
    /// Loads a prepared detection model.
    pub fn load(
        assets: &Assets,
        model: DetectorModel,
        threads: usize,
        config: DetectorConfig,
    ) -> Result<Self, FaceError> {
        Ok(Detector {
            pool: SessionPool::new(assets, model.asset(), threads)?,
            config,
            model,
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// All faces above the score threshold, highest score first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, FaceError> {
        self.detect_at(img, self.config.max_side)
    }

    /// Faces found with the image scaled to at most `max_side`: cheaper, and enough for a
    /// portrait's main face, but small faces may be missed.
    pub fn detect_quick(&self, img: &RgbImage) -> Result<Vec<Detection>, FaceError> {
        let found = self.detect_at(img, self.config.quick_side.min(self.config.max_side))?;
        if found.is_empty() && img.width().max(img.height()) > self.config.quick_side {
            return self.detect(img);
        }
        Ok(found)
    }

    fn detect_at(&self, img: &RgbImage, max_side: u32) -> Result<Vec<Detection>, FaceError> {
        let input = prepare_input(img, max_side, self.model)?;
        let (w, h) = (input.width, input.height);
        let mut raw = self.pool.with(|session| {
            let tensor = TensorRef::from_array_view(([1usize, 3, h, w], &input.data[..]))?;
            let outputs = session.run(ort::inputs![self.model.input_name() => tensor])?;
            let mut found = Vec::new();
            for stride in STRIDES {
                let get = |name: &str| -> Result<&[f32], FaceError> {
                    let key = format!("{name}_{stride}");
                    let value = outputs.get(&key).ok_or_else(|| {
                        FaceError::Inference(format!("detector output {key} missing"))
                    })?;
                    Ok(value.try_extract_tensor::<f32>()?.1)
                };
                let grid = (stride, w / stride, h / stride);
                let threshold = self.config.score_threshold;
                match self.model {
                    DetectorModel::YuNet => decode_yunet(
                        grid,
                        [get("cls")?, get("obj")?, get("bbox")?, get("kps")?],
                        threshold,
                        &mut found,
                    )?,
                    DetectorModel::Scrfd => decode_scrfd(
                        grid,
                        [get("score")?, get("bbox")?, get("kps")?],
                        threshold,
                        &mut found,
                    )?,
                }
            }
            Ok(found)
        })?;
        let mut kept = nms(&mut raw, self.config.nms_iou);
        let inv = 1.0 / input.scale;
        for d in &mut kept {
            d.bbox.iter_mut().for_each(|v| *v *= inv);
            d.landmarks.iter_mut().flatten().for_each(|v| *v *= inv);
        }
        Ok(kept)
    }
}

/// The detector's input for `img` scaled to at most `max_side`: its padded width and height and
/// its planar values. Public for the fuzz target that follows an upload up to the detector's
/// input without a model; the engine itself calls the private path.
#[doc(hidden)]
pub fn detector_input(
    img: &RgbImage,
    max_side: u32,
    model: DetectorModel,
) -> Result<(usize, usize, Vec<f32>), FaceError> {
    prepare_input(img, max_side, model).map(|i| (i.width, i.height, i.data))
}

/// The detector's input: planar floats in the model's channel order and scale, padded to
/// multiples of 32.
struct DetectorInput {
    data: Vec<f32>,
    width: usize,
    height: usize,
    /// Factor from original to detector coordinates.
    scale: f32,
}

fn prepare_input(
    img: &RgbImage,
    max_side: u32,
    model: DetectorModel,
) -> Result<DetectorInput, FaceError> {
    // (plane of R, G, B; value = (x − mean) · scale)
    let (planes, mean, norm) = match model {
        DetectorModel::YuNet => ([2usize, 1, 0], 0.0f32, 1.0f32),
        DetectorModel::Scrfd => ([0usize, 1, 2], 127.5, 1.0 / 128.0),
    };
    let (w0, h0) = img.dimensions();
    let longest = w0.max(h0).max(1);
    let scale = (max_side as f32 / longest as f32).min(1.0);
    // Large photos are first box-averaged by an integer factor (cheap, alias-free), so the
    // bilinear step below never shrinks by more than 2x.
    let factor = ((1.0 / scale).floor() as u32).max(1);
    let reduced;
    let src = if factor > 1 {
        reduced = box_reduce(img, factor)?;
        &reduced
    } else {
        img
    };
    let tw = ((w0 as f32 * scale).round() as usize).clamp(1, src.width() as usize);
    let th = ((h0 as f32 * scale).round() as usize).clamp(1, src.height() as usize);
    let width = tw.div_ceil(32) * 32;
    let height = th.div_ceil(32) * 32;
    let plane = width * height;
    // Padding is the model's value for black (0 for YuNet, −127.5/128 for SCRFD), as in
    // the reference implementations that pad the raw image.
    let mut data = vec![(0.0 - mean) * norm; 3 * plane];
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let raw = src.as_raw();
    let (p0, rest) = data.split_at_mut(plane);
    let (p1, p2) = rest.split_at_mut(plane);
    let out: [&mut [f32]; 3] = [p0, p1, p2];
    // Output plane of each source channel.
    let (pr, pg, pb) = (planes[0], planes[1], planes[2]);
    if tw == sw && th == sh {
        // The photo fits as it is: a copy (what the bilinear step below computes here, exactly).
        for (y, row) in raw.chunks_exact(sw * 3).enumerate() {
            for (c, p) in [pr, pg, pb].into_iter().enumerate() {
                let plane = &mut out[p][y * width..][..sw];
                for (o, px) in plane.iter_mut().zip(row.chunks_exact(3)) {
                    *o = (f32::from(px[c]) - mean) * norm;
                }
            }
        }
    } else {
        // Pixel-centre mapping from target to source; the column taps are the same for every row.
        let (fx, fy) = (sw as f32 / tw as f32, sh as f32 / th as f32);
        let taps: Vec<(usize, usize, f32)> = (0..tw)
            .map(|x| {
                let sx = ((x as f32 + 0.5) * fx - 0.5).clamp(0.0, (sw - 1) as f32);
                let x0 = sx as usize;
                (x0 * 3, (x0 + 1).min(sw - 1) * 3, sx.fract())
            })
            .collect();
        // Each source row is interpolated along x once, into planar rows (`top` for y0 and
        // `bottom` for y1; one output row's y1 is often the next one's y0), then each output row
        // is a contiguous blend of the two. The same operations in the same order as per pixel,
        // so the same floats, bit for bit.
        let mut top = Rows::new(tw);
        let mut bottom = Rows::new(tw);
        let mut floats = Vec::with_capacity(sw * 3);
        for y in 0..th {
            let sy = ((y as f32 + 0.5) * fy - 0.5).clamp(0.0, (sh - 1) as f32);
            let (y0, wy) = (sy as usize, sy.fract());
            let y1 = (y0 + 1).min(sh - 1);
            if bottom.source == Some(y0) {
                std::mem::swap(&mut top, &mut bottom);
            }
            top.fill(y0, &raw[y0 * sw * 3..][..sw * 3], &taps, &mut floats);
            bottom.fill(y1, &raw[y1 * sw * 3..][..sw * 3], &taps, &mut floats);
            for c in 0..3 {
                let (t, b) = (top.channel(c), bottom.channel(c));
                let o = &mut out[planes[c]][y * width..][..tw];
                for ((o, &t), &b) in o.iter_mut().zip(t).zip(b) {
                    *o = (t + (b - t) * wy - mean) * norm;
                }
            }
        }
    }
    let eff = tw as f32 / w0.max(1) as f32;
    Ok(DetectorInput {
        data,
        width,
        height,
        scale: eff,
    })
}

/// One source row interpolated along x at the detector input's column taps, one plane per
/// channel, and which source row it holds.
struct Rows {
    source: Option<usize>,
    values: Vec<f32>,
    width: usize,
}

impl Rows {
    fn new(width: usize) -> Self {
        Rows {
            source: None,
            values: vec![0.0; 3 * width],
            width,
        }
    }

    /// Interpolates source row `y` (`row`, RGB bytes) unless it is already held. `floats` is
    /// scratch space for the row as floats (one vectorised conversion instead of six scalar ones
    /// per tap).
    fn fill(&mut self, y: usize, row: &[u8], taps: &[(usize, usize, f32)], floats: &mut Vec<f32>) {
        if self.source == Some(y) {
            return;
        }
        floats.clear();
        floats.extend(row.iter().map(|&v| f32::from(v)));
        let (r, rest) = self.values.split_at_mut(self.width);
        let (g, b) = rest.split_at_mut(self.width);
        for ((&(a, n, wx), (r, g)), b) in taps.iter().zip(r.iter_mut().zip(g)).zip(b) {
            let (Some(p), Some(q)) = (floats.get(a..a + 3), floats.get(n..n + 3)) else {
                continue;
            };
            *r = p[0] + (q[0] - p[0]) * wx;
            *g = p[1] + (q[1] - p[1]) * wx;
            *b = p[2] + (q[2] - p[2]) * wx;
        }
        self.source = Some(y);
    }

    fn channel(&self, c: usize) -> &[f32] {
        &self.values[c * self.width..][..self.width]
    }
}

/// Averages `k x k` blocks (the last partial row and column are averaged over what exists).
/// Streams the rows once: each band of `k` rows is summed per column (a plain widening add the
/// compiler vectorises), then the column sums are added up per block and divided out.
fn box_reduce(img: &RgbImage, k: u32) -> Result<RgbImage, FaceError> {
    let (w, h) = img.dimensions();
    let (nw, nh) = (w.div_ceil(k), h.div_ceil(k));
    let (k, w, nw) = (k as usize, w as usize, nw as usize);
    let raw = img.as_raw();
    let mut out = vec![0u8; nw * nh as usize * 3];
    let mut columns = vec![0u32; w * 3];
    let mut sums = vec![0u32; nw * 3];
    for (band, out_row) in raw.chunks(w * 3 * k).zip(out.chunks_exact_mut(nw * 3)) {
        columns.iter_mut().for_each(|v| *v = 0);
        for row in band.chunks_exact(w * 3) {
            for (c, &p) in columns.iter_mut().zip(row) {
                *c += u32::from(p);
            }
        }
        match k {
            2 => block_sums::<2>(&columns, &mut sums),
            3 => block_sums::<3>(&columns, &mut sums),
            4 => block_sums::<4>(&columns, &mut sums),
            _ => block_sums_any(&columns, k, &mut sums),
        }
        let rows = band.len() / (w * 3);
        // Every block of the band holds `rows * k` pixels but the last, which may be narrower.
        // Rounded integer means, never above 255; divided in one pass per divisor, which the
        // compiler vectorises.
        let full = Divisor::new((rows * k) as u32);
        let last = Divisor::new((rows * (w - (nw - 1) * k)) as u32);
        let (body, tail) = out_row.split_at_mut((nw - 1) * 3);
        let (body_sums, tail_sums) = sums.split_at((nw - 1) * 3);
        for (o, &v) in body.iter_mut().zip(body_sums) {
            *o = full.rounded_quotient(v) as u8;
        }
        for (o, &v) in tail.iter_mut().zip(tail_sums) {
            *o = last.rounded_quotient(v) as u8;
        }
    }
    // The buffer is nw * nh * 3 bytes by construction; a mismatch is a bug, reported, never a
    // black image handed to the detector.
    RgbImage::from_raw(nw as u32, nh, out)
        .ok_or_else(|| FaceError::Inference("box reduction produced a wrong-sized image".into()))
}

/// Each block's sums: its `K` column sums (`columns`, RGB) added up per channel, every block `K`
/// columns wide but the last, which holds what is left. With `K` known the inner loop unrolls;
/// the box reduction's common factors (2 to 4) take this path.
fn block_sums<const K: usize>(columns: &[u32], sums: &mut [u32]) {
    let whole = columns.chunks_exact(3 * K);
    let rest = whole.remainder();
    let mut out = sums.chunks_exact_mut(3);
    // `whole` first: a zip stops at its first iterator's end without taking from the second,
    // so the last (partial) block's place in `out` is left for it.
    for (block, sum) in whole.zip(out.by_ref()) {
        sum.copy_from_slice(&channel_sums(block));
    }
    if let Some(sum) = out.next() {
        block_sums_any(rest, K, sum);
    }
}

/// [`block_sums`] for any block width `k`.
fn block_sums_any(columns: &[u32], k: usize, sums: &mut [u32]) {
    for (sum, block) in sums.chunks_exact_mut(3).zip(columns.chunks(k * 3)) {
        sum.copy_from_slice(&channel_sums(block));
    }
}

/// The sums of RGB values per channel (inlined, so a block of known width unrolls).
#[inline(always)]
fn channel_sums(rgb: &[u32]) -> [u32; 3] {
    let mut s = [0u32; 3];
    for px in rgb.chunks_exact(3) {
        s[0] += px[0];
        s[1] += px[1];
        s[2] += px[2];
    }
    s
}

/// Division by one block's pixel count, as a multiplication: `box_reduce` divides a quarter of
/// a million sums per large photo by the same two or three counts, and a division costs several
/// times a multiplication.
#[derive(Clone, Copy)]
struct Divisor {
    n: u32,
    /// ⌈2⁴⁸ / n⌉.
    m: u64,
}

impl Divisor {
    fn new(n: u32) -> Self {
        let n = n.max(1);
        Divisor {
            n,
            m: (1u64 << 48).div_ceil(u64::from(n)),
        }
    }

    /// (sum + n/2) / n, rounded down: the rounded mean of `n` bytes whose sum is `sum`.
    /// Exact for every sum of `n` bytes when `n < 2²⁰` (a block up to 1024 × 1024 pixels): with
    /// m = (2⁴⁸ + e) / n, e < n, the product overshoots x / n by x·e / (n·2⁴⁸) < 1/n for
    /// x < 256·n, which never carries it past the next integer.
    fn rounded_quotient(self, sum: u32) -> u32 {
        ((u64::from(sum + self.n / 2) * self.m) >> 48) as u32
    }
}

fn decode_yunet(
    (stride, cols, rows): (usize, usize, usize),
    [cls, obj, bbox, kps]: [&[f32]; 4],
    threshold: f32,
    out: &mut Vec<Detection>,
) -> Result<(), FaceError> {
    let n = cols * rows;
    if cls.len() < n || obj.len() < n || bbox.len() < 4 * n || kps.len() < 10 * n {
        return Err(FaceError::Inference(format!(
            "detector output for stride {stride} too short"
        )));
    }
    let s = stride as f32;
    for i in 0..n {
        let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
        if score < threshold {
            continue;
        }
        let (c, r) = ((i % cols) as f32, (i / cols) as f32);
        let b = &bbox[4 * i..4 * i + 4];
        let cx = (c + b[0]) * s;
        let cy = (r + b[1]) * s;
        let w = b[2].exp() * s;
        let h = b[3].exp() * s;
        let k = &kps[10 * i..10 * i + 10];
        let mut landmarks = [[0f32; 2]; 5];
        for (j, lm) in landmarks.iter_mut().enumerate() {
            *lm = [(c + k[2 * j]) * s, (r + k[2 * j + 1]) * s];
        }
        out.push(Detection {
            bbox: [cx - w / 2.0, cy - h / 2.0, w, h],
            landmarks,
            score,
        });
    }
    Ok(())
}

/// SCRFD: two anchors per cell at the cell's corner `(col·s, row·s)`; boxes are distances to
/// the four sides and keypoints offsets, both in units of the stride; scores are probabilities.
fn decode_scrfd(
    (stride, cols, rows): (usize, usize, usize),
    [scores, bbox, kps]: [&[f32]; 3],
    threshold: f32,
    out: &mut Vec<Detection>,
) -> Result<(), FaceError> {
    let n = cols * rows * 2;
    if scores.len() < n || bbox.len() < 4 * n || kps.len() < 10 * n {
        return Err(FaceError::Inference(format!(
            "detector output for stride {stride} too short"
        )));
    }
    let s = stride as f32;
    for i in 0..n {
        let score = scores[i];
        if score.is_nan() || score < threshold {
            continue;
        }
        let cell = i / 2;
        let (cx, cy) = ((cell % cols) as f32 * s, (cell / cols) as f32 * s);
        let b = &bbox[4 * i..4 * i + 4];
        let (x1, y1, x2, y2) = (cx - b[0] * s, cy - b[1] * s, cx + b[2] * s, cy + b[3] * s);
        let k = &kps[10 * i..10 * i + 10];
        let mut landmarks = [[0f32; 2]; 5];
        for (j, lm) in landmarks.iter_mut().enumerate() {
            *lm = [cx + k[2 * j] * s, cy + k[2 * j + 1] * s];
        }
        out.push(Detection {
            bbox: [x1, y1, x2 - x1, y2 - y1],
            landmarks,
            score,
        });
    }
    Ok(())
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let x1 = a[0].max(b[0]);
    let y1 = a[1].max(b[1]);
    let x2 = (a[0] + a[2]).min(b[0] + b[2]);
    let y2 = (a[1] + a[3]).min(b[1] + b[3]);
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

fn nms(dets: &mut [Detection], threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets.iter() {
        if kept.iter().all(|k| iou(&k.bbox, &d.bbox) <= threshold) {
            kept.push(d.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_padded_to_32_and_never_enlarged() {
        let img = RgbImage::from_pixel(250, 250, image::Rgb([10, 20, 30]));
        let input = prepare_input(&img, 640, DetectorModel::YuNet).unwrap();
        assert_eq!((input.width, input.height), (256, 256));
        assert_eq!(input.scale, 1.0);
        // BGR planes: blue first.
        assert_eq!(input.data[0], 30.0);
        assert_eq!(input.data[256 * 256], 20.0);
        assert_eq!(input.data[2 * 256 * 256], 10.0);
        // Padding is zero.
        assert_eq!(input.data[255], 0.0);
    }

    /// Bilinear resampling written out per pixel, as the input preparation first did it.
    fn reference_input(img: &RgbImage, tw: usize, th: usize, model: DetectorModel) -> Vec<f32> {
        let (planes, mean, norm) = match model {
            DetectorModel::YuNet => ([2usize, 1, 0], 0.0f32, 1.0f32),
            DetectorModel::Scrfd => ([0usize, 1, 2], 127.5, 1.0 / 128.0),
        };
        let (sw, sh) = (img.width() as usize, img.height() as usize);
        let (width, height) = (tw.div_ceil(32) * 32, th.div_ceil(32) * 32);
        let plane = width * height;
        let mut data = vec![(0.0 - mean) * norm; 3 * plane];
        let (fx, fy) = (sw as f32 / tw as f32, sh as f32 / th as f32);
        let at = |x: usize, y: usize, c: usize| f32::from(img.get_pixel(x as u32, y as u32)[c]);
        for y in 0..th {
            let sy = ((y as f32 + 0.5) * fy - 0.5).clamp(0.0, (sh - 1) as f32);
            let (y0, wy) = (sy as usize, sy.fract());
            let y1 = (y0 + 1).min(sh - 1);
            for x in 0..tw {
                let sx = ((x as f32 + 0.5) * fx - 0.5).clamp(0.0, (sw - 1) as f32);
                let (x0, wx) = (sx as usize, sx.fract());
                let x1 = (x0 + 1).min(sw - 1);
                for c in 0..3 {
                    let top = at(x0, y0, c) + (at(x1, y0, c) - at(x0, y0, c)) * wx;
                    let bottom = at(x0, y1, c) + (at(x1, y1, c) - at(x0, y1, c)) * wx;
                    data[planes[c] * plane + y * width + x] =
                        (top + (bottom - top) * wy - mean) * norm;
                }
            }
        }
        data
    }

    fn assert_bitwise_equal(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        let same = got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{what}: the input differs from the reference");
    }

    #[test]
    fn input_copy_and_resampling_equal_the_per_pixel_bilinear_step() {
        let mut seed = 0x2545_F491u32;
        let img = RgbImage::from_fn(250, 170, |_, _| {
            let mut c = [0u8; 3];
            for v in &mut c {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *v = (seed >> 24) as u8;
            }
            image::Rgb(c)
        });
        for model in [DetectorModel::YuNet, DetectorModel::Scrfd] {
            // Fits as it is (the copy), then shrunk by less than 2x (bilinear only).
            for (side, tw, th) in [(320u32, 250usize, 170usize), (200, 200, 136)] {
                let got = prepare_input(&img, side, model).unwrap();
                let want = reference_input(&img, tw, th, model);
                assert_bitwise_equal(&got.data, &want, &format!("{model:?} at {side}"));
            }
            // Shrunk by 2x or more: box-reduced first (by 2, 3 and 4), then bilinear.
            for (side, k, tw, th) in [
                (100u32, 2u32, 100usize, 68usize),
                (80, 3, 80, 54),
                (60, 4, 60, 41),
            ] {
                let got = prepare_input(&img, side, model).unwrap();
                let want = reference_input(&box_reduce(&img, k).unwrap(), tw, th, model);
                assert_bitwise_equal(&got.data, &want, &format!("{model:?} at {side}"));
            }
        }
    }

    #[test]
    fn box_reduce_averages_every_block_including_partial_ones() {
        // Deterministic pseudo-random pixels; sizes with and without partial blocks.
        for (w, h, k) in [
            (7u32, 5u32, 2u32),
            (8, 3, 2),
            (9, 9, 3),
            (11, 7, 3),
            (10, 4, 4),
            (12, 9, 4),
            (5, 11, 6),
            (1, 1, 2),
            (40, 29, 13),
            (70, 64, 17),
        ] {
            let mut seed = 0x9E37_79B9u32 ^ (w * 31 + h * 7 + k);
            let img = RgbImage::from_fn(w, h, |_, _| {
                let mut c = [0u8; 3];
                for v in &mut c {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    *v = (seed >> 24) as u8;
                }
                image::Rgb(c)
            });
            let out = box_reduce(&img, k).unwrap();
            assert_eq!(out.dimensions(), (w.div_ceil(k), h.div_ceil(k)));
            for (ox, oy, px) in out.enumerate_pixels() {
                for c in 0..3 {
                    let (mut sum, mut n) = (0u32, 0u32);
                    for y in oy * k..((oy + 1) * k).min(h) {
                        for x in ox * k..((ox + 1) * k).min(w) {
                            sum += u32::from(img.get_pixel(x, y)[c]);
                            n += 1;
                        }
                    }
                    assert_eq!(px[c], ((sum + n / 2) / n) as u8, "{w}x{h}/{k} at {ox},{oy}");
                }
            }
        }
    }

    #[test]
    fn divisor_rounds_every_mean_as_integer_division_does() {
        // Every count up to 1024 and a spread of larger ones up to the bound, each with the
        // sums at both ends and a spread through the middle.
        let counts = (1u32..=1024)
            .chain((1025..(1 << 20)).step_by(331))
            .chain([(1 << 20) - 1]);
        for n in counts {
            let d = Divisor::new(n);
            let top = 255 * n;
            let sums = (0..=n.min(600))
                .chain(top.saturating_sub(600)..=top)
                .chain((0..=top).step_by(top as usize / 300 + 1));
            for sum in sums {
                assert_eq!(d.rounded_quotient(sum), (sum + n / 2) / n, "{sum} / {n}");
            }
        }
    }

    #[test]
    fn box_reduce_keeps_white_white_and_black_black() {
        for (v, k) in [
            (255u8, 2u32),
            (255, 7),
            (255, 31),
            (0, 31),
            (1, 31),
            (254, 9),
        ] {
            let img = RgbImage::from_pixel(100, 70, image::Rgb([v; 3]));
            let out = box_reduce(&img, k).unwrap();
            assert!(
                out.pixels().all(|p| p.0 == [v; 3]),
                "{v} over {k}x{k} blocks"
            );
        }
    }

    #[test]
    fn large_images_are_scaled_to_max_side() {
        let img = RgbImage::new(1280, 720);
        let input = prepare_input(&img, 640, DetectorModel::YuNet).unwrap();
        assert_eq!((input.width, input.height), (640, 384));
        assert!((input.scale - 0.5).abs() < 1e-6);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let d = |x: f32, score: f32| Detection {
            bbox: [x, 0.0, 10.0, 10.0],
            landmarks: [[0.0; 2]; 5],
            score,
        };
        let mut v = vec![d(0.0, 0.7), d(1.0, 0.9), d(50.0, 0.8)];
        let kept = nms(&mut v, 0.3);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].bbox[0], 50.0);
    }
}
