#!/usr/bin/env python3
"""Does batching pay? Per-face embedding time at batch 1, 2, 4 and 8 on one thread, the batch
sizes interleaved over eight rounds so the VM's drift falls on all of them alike.

Usage: ~/.cache/consentry/prep-venv/bin/python bench/embed_batch.py MODEL.onnx [MODEL.onnx ...]
(the same onnxruntime the server loads; the prepared SFace models have a free batch axis)
"""

import sys
import time

import numpy as np
import onnxruntime as ort

for path in sys.argv[1:]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    rng = np.random.default_rng(1)
    xs = {b: rng.random([b, 3, 112, 112], dtype=np.float32) * 255 for b in [1, 2, 4, 8]}
    for x in xs.values():
        s.run(None, {name: x})  # warm-up
    per = {b: [] for b in xs}
    for _ in range(8):
        for b, x in xs.items():
            for _ in range(max(1, 16 // b)):
                t = time.perf_counter()
                s.run(None, {name: x})
                per[b].append((time.perf_counter() - t) / b)
    one = np.median(per[1])
    print(
        path.split("/")[-1],
        " ".join(
            f"b{b}: {np.median(v) * 1e3:.2f} ms/face ({one / np.median(v):.2f}x)"
            for b, v in per.items()
        ),
    )
