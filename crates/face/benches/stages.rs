//! Criterion benches for each stage of the face pipeline, 1 ONNX Runtime thread.
//!
//! `cargo bench -p consentry-face --bench stages` (needs `python3 setup/fetch.py`). Photos: the
//! sample portrait obama.jpg (910x1137) and an LFW-sized 250x250 crop of it.
#![allow(missing_docs, clippy::expect_used)]

use consentry_face::{quality, EngineConfig, FaceEngine};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn stages(c: &mut Criterion) {
    let engine = FaceEngine::load(&EngineConfig::default()).expect("run python3 setup/fetch.py");
    let path = EngineConfig::default().assets.path("photos/obama.jpg");
    let bytes = std::fs::read(&path).expect("photo");
    let big = engine.decode(&bytes).expect("decode");
    let face = engine.detect(&big).expect("detect")[0].clone();
    // A 250x250 crop around the face, like an LFW photo, re-encoded as JPEG.
    let [x, y, w, h] = face.bbox;
    let side = ((w.max(h) * 1.6) as u32).min(big.width()).min(big.height());
    let (cx, cy) = ((x + w / 2.0) as u32, (y + h / 2.0) as u32);
    let x0 = cx.saturating_sub(side / 2).min(big.width() - side);
    let y0 = cy.saturating_sub(side / 2).min(big.height() - side);
    let crop = image::imageops::crop_imm(&big, x0, y0, side, side).to_image();
    let small = image::imageops::resize(&crop, 250, 250, image::imageops::FilterType::Triangle);
    let mut small_jpeg = std::io::Cursor::new(Vec::new());
    small
        .write_to(&mut small_jpeg, image::ImageFormat::Jpeg)
        .expect("encode");
    let small_jpeg = small_jpeg.into_inner();
    let small_face = engine.detect(&small).expect("detect")[0].clone();
    let aligned = engine.align(&small, &small_face).expect("align");
    let a = engine.embed_aligned(&aligned).expect("embed");

    let mut g = c.benchmark_group("face");
    g.sample_size(30);
    g.bench_function("decode 910x1137 jpeg", |b| {
        b.iter(|| engine.decode(black_box(&bytes)))
    });
    g.bench_function("decode 250x250 jpeg", |b| {
        b.iter(|| engine.decode(black_box(&small_jpeg)))
    });
    // DCT-scaled decoding (issue #15): jpeg-decoder, the one Rust decoder that scales while
    // decoding, at 1/1, 1/2, 1/4 and 1/8, against the decoder we ship (zune-jpeg, full size).
    for div in [1u16, 2, 4, 8] {
        g.bench_function(
            format!("decode 910x1137 jpeg, jpeg-decoder at 1/{div}"),
            |b| {
                b.iter(|| {
                    let mut d = jpeg_decoder::Decoder::new(black_box(&bytes[..]));
                    d.scale(910 / div, 1137 / div).expect("scale");
                    d.decode().expect("decode")
                })
            },
        );
    }
    // The detector's input alone: a large photo (box reduction by 3, then bilinear to 320)
    // and one that fits as it is (copied).
    for (name, img) in [
        ("detector input 910x1137 (320)", &big),
        ("detector input 250x250 (copied)", &small),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                consentry_face::detect::detector_input(
                    black_box(img),
                    320,
                    consentry_face::detect::DetectorModel::YuNet,
                )
            })
        });
    }
    g.bench_function("detect 250x250", |b| {
        b.iter(|| engine.detect(black_box(&small)))
    });
    g.bench_function("detect 910x1137 quick (320)", |b| {
        b.iter(|| engine.detect_quick(black_box(&big)))
    });
    g.bench_function("detect 910x1137 full (640)", |b| {
        b.iter(|| engine.detect(black_box(&big)))
    });
    g.bench_function("primary face", |b| {
        let dets = engine.detect(&big).expect("detect");
        b.iter(|| quality::primary(black_box(&dets), big.width(), big.height()))
    });
    g.bench_function("align 112x112", |b| {
        b.iter(|| engine.align(black_box(&small), &small_face))
    });
    let int8 = FaceEngine::load(&EngineConfig {
        models: consentry_face::ModelSet::StandardInt8,
        ..EngineConfig::default()
    })
    .expect("int8 models");
    g.bench_function("embed (SFace int8)", |b| {
        b.iter(|| int8.embed_aligned(black_box(&aligned)))
    });
    g.bench_function("embed (SFace)", |b| {
        b.iter(|| engine.embed_aligned(black_box(&aligned)))
    });
    g.bench_function("sharpness", |b| {
        b.iter(|| quality::sharpness(black_box(&aligned)))
    });
    g.bench_function("cosine 128-d", |b| {
        b.iter(|| black_box(&a).cosine(black_box(&a)))
    });
    g.bench_function("whole pipeline 250x250", |b| {
        b.iter(|| {
            engine
                .decode(black_box(&small_jpeg))
                .and_then(|img| engine.embed_primary(&img))
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
