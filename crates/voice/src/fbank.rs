//! Kaldi-compatible log-mel filterbank, as 3D-Speaker computes it (torchaudio's
//! `compliance.kaldi.fbank`): 16 kHz, 25 ms frames every 10 ms (400 / 160 samples, frames only
//! where they fit: `snip_edges`), DC offset removed, pre-emphasis 0.97, Povey window, a
//! 512-point FFT, power spectrum, 80 triangular mel bins from 20 Hz to 8 kHz, natural log
//! floored at f32's epsilon, no dither; then the mean over time subtracted from each bin.

use std::f64::consts::PI;
use std::sync::OnceLock;

/// Mel bins.
pub const BINS: usize = 80;
const FRAME: usize = 400;
const SHIFT: usize = 160;
const FFT: usize = 512;
const PREEMPH: f64 = 0.97;
const LOW_HZ: f64 = 20.0;
const HIGH_HZ: f64 = 8_000.0;

struct Tables {
    window: Vec<f64>,
    /// Per mel bin: the first FFT bin and its weights.
    banks: Vec<(usize, Vec<f64>)>,
    cos: Vec<f64>,
    sin: Vec<f64>,
}

fn mel(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let window = (0..FRAME)
            .map(|i| (0.5 - 0.5 * (2.0 * PI * i as f64 / (FRAME - 1) as f64).cos()).powf(0.85))
            .collect();
        let (lo, hi) = (mel(LOW_HZ), mel(HIGH_HZ));
        let delta = (hi - lo) / (BINS + 1) as f64;
        let bin_hz = 16_000.0 / FFT as f64;
        let banks = (0..BINS)
            .map(|b| {
                let left = lo + b as f64 * delta;
                let centre = left + delta;
                let right = centre + delta;
                let weights: Vec<(usize, f64)> = (0..FFT / 2)
                    .filter_map(|i| {
                        let m = mel(i as f64 * bin_hz);
                        let w = ((m - left) / (centre - left)).min((right - m) / (right - centre));
                        (w > 0.0).then_some((i, w))
                    })
                    .collect();
                let first = weights.first().map_or(0, |w| w.0);
                (first, weights.into_iter().map(|w| w.1).collect())
            })
            .collect();
        let cos = (0..FFT / 2)
            .map(|k| (2.0 * PI * k as f64 / FFT as f64).cos())
            .collect();
        let sin = (0..FFT / 2)
            .map(|k| (-2.0 * PI * k as f64 / FFT as f64).sin())
            .collect();
        Tables {
            window,
            banks,
            cos,
            sin,
        }
    })
}

/// In-place iterative radix-2 FFT of length [`FFT`].
fn fft(re: &mut [f64], im: &mut [f64], t: &Tables) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let step = n / len;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (wr, wi) = (t.cos[k * step], t.sin[k * step]);
                let (a, b) = (start + k, start + k + len / 2);
                let (xr, xi) = (re[b] * wr - im[b] * wi, re[b] * wi + im[b] * wr);
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
        }
        len <<= 1;
    }
}

/// The number of frames for `n` samples.
pub fn frames(n: usize) -> usize {
    if n < FRAME {
        0
    } else {
        1 + (n - FRAME) / SHIFT
    }
}

/// Log-mel features, `frames × 80`, row-major, before mean normalisation.
pub fn log_mel(samples: &[f32]) -> Vec<f32> {
    let t = tables();
    let n = frames(samples.len());
    let mut out = Vec::with_capacity(n * BINS);
    let mut re = vec![0.0f64; FFT];
    let mut im = vec![0.0f64; FFT];
    let mut power = vec![0.0f64; FFT / 2];
    for f in 0..n {
        let frame = &samples[f * SHIFT..f * SHIFT + FRAME];
        let mean = frame.iter().map(|&v| f64::from(v)).sum::<f64>() / FRAME as f64;
        re.iter_mut().for_each(|v| *v = 0.0);
        im.iter_mut().for_each(|v| *v = 0.0);
        // DC removed, pre-emphasis (the first sample against itself), window.
        let mut prev = f64::from(frame[0]) - mean;
        for (i, &v) in frame.iter().enumerate() {
            let x = f64::from(v) - mean;
            let y = x - PREEMPH * prev;
            prev = x;
            re[i] = y * t.window[i];
        }
        fft(&mut re, &mut im, t);
        for (k, p) in power.iter_mut().enumerate() {
            *p = re[k] * re[k] + im[k] * im[k];
        }
        for (first, weights) in &t.banks {
            let e: f64 = weights
                .iter()
                .zip(&power[*first..])
                .map(|(w, p)| w * p)
                .sum();
            out.push((e.max(f64::from(f32::EPSILON))).ln() as f32);
        }
    }
    out
}

/// [`log_mel`] with each bin's mean over time subtracted: what the model takes.
pub fn features(samples: &[f32]) -> Vec<f32> {
    let mut feats = log_mel(samples);
    let n = feats.len() / BINS;
    if n == 0 {
        return feats;
    }
    for b in 0..BINS {
        let mean = (0..n).map(|f| f64::from(feats[f * BINS + b])).sum::<f64>() / n as f64;
        for f in 0..n {
            feats[f * BINS + b] -= mean as f32;
        }
    }
    feats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_snip_edges() {
        assert_eq!(frames(399), 0);
        assert_eq!(frames(400), 1);
        assert_eq!(frames(559), 1);
        assert_eq!(frames(560), 2);
        assert_eq!(frames(16_000), 98);
    }

    #[test]
    fn a_tone_lights_the_bin_that_holds_its_frequency() {
        // 1 kHz: mel(1000) lies between bins; the loudest bin's centre is the nearest one.
        let x: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * PI * 1000.0 * i as f64 / 16_000.0).sin() as f32 * 0.5)
            .collect();
        let f = log_mel(&x);
        let row = &f[50 * BINS..51 * BINS];
        let best = (0..BINS)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0);
        let (lo, hi) = (mel(LOW_HZ), mel(HIGH_HZ));
        let delta = (hi - lo) / (BINS + 1) as f64;
        let centre = |b: usize| lo + (b + 1) as f64 * delta;
        let nearest = (0..BINS)
            .min_by(|&a, &b| {
                (centre(a) - mel(1000.0))
                    .abs()
                    .total_cmp(&(centre(b) - mel(1000.0)).abs())
            })
            .unwrap_or(0);
        assert_eq!(best, nearest);
        // Silence floors at ln(eps).
        let z = log_mel(&[0.0; 400]);
        assert!(z.iter().all(|&v| (v - f32::EPSILON.ln()).abs() < 1e-4));
    }

    #[test]
    fn the_fft_matches_a_direct_transform() {
        let t = tables();
        let mut re: Vec<f64> = (0..FFT)
            .map(|i| ((i * 7919) % 97) as f64 / 97.0 - 0.5)
            .collect();
        let x = re.clone();
        let mut im = vec![0.0; FFT];
        fft(&mut re, &mut im, t);
        for k in [0usize, 1, 17, 128, 255] {
            let (mut r, mut i) = (0.0, 0.0);
            for (n, v) in x.iter().enumerate() {
                let a = -2.0 * PI * (k * n) as f64 / FFT as f64;
                r += v * a.cos();
                i += v * a.sin();
            }
            assert!(
                (r - re[k]).abs() < 1e-9 && (i - im[k]).abs() < 1e-9,
                "bin {k}"
            );
        }
    }
}
