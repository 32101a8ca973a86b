//! `consentry pad eval` end to end on the shipped model and the sample photos. The attack
//! figures need attack photos, which the project may not ship (NUAA is for measurement only):
//! they are in docs/liveness.md with their command. Here: camera photos of real people are
//! taken for bona fide, an image without a face counts as a failure to detect (not as an
//! error, and not in the rates), and the JSON carries every key the issue names.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use serde_json::Value;

mod common;
use common::{assets, consentry};

#[test]
fn pad_eval_takes_camera_photos_for_real_and_counts_missing_faces_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (real, attack) = (dir.path().join("real"), dir.path().join("attack/print"));
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&attack).unwrap();
    // players.jpg's main face scores 0.44 with the channels in RGB order and 0.999 in the BGR
    // order the default model was trained on (docs/liveness.md): it guards the order.
    for name in ["obama.jpg", "obama2.jpg", "biden.jpg", "players.jpg"] {
        std::fs::copy(assets().join("photos").join(name), real.join(name)).unwrap();
    }
    // A grey PNG: no face in it.
    let blank = image::RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]));
    blank.save(attack.join("blank.png")).unwrap();
    std::fs::copy(
        assets().join("photos/obama3.jpg"),
        attack.join("obama3.jpg"),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = consentry(&[
        "pad",
        "eval",
        "--real",
        real.to_str().unwrap(),
        "--attack",
        &format!("print={}", attack.display()),
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "apcer",
        "bpcer",
        "bpcer_at_apcer_5",
        "bpcer_at_apcer_1",
        "failures_to_detect",
        "n_real",
        "n_attack",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert_eq!(
        (v["n_real"].as_u64(), v["n_attack"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(v["failures_to_detect"]["attack"], 1);
    assert_eq!(
        v["bpcer"].as_f64(),
        Some(0.0),
        "camera photos are bona fide: {v}"
    );
    // The one "attack" here is a real photo too, so it is (rightly) taken for real.
    assert_eq!(v["apcer"].as_f64(), Some(1.0), "{v}");
    assert!(out_dir.join("det.png").exists() && out_dir.join("scores.csv").exists());
    // A profile that does not exist is refused with a clear message.
    let bad = consentry(&[
        "pad", "eval", "--real", ".", "--attack", ".", "--model", "nope", "--json",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("faceplugin"));
}

/// A still photo played as a video does no action: `pad video` judges it a failure of the
/// action check, and says what it saw. (The real clips and replay attacks are measured in
/// docs/liveness.md: the project may not ship them.) ffmpeg makes the clip and takes its
/// frames; `.ci/run` installs it and sets CONSENTRY_REQUIRE_FFMPEG, elsewhere the test says it
/// skipped.
#[test]
fn a_still_photo_clip_fails_every_challenge() {
    if std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CONSENTRY_REQUIRE_FFMPEG").is_none(),
            "ffmpeg is missing: apt-get install ffmpeg"
        );
        eprintln!("SKIPPED: ffmpeg is missing (apt-get install ffmpeg)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("still.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-i"])
        .arg(assets().join("photos/obama.jpg"))
        .args([
            "-t",
            "3",
            "-r",
            "30",
            "-vf",
            "scale=640:-2",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success());
    for challenge in ["blink", "left,right", "up"] {
        let out = consentry(&[
            "pad",
            "video",
            clip.to_str().unwrap(),
            "--challenge",
            challenge,
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["pass"], false, "{challenge}: {v}");
        assert_eq!(v["checks"]["actions"], false, "{challenge}: {v}");
        assert_eq!(v["events"], serde_json::json!([]), "{challenge}: {v}");
        assert_eq!(v["checks"]["same_face"], true, "{challenge}: {v}");
        assert_eq!(v["frames_judged"], 30, "{challenge}: {v}");
    }
    let bad = consentry(&[
        "pad",
        "video",
        clip.to_str().unwrap(),
        "--challenge",
        "wink",
        "--json",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}
