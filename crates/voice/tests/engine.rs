//! The voice engine on real speech (LibriSpeech fixtures, tests/fixtures/PROVENANCE.md) with
//! the shipped model.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use consentry_face::runtime::Assets;
use consentry_types::{ErrorCode, HasErrorCode};
use consentry_voice::{Audio, AudioLimits, VoiceEngine, DEFAULT_THRESHOLD};

fn clip(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/voice")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn engine() -> VoiceEngine {
    VoiceEngine::load(&Assets::locate(), 1)
        .unwrap_or_else(|e| panic!("{e}: run python3 setup/fetch.py"))
}

/// 16-bit WAV bytes of mono samples at `rate`, repeated in `channels` channels.
fn wav(samples: &[f32], rate: u32, channels: u16) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for &s in samples {
        for _ in 0..channels {
            w.write_sample((s * 32_767.0) as i16).unwrap();
        }
    }
    w.finalize().unwrap();
    out.into_inner()
}

#[test]
fn the_same_speaker_matches_and_another_does_not() {
    let e = engine();
    let a = e.embed(&clip("1688-142285-0004.flac")).unwrap();
    let b = e.embed(&clip("1688-142285-0005.flac")).unwrap();
    let c = e.embed(&clip("2033-164914-0004.flac")).unwrap();
    assert_eq!(a.0.len(), 192);
    let norm: f32 = a.0.iter().map(|v| v * v).sum();
    assert!((norm - 1.0).abs() < 1e-4);
    let same = a.cosine(&b);
    let other = a.cosine(&c).max(b.cosine(&c));
    assert!(same >= DEFAULT_THRESHOLD, "same speaker {same}");
    assert!(other < DEFAULT_THRESHOLD, "different speakers {other}");
    assert!(same - other > 0.15, "margin {same} vs {other}");
    // The same recording embeds the same way every time.
    assert_eq!(e.embed(&clip("1688-142285-0004.flac")).unwrap(), a);
}

#[test]
fn wav_stereo_and_other_rates_give_the_same_voice() {
    let e = engine();
    let flac = clip("1688-142285-0004.flac");
    let reference = e.embed(&flac).unwrap();
    let audio = Audio::decode(&flac, &AudioLimits::default()).unwrap();
    // The same samples as 16-bit stereo WAV: the same embedding, near enough.
    let stereo = e.embed(&wav(&audio.samples, 16_000, 2)).unwrap();
    assert!(
        stereo.cosine(&reference) > 0.999,
        "{}",
        stereo.cosine(&reference)
    );
    // Resampled to 48 kHz and back by the engine: the speaker is still the same.
    let up = consentry_voice::audio::resample(&audio.samples, 16_000, 48_000);
    let at48 = e.embed(&wav(&up, 48_000, 1)).unwrap();
    assert!(
        at48.cosine(&reference) > 0.98,
        "{}",
        at48.cosine(&reference)
    );
}

#[test]
fn short_long_and_non_audio_are_refused_with_their_codes() {
    let e = engine();
    let audio = Audio::decode(&clip("2033-164914-0004.flac"), &AudioLimits::default()).unwrap();
    let short = wav(&audio.samples[..16_000 * 2], 16_000, 1);
    assert_eq!(
        e.embed(&short).unwrap_err().code(),
        ErrorCode::AudioTooShort
    );
    // Ten seconds of silence, and of a hiss far under any voice, are not a voice: refused as
    // too short (0 s of sound), never embedded. The same length of speech is taken.
    for level in [0.0, 0.001] {
        let quiet: Vec<f32> = (0..16_000 * 10)
            .map(|i| if i % 2 == 0 { level } else { -level })
            .collect();
        let err = e.embed(&wav(&quiet, 16_000, 1)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::AudioTooShort, "{level}");
        assert!(err.to_string().starts_with("0.0 s"), "{err}");
    }
    let sound = audio.sound_seconds();
    assert!(sound > 2.0 && sound <= audio.seconds(), "{sound}");
    let mut long = audio.samples.clone();
    while long.len() < 16_000 * 31 {
        long.extend_from_slice(&audio.samples);
    }
    assert_eq!(
        e.embed(&wav(&long, 16_000, 1)).unwrap_err().code(),
        ErrorCode::AudioTooLong
    );
    assert_eq!(
        e.embed(b"not audio at all").unwrap_err().code(),
        ErrorCode::NotAudio
    );
    let jpeg = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/t1.jpg"),
    )
    .unwrap();
    assert_eq!(e.embed(&jpeg).unwrap_err().code(), ErrorCode::NotAudio);
}
