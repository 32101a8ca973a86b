#!/usr/bin/env python3
"""Times two CAM++ ONNX files in the same process (1 thread, median of 15, alternating twice):
the graph setup/campplus.py builds and, for comparison, an export made with torch.

    python3 bench/voice_model_speed.py OURS.onnx REFERENCE.onnx

Needs numpy and onnxruntime (the same version the engine loads).
"""
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    models = [("ours", ort.InferenceSession(sys.argv[1], o)),
              ("reference", ort.InferenceSession(sys.argv[2], o))]
    for frames in (298, 998):
        x = np.random.default_rng(0).normal(size=(1, frames, 80)).astype(np.float32)
        for name, s in models + models:
            s.run(None, {"feats": x})
            ts = []
            for _ in range(15):
                t = time.perf_counter()
                s.run(None, {"feats": x})
                ts.append(time.perf_counter() - t)
            print(f"{frames} frames  {name:9s} {1000 * sorted(ts)[7]:.1f} ms")


if __name__ == "__main__":
    main()
