//! The `consentry` binary end to end: output shapes, exit statuses, pairs and eval files.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn assets() -> PathBuf {
    match std::env::var_os("CONSENTRY_ASSETS") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/consentry/assets")
        }
    }
}

fn photo(name: &str) -> PathBuf {
    assets().join("photos").join(name)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(args)
        .output()
        .expect("run consentry")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn p(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn bench_pipeline_times_each_stage_and_names_the_cpu() {
    let out = run(&[
        "--models",
        "standard-int8",
        "bench",
        "pipeline",
        p(&photo("obama2.jpg")),
        "--repeat",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["failures"], 0);
    assert_eq!(v["timed_runs"], 2);
    for stage in ["decode", "detect", "align", "embed"] {
        assert!(
            v["stage_median_ms"][stage].as_f64().unwrap_or(0.0) > 0.0,
            "{v}"
        );
    }
    // The figure's CPU, as the benchmarks record it: what this machine has.
    let cpu = v["cpu"].as_str().unwrap_or_default();
    assert!(cpu.starts_with("AVX2 + FMA"), "{cpu}");
    let vnni = std::arch::is_x86_feature_detected!("avx512vnni")
        || std::arch::is_x86_feature_detected!("avxvnni");
    assert_eq!(cpu.contains("no VNNI"), !vnni, "{cpu}");
    assert_eq!(
        cpu.contains("AVX-512 VNNI"),
        std::arch::is_x86_feature_detected!("avx512vnni"),
        "{cpu}"
    );
}

#[test]
fn detect_json_has_boxes_landmarks_scores() {
    let out = run(&["detect", p(&fixture("t1.jpg")), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v = &json_lines(&out)[0];
    let faces = v["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 6);
    for f in faces {
        assert_eq!(f["box"].as_array().map(Vec::len), Some(4));
        assert_eq!(f["landmarks"].as_array().map(Vec::len), Some(5));
        assert!(f["landmarks"][0].as_array().map(Vec::len) == Some(2));
        assert!(f["score"].as_f64().unwrap_or(0.0) > 0.5);
    }
}

#[test]
fn compare_json_decides_match() {
    let same = run(&[
        "compare",
        p(&photo("obama.jpg")),
        p(&photo("obama3.jpg")),
        "--json",
    ]);
    assert!(same.status.success(), "{same:?}");
    let v = &json_lines(&same)[0];
    assert_eq!(v["match"], Value::Bool(true));
    assert!(v["score"].as_f64().unwrap_or(0.0) > v["threshold"].as_f64().unwrap_or(1.0));
    let diff = run(&[
        "compare",
        p(&photo("obama.jpg")),
        p(&photo("biden.jpg")),
        "--json",
    ]);
    assert_eq!(json_lines(&diff)[0]["match"], Value::Bool(false));
}

#[test]
fn bad_inputs_exit_with_their_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, b"not an image at all").expect("write");
    let out = run(&["compare", p(&text), p(&photo("obama.jpg")), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_lines(&out)[0]["error"]["code"], "not_an_image");

    let jpeg = std::fs::read(photo("obama2.jpg")).expect("photo");
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &jpeg[..jpeg.len() / 2]).expect("write");
    let out = run(&["detect", p(&cut), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_lines(&out)[0]["error"]["code"], "truncated_image");

    let missing = dir.path().join("missing.jpg");
    let out = run(&["detect", p(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("file_unreadable"));

    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(200, 200, image::Rgb([200, 200, 200]))
        .save(&blank)
        .expect("save");
    let out = run(&["compare", p(&blank), p(&photo("obama.jpg")), "--json"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json_lines(&out)[0]["error"]["code"], "no_face");

    let out = run(&[
        "--assets",
        p(dir.path()),
        "detect",
        p(&photo("obama.jpg")),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(json_lines(&out)[0]["error"]["code"], "model_unavailable");
}

#[test]
fn compare_pairs_writes_one_line_per_pair_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.jpg");
    std::fs::write(&bad, b"junk").expect("write");
    let list = dir.path().join("pairs.tsv");
    let lines = [
        format!("{}\t{}", p(&photo("obama.jpg")), p(&photo("obama2.jpg"))),
        format!("{}\t{}", p(&bad), p(&photo("obama.jpg"))),
        format!("{}\t{}", p(&photo("biden.jpg")), p(&photo("yaoming.jpg"))),
    ];
    std::fs::write(&list, lines.join("\n")).expect("write");
    let out = run(&["compare", "--pairs", p(&list), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v = json_lines(&out);
    assert_eq!(v.len(), 3);
    assert_eq!(v[0]["match"], Value::Bool(true));
    assert_eq!(v[0]["a"], p(&photo("obama.jpg")));
    assert_eq!(v[1]["error"]["code"], "not_an_image");
    assert_eq!(v[2]["match"], Value::Bool(false));
}

#[test]
fn embed_prints_a_line_per_image() {
    let out = run(&[
        "embed",
        p(&photo("obama.jpg")),
        p(&photo("biden.jpg")),
        "--json",
    ]);
    let v = json_lines(&out);
    assert_eq!(v.len(), 2);
    assert_eq!(v[1]["image"], p(&photo("biden.jpg")));
    assert_eq!(v[0]["embedding"].as_array().map(Vec::len), Some(128));
}

/// `--detect-side` sets the quick pass's input: a large portrait found at 160 pixels gives a
/// slightly different embedding of the same face; a side out of range is refused.
#[test]
fn detect_side_changes_the_quick_pass_and_is_range_checked() {
    let embedding = |side: &str| -> Vec<f64> {
        let out = run(&[
            "--detect-side",
            side,
            "embed",
            p(&photo("obama.jpg")),
            "--json",
        ]);
        let v = json_lines(&out);
        v[0]["embedding"]
            .as_array()
            .expect("an embedding")
            .iter()
            .filter_map(Value::as_f64)
            .collect()
    };
    let (wide, narrow) = (embedding("320"), embedding("160"));
    assert_eq!((wide.len(), narrow.len()), (128, 128));
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let cosine =
        wide.iter().zip(&narrow).map(|(a, b)| a * b).sum::<f64>() / (norm(&wide) * norm(&narrow));
    assert!(cosine > 0.8 && cosine < 0.99999, "cosine {cosine}");
    let refused = run(&["--detect-side", "32", "embed", p(&photo("obama.jpg"))]);
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn eval_reports_kfold_and_writes_roc() {
    // A tiny LFW-style set from the sample photos: 2 folds of 1 genuine + 1 impostor pair.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    for (person, files) in [
        ("Obama", &["obama.jpg", "obama2.jpg", "obama3.jpg"][..]),
        ("Biden", &["biden.jpg"][..]),
        ("Yao", &["yaoming.jpg"][..]),
    ] {
        std::fs::create_dir_all(root.join(person)).expect("mkdir");
        for (i, f) in files.iter().enumerate() {
            std::fs::copy(
                photo(f),
                root.join(person).join(format!("{person}_{:04}.jpg", i + 1)),
            )
            .expect("copy");
        }
    }
    let pairs = dir.path().join("pairs.txt");
    std::fs::write(
        &pairs,
        "2\t1\nObama\t1\t2\nObama\t1\tBiden\t1\nObama\t2\t3\nBiden\t1\tYao\t1\n",
    )
    .expect("write");
    let out_dir = dir.path().join("out");
    let out = run(&[
        "eval",
        "--pairs",
        p(&pairs),
        "--root",
        p(&root),
        "--out",
        p(&out_dir),
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let m = &json_lines(&out)[0];
    assert_eq!(m["pairs"], 4);
    assert_eq!(m["kfold_accuracy"], 1.0);
    assert_eq!(m["failures_to_enrol"], 0);
    let csv = std::fs::read_to_string(out_dir.join("roc.csv")).expect("roc.csv");
    assert!(csv.starts_with("threshold,far,tar\n") && csv.lines().count() >= 3);
    let png = std::fs::read(out_dir.join("roc.png")).expect("roc.png");
    assert!(png.starts_with(b"\x89PNG"));
}

/// The ONNX Runtime library is native code loaded into the process: one that is not the
/// pinned build (here the pinned one with a byte appended) is refused before it is loaded,
/// like an altered model.
#[test]
fn an_altered_runtime_library_is_refused() {
    let dir = std::env::temp_dir().join(format!("consentry-altered-lib-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    let real = assets();
    std::os::unix::fs::symlink(real.join("models"), dir.join("models")).unwrap();
    let mut lib = std::fs::read(real.join("lib/libonnxruntime.so")).unwrap();
    lib.push(0);
    std::fs::write(dir.join("lib/libonnxruntime.so"), &lib).unwrap();
    let out = run(&[
        "--assets",
        p(&dir),
        "detect",
        p(&photo("obama.jpg")),
        "--json",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["error"]["code"], "model_unavailable", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("libonnxruntime.so has sha256"),
        "{message}"
    );
}
