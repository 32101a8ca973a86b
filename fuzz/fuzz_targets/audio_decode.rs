//! WAV and FLAC decoding, mixing down and resampling: any bytes give audio or a catalogue
//! error, never a panic, and nothing longer than the limits is decoded.
#![no_main]

use consentry_voice::{Audio, AudioLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = AudioLimits {
        max_bytes: 1 << 20,
        max_seconds: 2.0,
    };
    if let Ok(audio) = Audio::decode(data, &limits) {
        // At most the limit's length (at 16 kHz, plus a resampling rounding).
        assert!(audio.samples.len() <= 32_001);
        assert!(audio.samples.iter().all(|v| v.is_finite()));
        let _ = consentry_voice::fbank::features(&audio.samples);
    }
});
