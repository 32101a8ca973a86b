#!/usr/bin/env python3
"""Compute the activation ranges for the int8 SFace model (setup/sface_int8_calibration.json).

Run by developers, not by setup: setup/prepare_models.py reads the committed ranges, so every
machine builds the same int8 model without the calibration photos. Usage:

    consentry align <photos...> --out CROPS      # the crops the embedder really sees
    python setup/calibrate_sface.py MODEL_FP32 CROPS OUT.json [--count N]

MODEL_FP32 is the prepared fp32 SFace (models/sface_2021dec_fp32.onnx in the assets directory).
The crops are taken in sorted file-name order, every k-th so that N are used. Needs the packages
of setup/requirements-prep.txt plus Pillow (to read the PNG crops). Ranges are min/max of each
tensor over the crops (no labels are read). The committed file: 400 of the 5,373 LFW dev crops. docs/accuracy.md says which photos made the committed file and what accuracy it gives.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, quantize_static
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_models import int8_options, preprocess_for_int8  # noqa: E402


class Crops(CalibrationDataReader):
    def __init__(self, paths):
        self.paths = list(paths)

    def get_next(self):
        if not self.paths:
            return None
        img = Image.open(self.paths.pop(0)).convert("RGB")
        if img.size != (112, 112):
            raise SystemExit(f"not an aligned 112x112 crop: {img.size}")
        x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None]
        return {"data": np.ascontiguousarray(x)}


def main():
    args = sys.argv[1:]
    count = 400
    if "--count" in args:
        i = args.index("--count")
        count = int(args[i + 1])
        del args[i : i + 2]
    model, crops, out = args
    paths = sorted(Path(crops).glob("*.png"))
    step = max(1, len(paths) // count)
    chosen = paths[::step][:count]
    print(f"calibrating on {len(chosen)} of {len(paths)} crops", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        preprocess_for_int8(model, str(pre))
        Path(out).unlink(missing_ok=True)
        quantize_static(str(pre), str(Path(tmp) / "q.onnx"), Crops(chosen),
                        calibration_cache_path=out, **int8_options())
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
