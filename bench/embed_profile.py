#!/usr/bin/env python3
"""Where the recogniser's time goes, per operator type: ONNX Runtime's own profiler on one
thread, over the prepared models (the same onnxruntime release the server loads).

Usage: python3 bench/embed_profile.py MODEL.onnx [MODEL.onnx ...] [--runs 200]
(run with the set-up step's venv: ~/.cache/consentry/prep-venv/bin/python)

Prints, per model, the milliseconds per inference spent in each operator type, largest first.
"""

import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort


def profile(path, runs):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "prof")
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = np.random.default_rng(1).random(shape, dtype=np.float32) * 255
    # The first run allocates; over `runs` runs it is noise.
    for _ in range(runs):
        s.run(None, {inp.name: x})
    out = s.end_profiling()
    by_op = collections.Counter()
    with open(out) as f:
        events = json.load(f)
    n = 0
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
        if e.get("name") == "model_run":
            n += 1
    os.remove(out)
    return by_op, max(n, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()
    for m in a.models:
        by_op, n = profile(m, a.runs)
        total = sum(by_op.values()) / n / 1000
        print(f"{os.path.basename(m)}: {total:.2f} ms per inference in kernels ({n} runs)")
        for op, us in by_op.most_common():
            print(f"  {op:24s} {us / n / 1000:7.3f} ms  {100 * us / sum(by_op.values()):5.1f}%")


if __name__ == "__main__":
    main()
