//! Audio in: WAV (PCM 8/16/24/32-bit integer or 32-bit float) and FLAC, mono or stereo (mixed
//! down), any rate from 8 to 96 kHz resampled to 16 kHz, samples as floats in [-1, 1] (the
//! scale CAM++ was trained with). Size and duration are limited before anything is decoded
//! past the header.

use std::io::Cursor;

use crate::VoiceError;

/// The rate the model runs at.
pub const RATE: u32 = 16_000;

/// Limits on what is decoded.
#[derive(Clone, Copy, Debug)]
pub struct AudioLimits {
    /// Bytes of the file, at most.
    pub max_bytes: usize,
    /// Seconds of audio, at most.
    pub max_seconds: f32,
}

impl Default for AudioLimits {
    fn default() -> Self {
        AudioLimits {
            max_bytes: 8 * 1024 * 1024,
            max_seconds: 30.0,
        }
    }
}

/// Mono audio at [`RATE`], samples in [-1, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    /// The samples.
    pub samples: Vec<f32>,
}

impl Audio {
    /// Seconds of audio.
    pub fn seconds(&self) -> f32 {
        self.samples.len() as f32 / RATE as f32
    }

    /// Seconds of sound: 25 ms frames (every 10 ms) whose level is above -50 dBFS RMS, far
    /// under any voice at a microphone and above the noise of a quiet room's recording. Not a
    /// speech detector: it tells a recording of silence (or of a muted microphone) from one
    /// with something in it.
    pub fn sound_seconds(&self) -> f32 {
        const FRAME: usize = RATE as usize / 40;
        const HOP: usize = RATE as usize / 100;
        const FLOOR: f32 = 0.003_162; // -50 dBFS
        let frames = self
            .samples
            .windows(FRAME)
            .step_by(HOP)
            .filter(|w| {
                let power = w.iter().map(|s| s * s).sum::<f32>() / FRAME as f32;
                power >= FLOOR * FLOOR
            })
            .count();
        frames as f32 * HOP as f32 / RATE as f32
    }

    /// Decodes a WAV or FLAC file within `limits`, mixes it down and resamples it to 16 kHz.
    pub fn decode(bytes: &[u8], limits: &AudioLimits) -> Result<Audio, VoiceError> {
        if bytes.len() > limits.max_bytes {
            return Err(VoiceError::TooLong {
                max: limits.max_seconds,
            });
        }
        let (rate, mono) = if bytes.starts_with(b"RIFF") {
            wav(bytes, limits)?
        } else if bytes.starts_with(b"fLaC") {
            flac(bytes, limits)?
        } else {
            return Err(VoiceError::NotAudio(
                "neither a WAV (RIFF) nor a FLAC file".into(),
            ));
        };
        Ok(Audio {
            samples: resample(&mono, rate, RATE),
        })
    }
}

fn check_format(
    rate: u32,
    channels: u16,
    frames: u64,
    limits: &AudioLimits,
) -> Result<(), VoiceError> {
    if !(8_000..=96_000).contains(&rate) {
        return Err(VoiceError::Unsupported(format!(
            "sample rate {rate} Hz (8 to 96 kHz are read)"
        )));
    }
    if !(1..=2).contains(&channels) {
        return Err(VoiceError::Unsupported(format!(
            "{channels} channels (mono or stereo are read)"
        )));
    }
    if frames as f64 / f64::from(rate) > f64::from(limits.max_seconds) {
        return Err(VoiceError::TooLong {
            max: limits.max_seconds,
        });
    }
    Ok(())
}

/// Averages interleaved channels into one.
fn mix(interleaved: Vec<f32>, channels: u16) -> Vec<f32> {
    if channels == 1 {
        return interleaved;
    }
    let n = usize::from(channels);
    interleaved
        .chunks_exact(n)
        .map(|c| c.iter().sum::<f32>() / n as f32)
        .collect()
}

fn wav(bytes: &[u8], limits: &AudioLimits) -> Result<(u32, Vec<f32>), VoiceError> {
    let bad = |e: hound::Error| match e {
        hound::Error::Unsupported => VoiceError::Unsupported("this WAV encoding".into()),
        other => VoiceError::NotAudio(format!("WAV: {other}")),
    };
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(bad)?;
    let spec = reader.spec();
    check_format(
        spec.sample_rate,
        spec.channels,
        u64::from(reader.duration()),
        limits,
    )?;
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            let raw: Vec<f32> = reader
                .into_samples::<f32>()
                .collect::<Result<_, _>>()
                .map_err(bad)?;
            // A float sample that is not a number is a damaged file; one past full scale is
            // clipped, as a player would.
            if raw.iter().any(|v| !v.is_finite()) {
                return Err(VoiceError::NotAudio(
                    "WAV with float samples that are not numbers".into(),
                ));
            }
            raw.into_iter().map(|v| v.clamp(-1.0, 1.0)).collect()
        }
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(bad)?
        }
        (f, b) => {
            return Err(VoiceError::Unsupported(format!(
                "WAV with {b}-bit {f:?} samples"
            )))
        }
    };
    Ok((spec.sample_rate, mix(samples, spec.channels)))
}

fn flac(bytes: &[u8], limits: &AudioLimits) -> Result<(u32, Vec<f32>), VoiceError> {
    let bad = |e: claxon::Error| match e {
        claxon::Error::Unsupported(what) => VoiceError::Unsupported(format!("FLAC: {what}")),
        other => VoiceError::NotAudio(format!("FLAC: {other}")),
    };
    let mut reader = claxon::FlacReader::new(Cursor::new(bytes)).map_err(bad)?;
    let info = reader.streaminfo();
    let channels = u16::try_from(info.channels).unwrap_or(u16::MAX);
    // A stream that does not state its length is bounded while it is read.
    let max_frames = (f64::from(limits.max_seconds) * f64::from(info.sample_rate)) as u64;
    check_format(
        info.sample_rate,
        channels,
        info.samples.unwrap_or(0),
        limits,
    )?;
    if !(4..=32).contains(&info.bits_per_sample) {
        return Err(VoiceError::Unsupported(format!(
            "FLAC with {} bits per sample",
            info.bits_per_sample
        )));
    }
    let scale = 1.0 / (1u64 << (info.bits_per_sample - 1)) as f32;
    let max_samples = max_frames.saturating_mul(u64::from(info.channels));
    let mut out = Vec::new();
    for s in reader.samples() {
        out.push(s.map_err(bad)? as f32 * scale);
        if out.len() as u64 > max_samples {
            return Err(VoiceError::TooLong {
                max: limits.max_seconds,
            });
        }
    }
    Ok((info.sample_rate, mix(out, channels)))
}

/// Band-limited resampling by windowed-sinc interpolation (Hann window, 16 zero crossings
/// each side, cut-off at 0.95 of the lower Nyquist frequency): the same kind of filter as
/// torchaudio's `resample`, which the model's training pipeline used.
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    const ZEROS: f64 = 16.0;
    const ROLLOFF: f64 = 0.95;
    let ratio = f64::from(to) / f64::from(from);
    // Cut-off relative to the input rate's Nyquist frequency.
    let cutoff = ROLLOFF * ratio.min(1.0);
    let half = ZEROS / cutoff; // half-width of the kernel in input samples
    let n_out = ((x.len() as f64) * ratio).floor() as usize;
    let mut out = Vec::with_capacity(n_out);
    for n in 0..n_out {
        let t = n as f64 / ratio; // position in input samples
        let lo = (t - half).ceil().max(0.0) as usize;
        let hi = ((t + half).floor() as usize).min(x.len() - 1);
        let mut acc = 0.0f64;
        for (k, &v) in x.iter().enumerate().take(hi + 1).skip(lo) {
            let d = k as f64 - t;
            let arg = d * cutoff;
            let sinc = if arg.abs() < 1e-9 {
                1.0
            } else {
                (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
            };
            let w = 0.5 + 0.5 * (std::f64::consts::PI * d / half).cos();
            acc += f64::from(v) * sinc * w * cutoff;
        }
        out.push(acc as f32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
            for &s in samples {
                w.write_sample(s).unwrap();
            }
            w.finalize().unwrap();
        }
        out.into_inner()
    }

    fn tone(rate: u32, freq: f64, seconds: f64) -> Vec<i16> {
        (0..(f64::from(rate) * seconds) as usize)
            .map(|i| {
                ((2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() * 16_000.0)
                    as i16
            })
            .collect()
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_tone_survives_resampling_and_stereo_is_mixed_down() {
        // 440 Hz at 8 kHz → 16 kHz: still 440 Hz (zero crossings), the same level.
        let a = Audio::decode(
            &wav_bytes(8_000, 1, &tone(8_000, 440.0, 1.0)),
            &AudioLimits::default(),
        )
        .unwrap();
        assert_eq!(a.samples.len(), 16_000);
        let mid = &a.samples[1000..15_000];
        let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        assert!(
            (crossings as f64 - 440.0 * 14_000.0 / 16_000.0).abs() <= 2.0,
            "{crossings}"
        );
        let peak = mid.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!((peak - 16_000.0 / 32_768.0).abs() < 0.01, "{peak}");
        // Stereo with opposite channels mixes to silence.
        let t = tone(16_000, 300.0, 0.5);
        let inter: Vec<i16> = t.iter().flat_map(|&s| [s, -s]).collect();
        let s = Audio::decode(&wav_bytes(16_000, 2, &inter), &AudioLimits::default()).unwrap();
        assert_eq!(s.samples.len(), 8_000);
        assert!(s.samples.iter().all(|v| v.abs() < 1e-4));
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn bad_input_gets_its_code() {
        use consentry_types::{ErrorCode, HasErrorCode};
        let code = |b: &[u8], l: &AudioLimits| Audio::decode(b, l).unwrap_err().code();
        let l = AudioLimits::default();
        assert_eq!(code(b"hello", &l), ErrorCode::NotAudio);
        assert_eq!(
            code(b"RIFF\x00\x00\x00\x00WAVEjunk", &l),
            ErrorCode::NotAudio
        );
        assert_eq!(code(b"fLaC\x00\x00", &l), ErrorCode::NotAudio);
        // A rate outside the range, three channels.
        assert_eq!(
            code(&wav_bytes(4_000, 1, &[0; 100]), &l),
            ErrorCode::UnsupportedAudio
        );
        assert_eq!(
            code(&wav_bytes(16_000, 3, &[0; 99]), &l),
            ErrorCode::UnsupportedAudio
        );
        // Longer than the limit, by duration and by size.
        let short = AudioLimits {
            max_seconds: 0.5,
            ..l
        };
        assert_eq!(
            code(&wav_bytes(16_000, 1, &[0; 16_000]), &short),
            ErrorCode::AudioTooLong
        );
        let small = AudioLimits {
            max_bytes: 100,
            ..l
        };
        assert_eq!(
            code(&wav_bytes(16_000, 1, &[0; 1000]), &small),
            ErrorCode::AudioTooLong
        );
        // Float samples that are not numbers (found by the fuzzer): refused, not passed on.
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut out = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
            for v in [0.1f32, f32::NAN, 2.0, f32::INFINITY] {
                w.write_sample(v).unwrap();
            }
            w.finalize().unwrap();
        }
        assert_eq!(code(&out.into_inner(), &l), ErrorCode::NotAudio);
        // A truncated WAV.
        let mut w = wav_bytes(16_000, 1, &[1000; 1000]);
        w.truncate(w.len() - 501);
        let _ = Audio::decode(&w, &l); // no panic; a clear error or the samples that are there
    }
}
