#!/usr/bin/env python3
"""Another recogniser against SFace on the same aligned crops: LFW dev accuracy and time per face.

Checks whether a network with fewer operations than SFace could replace it (issue #15's "fewer
operations per face"). The candidate is faceplugin's `fr_feature.onnx` (npm
faceplugin-face-recognition-js@0.0.1, MIT; a MobileFaceNet-like 512-d network), taken from the
package that `python3 setup/fetch.py` already fetched for the liveness models. Both networks see
the crops `consentry align` makes (the five-point alignment to 112x112 every model here uses);
SFace takes RGB 0..255, fr_feature RGB (x - 127) / 128 as its package's JavaScript feeds it.

Accuracy is computed as `consentry eval` does: thresholds chosen on four folds and tested on the
fifth, the EER, and TAR at FAR 1e-3 (at the second-highest impostor score of 1,500). Time is the
process CPU time per inference on one thread, on one crop, after a warm-up.

Usage: python3 bench/recogniser_eval.py [--root ../shared/data/lfw-dev]
Runs in a pinned venv (bench/requirements-recogniser.txt, ~/.cache/consentry/recogniser-venv).
Run `python3 setup/fetch.py` and `cargo build --release` first.
"""

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venvs import run_in_pinned_venv  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "consentry"
VENV = CACHE / "recogniser-venv"
REQUIREMENTS = REPO / "bench" / "requirements-recogniser.txt"
PACKAGE = (CACHE / "packages" / "faceplugin-face-recognition-js@0.0.1"
           / "faceplugin-face-recognition-js-0.0.1.tgz")
FR_FEATURE_SHA256 = "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"


def ensure_venv():
    run_in_pinned_venv(VENV, REQUIREMENTS, "onnxruntime, numpy and pillow")


def pair_keys(root):
    """(key a, key b, same person) per line of pairs-dev.txt; a key is `Name_NNNN`."""
    key = lambda name, i: f"{name}_{int(i):04d}"
    pairs = []
    for line in (root / "pairs-dev.txt").read_text().split("\n")[1:]:
        f = line.split()
        if len(f) == 3:
            pairs.append((key(f[0], f[1]), key(f[0], f[2]), 1))
        elif len(f) == 4:
            pairs.append((key(f[0], f[1]), key(f[2], f[3]), 0))
    return pairs


def fr_feature(dest):
    with tarfile.open(PACKAGE) as t:
        data = t.extractfile("package/model/fr_feature.onnx").read()
    if hashlib.sha256(data).hexdigest() != FR_FEATURE_SHA256:
        raise SystemExit("fr_feature.onnx: unexpected sha256")
    dest.write_bytes(data)
    return dest


def metrics(scores, labels):
    import numpy as np
    s, y = np.asarray(scores), np.asarray(labels)
    folds = np.arange(len(s)) * 5 // len(s)
    accs = []
    for f in range(5):
        tr, te = folds != f, folds == f
        best = max(np.unique(s[tr]), key=lambda t: ((s[tr] >= t) == y[tr]).mean())
        accs.append(((s[te] >= best) == y[te]).mean())
    gen, imp = np.sort(s[y == 1]), np.sort(s[y == 0])
    ts = np.unique(s)
    far = np.array([(imp >= t).mean() for t in ts])
    frr = np.array([(gen < t).mean() for t in ts])
    i = np.argmin(np.abs(far - frr))
    return {"kfold": np.mean(accs), "kfold_std": np.std(accs), "eer": (far[i] + frr[i]) / 2,
            "tar_at_far_1e-3": (gen > imp[-2]).mean()}


def main():
    ensure_venv()
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "lfw-dev")
    args = ap.parse_args()
    pairs = pair_keys(args.root)
    keys = sorted({k for a, b, _ in pairs for k in (a, b)})
    tmp = Path(tempfile.mkdtemp())
    photos = [str(args.root / k[:-5] / f"{k}.jpg") for k in keys]
    print(f"aligning {len(photos)} photos", file=sys.stderr)
    subprocess.run([str(REPO / "target" / "release" / "consentry"), "align", "--out",
                    str(tmp / "crops")] + photos, check=True, stdout=subprocess.DEVNULL)
    crops = {k: np.asarray(Image.open(tmp / "crops" / f"{k}.png").convert("RGB"), np.float32)
             for k in keys if (tmp / "crops" / f"{k}.png").exists()}
    models = [("SFace fp32 (shipped as `standard`)",
               CACHE / "assets" / "models" / "sface_2021dec_fp32.onnx", 0.0, 1.0),
              ("faceplugin fr_feature", fr_feature(tmp / "fr_feature.onnx"), 127.0, 128.0)]
    for name, path, mean, scale in models:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0].name
        run = lambda a: sess.run(None, {inp: ((a - mean) / scale).transpose(2, 0, 1)[None]})[0][0]
        first = crops[keys[0]]
        for _ in range(5):
            run(first)
        t = time.process_time()
        for _ in range(30):
            run(first)
        ms = (time.process_time() - t) / 30 * 1000
        emb = {}
        for k, a in crops.items():
            v = run(a)
            emb[k] = v / np.linalg.norm(v)
        scores = [float(emb[a] @ emb[b]) if a in emb and b in emb else -1.0 for a, b, _ in pairs]
        m = metrics(scores, [y for _, _, y in pairs])
        print(f"{name}: k-fold {m['kfold']:.2%} ± {m['kfold_std']:.2%}, EER {m['eer']:.2%}, "
              f"TAR @ FAR 1e-3 {m['tar_at_far_1e-3']:.2%}, {ms:.1f} ms per face "
              f"({len(crops)} of {len(keys)} photos aligned)")


if __name__ == "__main__":
    main()
