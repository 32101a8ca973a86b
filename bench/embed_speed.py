#!/usr/bin/env python3
"""Recogniser graphs side by side: CPU time per face on one thread, interleaved so that a VM's
changes of speed fall on every graph alike.

Usage: python3 bench/embed_speed.py MODEL.onnx [MODEL.onnx ...] [--rounds 8] [--runs 50]
(run with the set-up step's venv: ~/.cache/consentry/prep-venv/bin/python, the same onnxruntime
release the server loads)

Each round runs every model `runs` times on the same input in turn; prints, per model, the median
and fastest round in milliseconds of process CPU time per face, and its speed against the first
model.
"""

import argparse
import os
import statistics
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=50)
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sessions = [ort.InferenceSession(m, so, providers=["CPUExecutionProvider"]) for m in a.models]
    x = np.random.default_rng(1).random((1, 3, 112, 112), dtype=np.float32) * 255
    feeds = [{s.get_inputs()[0].name: x} for s in sessions]
    for s, f in zip(sessions, feeds):
        for _ in range(10):  # allocation and first-run costs
            s.run(None, f)
    times = [[] for _ in sessions]
    for _ in range(a.rounds):
        for i, (s, f) in enumerate(zip(sessions, feeds)):
            t = time.process_time()
            for _ in range(a.runs):
                s.run(None, f)
            times[i].append((time.process_time() - t) / a.runs * 1000)
    base = statistics.median(times[0])
    for m, t in zip(a.models, times):
        med = statistics.median(t)
        print(f"{os.path.basename(m):40s} median {med:6.2f} ms  fastest {min(t):6.2f} ms  "
              f"{base / med:4.2f}x the first")


if __name__ == "__main__":
    main()
