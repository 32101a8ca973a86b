#!/usr/bin/env python3
"""Whole-pipeline speed per photo, side by side in one run, on the same images:

  consentry      decode + YuNet (quick pass) + alignment + SFace, 1 thread (`consentry bench pipeline`)
  opencv         cv2.FaceDetectorYN + cv2.FaceRecognizerSF (alignCrop + feature), same models, 1 thread
  face_recognition  dlib HOG detector + ResNet encoder (face_recognition 1.3.0), 1 thread

and, on the same aligned crops, whether Consentry's SFace embeddings agree with OpenCV's.

Usage: python3 bench/compare_pipelines.py [--images GLOB ...] [--limit N] [--repeat R]
                                          [--models standard|standard-int8]
Defaults: 200 LFW dev photos from ../shared/data/lfw-dev (when present) and, separately, the
910x1137 obama.jpg. The peers are installed, pinned (bench/requirements.txt), into
~/.cache/consentry/bench-venv on first use. Run `python3 setup/fetch.py` and
`cargo build --release` first.
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "consentry"
ASSETS = Path(os.environ.get("CONSENTRY_ASSETS", CACHE / "assets"))
VENV = CACHE / "bench-venv"


def ensure_venv():
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    stamp = VENV / "requirements.txt"
    req = (REPO / "bench" / "requirements.txt").read_text()
    if not (py.exists() and stamp.exists() and stamp.read_text() == req):
        print("bench: installing peers into", VENV, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run(pip + ["-r", str(REPO / "bench" / "requirements.txt")], check=True)
        # face_recognition declares `dlib`, which would build from source: dlib-bin provides it.
        subprocess.run(pip + ["--no-deps", "face-recognition==1.3.0"], check=True)
        stamp.write_text(req)
    os.execv(str(py), [str(py)] + sys.argv)


def plain_sface():
    """SFace with PRelu kept (the graph OpenCV's DNN runs best), from the same weights."""
    out = CACHE / "bench" / "sface_2021dec_fp32_prelu.onnx"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        prep = CACHE / "prep-venv" / "bin" / "python"
        subprocess.run([str(prep), str(REPO / "setup" / "prepare_models.py"), "sface-prelu",
                        str(ASSETS / "src" / "face_recognition_sface_2021dec_int8bq.onnx"), str(out)],
                       check=True)
    return out


def timed(fn, images, repeat):
    for p in images:  # warm-up pass
        fn(p)
    times = []
    for _ in range(repeat):
        for p in images:
            t = time.perf_counter()
            fn(p)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", nargs="*")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--models", default="standard",
                    help="Consentry's --models (standard or standard-int8)")
    args = ap.parse_args()
    ensure_venv()
    import cv2
    import face_recognition
    import numpy as np

    cv2.setNumThreads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    consentry = REPO / "target" / "release" / "consentry"
    lfw = REPO.parent / "shared" / "data" / "lfw-dev"
    sets = {}
    if args.images:
        sets["custom"] = sorted(p for g in args.images for p in glob.glob(g))[: args.limit]
    else:
        if lfw.is_dir():
            sets["lfw-dev (250x250)"] = sorted(glob.glob(str(lfw / "*" / "*.jpg")))[: args.limit]
        sets["obama.jpg (910x1137)"] = [str(ASSETS / "photos" / "obama.jpg")]

    yunet = str(ASSETS / "src" / "face_detection_yunet_2023mar.onnx")
    det = cv2.FaceDetectorYN.create(yunet, "", (320, 320), 0.6, 0.3, 5000)
    rec = cv2.FaceRecognizerSF.create(str(plain_sface()), "")

    def opencv(path):
        img = cv2.imread(path)
        det.setInputSize((img.shape[1], img.shape[0]))
        _, faces = det.detect(img)
        if faces is None:
            return None
        crop = rec.alignCrop(img, faces[0])
        return rec.feature(crop)

    def dlib_fr(path):
        img = face_recognition.load_image_file(path)
        locs = face_recognition.face_locations(img)
        return face_recognition.face_encodings(img, locs[:1])

    print(f"{'images':<24}{'consentry ms':>14}{'opencv ms':>12}{'dlib ms':>10}{'vs opencv':>11}{'vs dlib':>9}")
    results = {}
    for name, images in sets.items():
        repeat = args.repeat if len(images) > 1 else 20
        out = subprocess.run([str(consentry), "--models", args.models, "bench", "pipeline", "--json",
                              "--repeat", str(repeat)] + images,
                             capture_output=True, text=True, check=True)
        ours = json.loads(out.stdout)["median_ms"]
        cv = timed(opencv, images, repeat)
        fr = timed(dlib_fr, images, max(1, repeat // 4) if len(images) > 1 else 3)
        results[name] = dict(consentry=ours, opencv=cv, dlib=fr)
        print(f"{name:<24}{ours:>14.1f}{cv:>12.1f}{fr:>10.1f}{cv / ours:>10.2f}x{fr / ours:>8.1f}x")

    # Embedding agreement on identical aligned crops (OpenCV's alignCrop output).
    sample = (sets.get("lfw-dev (250x250)") or next(iter(sets.values())))[:50]
    cosines = []
    with tempfile.TemporaryDirectory() as tmp:
        crops, feats = [], []
        for i, path in enumerate(sample):
            img = cv2.imread(path)
            det.setInputSize((img.shape[1], img.shape[0]))
            _, faces = det.detect(img)
            if faces is None:
                continue
            crop = rec.alignCrop(img, faces[0])
            f = rec.feature(crop).reshape(-1)
            crop_path = os.path.join(tmp, f"{i}.png")
            cv2.imwrite(crop_path, crop)
            crops.append(crop_path)
            feats.append(f / np.linalg.norm(f))
        out = subprocess.run([str(consentry), "--models", args.models, "embed", "--aligned", "--json"]
                             + crops,
                             capture_output=True, text=True, check=True)
        for line, f in zip(out.stdout.splitlines(), feats):
            e = np.array(json.loads(line)["embedding"], dtype=np.float32)
            cosines.append(float(e @ f))
    print(f"embedding agreement with OpenCV on {len(cosines)} identical crops: "
          f"min cosine {min(cosines):.5f}, median {statistics.median(cosines):.5f}")


if __name__ == "__main__":
    main()
