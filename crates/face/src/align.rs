//! 5-point similarity alignment to the standard 112×112 face template.
//!
//! A least-squares similarity transform (rotation, uniform scale, translation; no reflection)
//! is fitted from the detected landmarks to the ArcFace template, in closed form: with points
//! as complex numbers, the best `z ↦ a·z + t` has `a = Σ d̄ᵢ·sᵢ* / Σ |s̄ᵢ|²` over centred points,
//! which is Umeyama's solution in two dimensions. The crop is then sampled bilinearly through the
//! inverse transform, with OpenCV's `warpAffine` conventions (integer output coordinates, zero
//! outside the image), so crops match what SFace was trained on.

use image::RgbImage;

/// Side of the aligned crop.
pub const CROP: usize = 112;

/// The ArcFace template: left eye, right eye, nose, left and right mouth corners.
pub const TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A similarity transform `x' = a·x − b·y + tx`, `y' = b·x + a·y + ty`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    /// `scale·cos(θ)`.
    pub a: f32,
    /// `scale·sin(θ)`.
    pub b: f32,
    /// Translation x.
    pub tx: f32,
    /// Translation y.
    pub ty: f32,
}

impl Similarity {
    /// Least-squares fit from `src` to `dst` (same length, at least 2 distinct points).
    pub fn fit(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Similarity> {
        let n = src.len().min(dst.len());
        if n < 2 {
            return None;
        }
        let mean = |p: &[[f32; 2]]| {
            let (sx, sy) = p[..n]
                .iter()
                .fold((0f64, 0f64), |(x, y), q| (x + q[0] as f64, y + q[1] as f64));
            (sx / n as f64, sy / n as f64)
        };
        let (msx, msy) = mean(src);
        let (mdx, mdy) = mean(dst);
        let (mut num_a, mut num_b, mut den) = (0f64, 0f64, 0f64);
        for i in 0..n {
            let (sx, sy) = (src[i][0] as f64 - msx, src[i][1] as f64 - msy);
            let (dx, dy) = (dst[i][0] as f64 - mdx, dst[i][1] as f64 - mdy);
            num_a += sx * dx + sy * dy;
            num_b += sx * dy - sy * dx;
            den += sx * sx + sy * sy;
        }
        if den <= 1e-12 {
            return None;
        }
        let (a, b) = (num_a / den, num_b / den);
        let tx = mdx - (a * msx - b * msy);
        let ty = mdy - (b * msx + a * msy);
        Some(Similarity {
            a: a as f32,
            b: b as f32,
            tx: tx as f32,
            ty: ty as f32,
        })
    }

    /// Applies the transform to a point.
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    /// The inverse transform.
    pub fn inverse(&self) -> Option<Similarity> {
        let d = self.a * self.a + self.b * self.b;
        if d <= f32::EPSILON {
            return None;
        }
        let (a, b) = (self.a / d, -self.b / d);
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }

    /// Scale factor of the transform.
    pub fn scale(&self) -> f32 {
        (self.a * self.a + self.b * self.b).sqrt()
    }
}

/// An aligned 112×112 RGB crop, interleaved.
#[derive(Clone, Debug)]
pub struct AlignedFace {
    /// `112·112·3` bytes, row-major RGB.
    pub rgb: Vec<u8>,
    /// The transform from image to crop coordinates.
    pub transform: Similarity,
}

impl AlignedFace {
    /// Wraps an image that is already an aligned 112×112 crop (identity transform).
    pub fn from_crop(img: &RgbImage) -> Option<AlignedFace> {
        if img.width() as usize != CROP || img.height() as usize != CROP {
            return None;
        }
        let transform = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        Some(AlignedFace {
            rgb: img.as_raw().clone(),
            transform,
        })
    }
}

/// Aligns a face given its five landmarks. `None` for degenerate landmarks.
pub fn align(img: &RgbImage, landmarks: &[[f32; 2]; 5]) -> Option<AlignedFace> {
    let transform = Similarity::fit(landmarks, &TEMPLATE)?;
    let inv = transform.inverse()?;
    let (w, h) = (img.width() as i64, img.height() as i64);
    let raw = img.as_raw();
    let mut rgb = vec![0u8; CROP * CROP * 3];
    let px = |x: i64, y: i64, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0.0
        } else {
            f32::from(raw[((y * w + x) * 3) as usize + c])
        }
    };
    for v in 0..CROP {
        for u in 0..CROP {
            let [sx, sy] = inv.apply([u as f32, v as f32]);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for c in 0..3 {
                let top = px(x0, y0, c) * (1.0 - fx) + px(x0 + 1, y0, c) * fx;
                let bottom = px(x0, y0 + 1, c) * (1.0 - fx) + px(x0 + 1, y0 + 1, c) * fx;
                let value = top * (1.0 - fy) + bottom * fy;
                rgb[(v * CROP + u) * 3 + c] = value.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Some(AlignedFace { rgb, transform })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_similarity() {
        let truth = Similarity {
            a: 0.8,
            b: 0.3,
            tx: 5.0,
            ty: -7.0,
        };
        let src: Vec<[f32; 2]> = TEMPLATE
            .iter()
            .map(|p| [p[0] * 2.0 + 3.0, p[1] * 1.5])
            .collect();
        let dst: Vec<[f32; 2]> = src.iter().map(|&p| truth.apply(p)).collect();
        let fit = Similarity::fit(&src, &dst).unwrap_or(Similarity {
            a: 0.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        });
        assert!((fit.a - truth.a).abs() < 1e-4 && (fit.b - truth.b).abs() < 1e-4);
        assert!((fit.tx - truth.tx).abs() < 1e-3 && (fit.ty - truth.ty).abs() < 1e-3);
        let inv = fit.inverse().unwrap_or(fit);
        let p = inv.apply(fit.apply([10.0, 20.0]));
        assert!((p[0] - 10.0).abs() < 1e-3 && (p[1] - 20.0).abs() < 1e-3);
    }

    #[test]
    fn degenerate_landmarks_give_none() {
        let same = [[5.0, 5.0]; 5];
        assert!(Similarity::fit(&same, &TEMPLATE).is_none());
        let img = RgbImage::new(10, 10);
        assert!(align(&img, &same).is_none());
    }

    #[test]
    fn identity_alignment_copies_the_crop() {
        let img = RgbImage::from_fn(112, 112, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let face = align(&img, &TEMPLATE).map(|f| f.rgb).unwrap_or_default();
        assert_eq!(face.len(), 112 * 112 * 3);
        assert_eq!(
            &face[(50 * 112 + 60) * 3..(50 * 112 + 60) * 3 + 3],
            &[60, 50, 7]
        );
    }
}
