#!/usr/bin/env python3
"""Checks Consentry's voice pipeline against an independent one on the same recordings:
kaldi-native-fbank (PyPI) features, mean-normalised, run through a CAM++ ONNX file exported
with torch (not shipped: ../shared/models/campplus_zh_en_common_advanced_reference.onnx), against
`consentry voice embed` (our FLAC decoding, fbank and the ONNX graph setup/campplus.py builds
from the state dict). Prints the cosine between the two embeddings of every file.

    python3 -m venv /tmp/knf && /tmp/knf/bin/pip install kaldi-native-fbank==1.23.0 numpy onnxruntime==1.32.0
    /tmp/knf/bin/python bench/voice_reference.py --reference ONNX FILE.flac...

Only 16 kHz files: resampling is not part of this comparison.
"""
import argparse
import json
import subprocess

import kaldi_native_fbank as knf
import numpy as np
import onnxruntime as ort


def samples(path):
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-f", "s16le", "-ac", "1",
                          "-ar", "16000", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def fbank(x):
    o = knf.FbankOptions()
    o.frame_opts.dither = 0
    o.frame_opts.samp_freq = 16000
    o.frame_opts.snip_edges = True
    o.frame_opts.window_type = "povey"
    o.mel_opts.num_bins = 80
    o.mel_opts.low_freq = 20
    o.mel_opts.high_freq = 0
    o.use_energy = False
    fb = knf.OnlineFbank(o)
    fb.accept_waveform(16000, x.tolist())
    fb.input_finished()
    f = np.array([fb.get_frame(i) for i in range(fb.num_frames_ready)], dtype=np.float32)
    return f - f.mean(axis=0, keepdims=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--consentry", default="target/release/consentry")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(a.reference, so)
    out = subprocess.run([a.consentry, "voice", "embed", "--json", *a.files], capture_output=True,
                         check=True, text=True).stdout
    worst = 1.0
    for line in out.splitlines():
        r = json.loads(line)
        if "error" in r:
            print(f"skipped ({r['error']['code']})  {r['file']}")
            continue
        ours = np.array(r["embedding"], dtype=np.float64)
        theirs = ref.run(None, {"feats": fbank(samples(r["file"]))[None]})[0][0].astype(np.float64)
        cos = float(ours @ theirs / np.linalg.norm(theirs))
        worst = min(worst, cos)
        print(f"{cos:.6f}  {r['file']}")
    print(f"lowest cosine {worst:.6f} over {len(out.splitlines())} files")


if __name__ == "__main__":
    main()
