//! `consentry voice` end to end on the LibriSpeech fixtures: output shapes, exit statuses,
//! pairs files and the evaluation's files.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn clip(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/voice")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(args)
        .output()
        .expect("run consentry")
}

fn json(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

const A1: &str = "1688-142285-0004.flac";
const A2: &str = "1688-142285-0005.flac";
const B: &str = "2033-164914-0004.flac";

#[test]
fn compare_says_same_and_different_speakers() {
    let same = run(&["voice", "compare", &clip(A1), &clip(A2), "--json"]);
    assert!(same.status.success(), "{same:?}");
    let v = &json(&same)[0];
    assert_eq!(v["match"], true);
    assert_eq!(
        v["threshold"].as_f64().unwrap() as f32,
        consentry_voice::DEFAULT_THRESHOLD
    );
    let other = run(&["voice", "compare", &clip(A1), &clip(B), "--json"]);
    let w = &json(&other)[0];
    assert_eq!(w["match"], false);
    assert!(v["score"].as_f64().unwrap() > w["score"].as_f64().unwrap() + 0.15);
}

#[test]
fn embed_and_pairs_report_errors_per_line_in_order() {
    let dir = std::env::temp_dir().join(format!("consentry-voice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.wav");
    std::fs::write(&junk, b"RIFF....WAVEnot really").unwrap();
    let junk = junk.to_string_lossy().into_owned();
    let out = run(&["voice", "embed", "--json", &clip(A1), &junk]);
    assert!(out.status.success());
    let lines = json(&out);
    assert_eq!(lines[0]["embedding"].as_array().unwrap().len(), 192);
    assert_eq!(lines[1]["error"]["code"], "not_audio");

    let pairs = dir.join("pairs.tsv");
    std::fs::write(
        &pairs,
        format!(
            "{}\t{}\n{}\t{}\n{}\t{}\n",
            clip(A1),
            clip(A2),
            clip(A1),
            junk,
            clip(A2),
            clip(B)
        ),
    )
    .unwrap();
    let out = run(&[
        "voice",
        "compare",
        "--pairs",
        pairs.to_str().unwrap(),
        "--json",
    ]);
    let lines = json(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["match"], true);
    assert_eq!(lines[1]["error"]["code"], "not_audio");
    assert_eq!(lines[2]["match"], false);

    // Too short for compare (3 s minimum): refused with its code and exit status 3.
    let audio = consentry_voice::Audio::decode(
        &std::fs::read(clip(B)).unwrap(),
        &consentry_voice::AudioLimits::default(),
    )
    .unwrap();
    let short = dir.join("short.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&short, spec).unwrap();
    for s in &audio.samples[..32_000] {
        w.write_sample((s * 32_767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    let out = run(&[
        "voice",
        "compare",
        short.to_str().unwrap(),
        &clip(A1),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json(&out)[0]["error"]["code"], "audio_too_short");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_writes_its_metrics_scores_and_plot() {
    let dir = std::env::temp_dir().join(format!("consentry-voice-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pairs = dir.join("pairs.tsv");
    std::fs::write(
        &pairs,
        format!("{A1}\t{A2}\t1\n{A1}\t{B}\t0\n{A2}\t{B}\t0\n"),
    )
    .unwrap();
    let root = PathBuf::from(clip(A1)).parent().unwrap().to_path_buf();
    let out_dir = dir.join("out");
    let out = run(&[
        "voice",
        "eval",
        "--pairs",
        pairs.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let m = &json(&out)[0];
    assert_eq!(m["pairs"], 3);
    assert_eq!(m["genuine"], 1);
    assert_eq!(m["eer"], 0.0);
    assert_eq!(m["accuracy"], 1.0);
    for f in ["metrics.json", "scores.tsv", "det.png"] {
        assert!(out_dir.join(f).metadata().unwrap().len() > 0, "{f}");
    }
    let png = std::fs::read(out_dir.join("det.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    // A malformed pairs line is refused with its code.
    std::fs::write(&pairs, format!("{A1}\t{A2}\n")).unwrap();
    let out = run(&[
        "voice",
        "eval",
        "--pairs",
        pairs.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(json(&out)[0]["error"]["code"], "invalid_request");
    std::fs::remove_dir_all(&dir).unwrap();
}
