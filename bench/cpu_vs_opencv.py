#!/usr/bin/env python3
"""CPU time per photo, Consentry against OpenCV-Python with the same weights, one thread each.

CPU time is user + sys of the whole process (getrusage of the child), so running photos in
parallel earns nothing. Both sides do the same work per photo: read and decode the file,
YuNet detection, the five-point alignment to 112x112 and the SFace embedding of the first
face:

  consentry   `consentry --models M embed --jobs 1 PHOTOS...`
  opencv      cv2.imread, cv2.FaceDetectorYN (the image's own size), FaceRecognizerSF.alignCrop
              and .feature, cv2.setNumThreads(1); YuNet 2023mar and SFace 2021dec fp32 with PRelu
              kept (the graph OpenCV runs best), prepared from the same files as Consentry's

Each side runs over the whole list and over its first photo alone, in alternation for
`--rounds` rounds; the figures are medians. "per photo" is (whole list - one photo) / (N - 1):
the start-up (loading the models, Python's imports) cancels out. "whole" includes it.

Usage: python3 bench/cpu_vs_opencv.py [--images GLOB ...] [--limit 800] [--rounds 3]
                                      [--models standard-int8|standard]
Defaults: every 6th of the LFW dev photos in ../shared/data/lfw-dev (800 of 5,373). OpenCV is
installed, pinned (bench/requirements-opencv5.txt), into ~/.cache/consentry/opencv5-venv on first
use. Run `python3 setup/fetch.py` and `cargo build --release` first.
"""

import argparse
import glob
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_pipelines import ASSETS, CACHE, REPO, plain_sface  # noqa: E402
from venvs import pinned_venv  # noqa: E402

VENV = CACHE / "opencv5-venv"
REQUIREMENTS = REPO / "bench" / "requirements-opencv5.txt"

WORKER = r"""
import sys
import cv2
cv2.setNumThreads(1)
yunet, sface, *paths = sys.argv[1:]
det = cv2.FaceDetectorYN.create(yunet, "", (320, 320), 0.6, 0.3, 5000)
rec = cv2.FaceRecognizerSF.create(sface, "")
done = 0
for p in paths:
    img = cv2.imread(p)
    det.setInputSize((img.shape[1], img.shape[0]))
    _, faces = det.detect(img)
    if faces is not None:
        rec.feature(rec.alignCrop(img, faces[0]))
        done += 1
print(done)
"""


def cpu_seconds(cmd):
    """User + sys seconds of one child process run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", nargs="*")
    ap.add_argument("--limit", type=int, default=800)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="standard-int8",
                    help="Consentry's --models (standard-int8, the server's, or standard)")
    a = ap.parse_args()
    if a.images:
        photos = sorted(p for g in a.images for p in glob.glob(g))[: a.limit]
    else:
        lfw = REPO.parent / "shared" / "data" / "lfw-dev"
        photos = sorted(glob.glob(str(lfw / "*" / "*.jpg")))[::6][: a.limit]
    if len(photos) < 2:
        sys.exit("need at least two photos")
    consentry = [str(REPO / "target" / "release" / "consentry"), "--models", a.models, "embed",
                 "--jobs", "1"]
    opencv = [str(pinned_venv(VENV, REQUIREMENTS, "OpenCV")), "-c", WORKER,
              str(ASSETS / "src" / "face_detection_yunet_2023mar.onnx"), str(plain_sface())]
    runs = {"consentry": consentry, "opencv": opencv}
    whole = {k: [] for k in runs}
    one = {k: [] for k in runs}
    for r in range(a.rounds):
        for k, cmd in runs.items():
            whole[k].append(cpu_seconds(cmd + photos))
            one[k].append(cpu_seconds(cmd + photos[:1]))
        print(f"round {r + 1}/{a.rounds}: " + ", ".join(
            f"{k} {whole[k][-1]:.1f} s" for k in runs), file=sys.stderr)
    n = len(photos)
    per = {k: (statistics.median(whole[k]) - statistics.median(one[k])) / (n - 1) * 1000
           for k in runs}
    print(f"{n} photos, Consentry --models {a.models}, CPU time (user + sys), medians of "
          f"{a.rounds} rounds")
    print(f"{'':12s}{'whole run':>12s}{'one photo':>12s}{'per photo':>12s}")
    for k in runs:
        print(f"{k:12s}{statistics.median(whole[k]):>11.2f}s{statistics.median(one[k]):>11.2f}s"
              f"{per[k]:>10.2f}ms")
    print(f"Consentry is {per['opencv'] / per['consentry']:.2f}x OpenCV per photo, "
          f"{statistics.median(whole['opencv']) / statistics.median(whole['consentry']):.2f}x "
          "over the whole run")


if __name__ == "__main__":
    main()
