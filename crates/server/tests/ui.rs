//! The web UI in a real browser: Debian's Chromium, driven by `playwright-core` from the npm
//! registry (`tests/ui/flow.mjs`), against a server on a loopback port with a fresh SQLite
//! database. The kiosk's camera is Chromium's fake device, fed from sample photos that this
//! test turns into y4m files. The flow and what it checks are described in `tests/ui/flow.mjs`;
//! this side sets the server up, runs it, and then checks the database and the audit log
//! behind what the browser saw.
//!
//! Without Chromium or Node.js the test says so and passes; with `CONSENTRY_REQUIRE_BROWSER`
//! set (as `.ci/run` does) it fails instead.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use consentry_core::{Core, KeyRequest, Keyring, Role};
use consentry_db::Db;
use consentry_testkit::{engine, photo, Scratch};

/// The camera's frame size.
const W: u32 = 640;
const H: u32 = 480;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A photo as the camera would see the person: a window around the face, as a y4m clip.
fn y4m(name: &str, out: &Path) {
    let full = image::load_from_memory(&photo(name)).unwrap().to_rgb8();
    // A photo shows the whole person; a kiosk camera sees head and shoulders: a window in the
    // frame's shape, three face heights tall, around the face.
    let faces = engine().detect(&full).unwrap();
    let face = faces
        .iter()
        .max_by(|a, b| (a.bbox[2] * a.bbox[3]).total_cmp(&(b.bbox[2] * b.bbox[3])))
        .unwrap_or_else(|| panic!("no face in {name}"));
    let [x, y, w, h] = face.bbox.map(f64::from);
    let (iw, ih) = (f64::from(full.width()), f64::from(full.height()));
    let win_h = (3.0 * h).min(ih).min(iw * f64::from(H) / f64::from(W));
    let win_w = win_h * f64::from(W) / f64::from(H);
    let left = (x + w / 2.0 - win_w / 2.0).clamp(0.0, iw - win_w);
    let top = (y + h / 2.0 - win_h / 2.0).clamp(0.0, ih - win_h);
    let img = image::imageops::crop_imm(&full, left as u32, top as u32, win_w as u32, win_h as u32)
        .to_image();
    write_y4m(&img, out);
}

/// An image as a two-frame y4m clip (4:2:0, full-range BT.601 as `C420jpeg` says), scaled to
/// fit the frame and centred on grey.
fn write_y4m(img: &image::RgbImage, out: &Path) {
    let scale = f64::min(
        f64::from(W) / f64::from(img.width()),
        f64::from(H) / f64::from(img.height()),
    );
    let (w, h) = (
        ((f64::from(img.width()) * scale) as u32).max(1),
        ((f64::from(img.height()) * scale) as u32).max(1),
    );
    let small = image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(W, H, image::Rgb([128, 128, 128]));
    image::imageops::overlay(
        &mut canvas,
        &small,
        i64::from((W - w) / 2),
        i64::from((H - h) / 2),
    );
    let rgb = |x: u32, y: u32| {
        let p = canvas.get_pixel(x, y).0;
        (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
    };
    let clamp = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    let mut y_plane = Vec::with_capacity((W * H) as usize);
    for y in 0..H {
        for x in 0..W {
            let (r, g, b) = rgb(x, y);
            y_plane.push(clamp(0.299 * r + 0.587 * g + 0.114 * b));
        }
    }
    let mut u_plane = Vec::with_capacity((W * H / 4) as usize);
    let mut v_plane = Vec::with_capacity((W * H / 4) as usize);
    for y in (0..H).step_by(2) {
        for x in (0..W).step_by(2) {
            let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = rgb(x + dx, y + dy);
                r += p.0 / 4.0;
                g += p.1 / 4.0;
                b += p.2 / 4.0;
            }
            u_plane.push(clamp(-0.168_736 * r - 0.331_264 * g + 0.5 * b + 128.0));
            v_plane.push(clamp(0.5 * r - 0.418_688 * g - 0.081_312 * b + 128.0));
        }
    }
    let mut file = format!("YUV4MPEG2 W{W} H{H} F25:1 Ip A1:1 C420jpeg\n").into_bytes();
    for _ in 0..2 {
        file.extend_from_slice(b"FRAME\n");
        file.extend_from_slice(&y_plane);
        file.extend_from_slice(&u_plane);
        file.extend_from_slice(&v_plane);
    }
    std::fs::write(out, file).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_in_a_real_browser() {
    let required = std::env::var_os("CONSENTRY_REQUIRE_BROWSER").is_some();
    let ui_dir = repo().join("tests/ui");
    let node = Command::new("node").arg("--version").output().is_ok();
    let playwright = ui_dir.join("node_modules/playwright-core").exists();
    let Some(browser) = chromium().filter(|_| node && playwright) else {
        assert!(
            !required,
            "CONSENTRY_REQUIRE_BROWSER is set, but Chromium (apt-get install chromium), Node.js or \
             tests/ui/node_modules (python3 setup/fetch.py) is missing"
        );
        eprintln!("skipped: needs Chromium, Node.js and tests/ui/node_modules");
        return;
    };

    let scratch = Scratch::new("server_ui").await;
    let url = scratch.sqlite_url("ui");
    let db = Db::open(&url).await.unwrap();
    let (keys, _) = Keyring::open(&scratch.key_dir("ui")).unwrap();
    let mut core = Core::new(db.clone(), engine(), keys).await.unwrap();
    core.set_voice(consentry_testkit::voice_engine());
    let core = Arc::new(core);
    let (tenant, admin_key) = core.bootstrap_tenant("Browser test").await.unwrap();
    let admin = core.authenticate(&admin_key).await.unwrap();
    let (_, operator_key) = core
        .issue_key(&admin, &KeyRequest::role(Role::Operator))
        .await
        .unwrap();
    let (_, device_key) = core
        .issue_key(
            &admin,
            &KeyRequest {
                site: Some("gate-1".into()),
                ..KeyRequest::role(Role::Device)
            },
        )
        .await
        .unwrap();

    let (_, device2_key) = core
        .issue_key(
            &admin,
            &KeyRequest {
                site: Some("gate-2".into()),
                ..KeyRequest::role(Role::Device)
            },
        )
        .await
        .unwrap();

    // A visitor with a pass for gate-1, whose QR code the kiosk's camera will scan.
    let operator = core.authenticate(&operator_key).await.unwrap();
    let visitor = core.create_subject(&operator).await.unwrap();
    core.grant_consent(&operator, &visitor, consentry_core::Purpose::Pass, 30)
        .await
        .unwrap();
    let visitor_pass = core
        .issue_pass(
            &operator,
            &visitor,
            "gate-1",
            None,
            Some(7),
            consentry_pass::Alg::EdDSA,
        )
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(consentry_server::serve(core.clone(), listener));

    // Where the clips and the screenshots go: target/ui-screenshots stays after the run as
    // the test's artefact.
    let shots = repo().join("target/ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let clips = scratch.key_dir("clips");
    std::fs::create_dir_all(&clips).unwrap();
    for (name, file) in [
        ("obama.jpg", "enrol.y4m"),
        ("obama2.jpg", "same.y4m"),
        ("biden.jpg", "other.y4m"),
    ] {
        y4m(name, &clips.join(file));
    }
    let qr = consentry_pass::qr::image(&visitor_pass.pass, 6).unwrap();
    write_y4m(
        &image::DynamicImage::ImageLuma8(qr).to_rgb8(),
        &clips.join("pass.y4m"),
    );

    // The fake microphone plays a LibriSpeech recording (as WAV, which Chromium reads) in a
    // loop.
    speech_wav(
        &consentry_testkit::voice_clip("1688-142285-0004.flac"),
        &clips.join("speech.wav"),
    );
    let mut node = Command::new("node");
    node.arg(ui_dir.join("flow.mjs"))
        .env("BASE", &base)
        .env("CHROMIUM", &browser)
        .env("ADMIN_KEY", admin_key.as_str())
        .env("OPERATOR_KEY", operator_key.as_str())
        .env("DEVICE_KEY", device_key.as_str())
        .env("DEVICE2_KEY", device2_key.as_str())
        .env("CAM_ENROL", clips.join("enrol.y4m"))
        .env("CAM_SAME", clips.join("same.y4m"))
        .env("CAM_OTHER", clips.join("other.y4m"))
        .env("CAM_PASS", clips.join("pass.y4m"))
        .env("MIC", clips.join("speech.wav"))
        .env("SHOTS", &shots);
    // The server runs on this runtime's workers while node drives the browser.
    let out = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser flow failed:\n{stdout}\n{stderr}"
    );
    // The flow's last line: what it did, as JSON.
    let summary: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no summary from the flow:\n{stdout}"));
    let subject = summary["subject"].as_str().unwrap().to_string();

    // Behind the pages: the audit log holds what the browser did, in order, on this tenant.
    let auditor = core.authenticate(&admin_key).await.unwrap();
    let entries = core.audit_entries(&auditor, 0, 1000).await.unwrap();
    let actions: Vec<(String, Option<String>, String)> = entries
        .iter()
        .map(|(_, json)| {
            let e: consentry_audit::Entry = serde_json::from_str(json).unwrap();
            assert_eq!(e.tenant, tenant);
            (e.action, e.target, e.outcome)
        })
        .collect();
    let at = |action: &str, outcome: &str| {
        actions
            .iter()
            .position(|(a, s, o)| a == action && s.as_deref() == Some(&subject) && o == outcome)
            .unwrap_or_else(|| panic!("no {action} {outcome} of {subject} in {actions:?}"))
    };
    let enrolled = at("enrol", "ok");
    let allowed = at("verify", "allow");
    let denied = at("verify", "deny");
    let withdrawn = at("consent.withdraw", "ok");
    assert!(enrolled < allowed && allowed < denied && denied < withdrawn);
    // And a deny after the withdrawal.
    assert!(actions
        .iter()
        .skip(withdrawn)
        .any(|(a, s, o)| a == "verify" && s.as_deref() == Some(&subject) && o == "deny"));
    // Last, the person deleted everything: the record is gone, the log keeps the fact.
    let deleted = at("subject.delete", "ok");
    assert!(withdrawn < deleted);
    assert!(matches!(
        core.subject(&auditor, &subject).await,
        Err(consentry_core::CoreError::NotFound)
    ));
    // The person enrolled with a voice was verified by face and voice together.
    let voiced = summary["voice_subject"].as_str().unwrap();
    for (action, outcome) in [("enrol.voice", "ok"), ("verify.face_voice", "allow")] {
        assert!(
            actions
                .iter()
                .any(|(a, s, o)| a == action && s.as_deref() == Some(voiced) && o == outcome),
            "no {action} {outcome} of {voiced}"
        );
    }
    // The visitor's pass was checked in by the camera scan.
    assert!(actions
        .iter()
        .any(|(a, _, o)| a == "pass.checkin" && o == "ok"));

    server.abort();
    core.close().await;
    scratch.finish().await;
}

/// A FLAC recording as a 16 kHz mono 16-bit WAV.
fn speech_wav(flac: &[u8], out: &Path) {
    let audio =
        consentry_voice::Audio::decode(flac, &consentry_voice::AudioLimits::default()).unwrap();
    std::fs::write(out, consentry_testkit::wav_16k(&audio.samples)).unwrap();
}
