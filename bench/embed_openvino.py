#!/usr/bin/env python3
"""Would OpenVINO embed faster than ONNX Runtime? SFace fp32 and the shipped int8 model, one
thread each, CPU time per face, the runtimes interleaved over the rounds so the VM's drift falls
on all of them alike; ratios against ONNX Runtime's fp32 in the same process.

OpenVINO cannot read the int8 model as setup builds it (QLinearConv, QLinearAdd and QGemm are
ONNX Runtime's operators), so the script first rewrites it as QDQ: each quantised operator
becomes DequantizeLinear -> the float operator -> QuantizeLinear with the same scales and zero
points. ONNX Runtime fuses that back into the same kernels (its embeddings must equal the shipped
model's; the script checks), and OpenVINO runs it with its own int8 kernels.

With --calib DIR (112x112 PNGs, e.g. from `consentry align --out DIR PHOTOS`) it also quantises
the fp32 model with OpenVINO's own tool (NNCF post-training quantisation over those crops, its
"performance" preset), which keeps each PRelu and residual addition in float beside the int8
convolutions, where OpenVINO fuses them: OpenVINO's best case, not limited to ONNX Runtime's
operators. With --crops DIR (the same kind of crops; best not the calibration ones) it prints how
well each runtime's embeddings agree with the shipped model's on real faces.

Usage: python3 bench/embed_openvino.py [--calib DIR] [--crops DIR] [--rounds 6] [--runs 50]
`ONEDNN_MAX_CPU_ISA=AVX2 python3 bench/embed_openvino.py` caps OpenVINO's kernels at AVX2 (no
AVX-512, no VNNI) on a newer CPU: a stand-in for an AVX2-only machine that ONNX Runtime has no
counterpart for (its rows keep the CPU's own kernels).
OpenVINO is installed, pinned (bench/requirements-openvino.txt), into
~/.cache/consentry/openvino-venv on first use. Run `python3 setup/fetch.py` first.
"""

import argparse
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_pipelines import ASSETS, CACHE, REPO  # noqa: E402
from venvs import run_in_pinned_venv  # noqa: E402

run_in_pinned_venv(CACHE / "openvino-venv", REPO / "bench" / "requirements-openvino.txt", "OpenVINO")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import openvino as ov  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from PIL import Image  # noqa: E402

MODELS = ASSETS / "models"


def to_qdq(src: Path, dst: Path) -> None:
    """Rewrites the QOperator model `src` as QDQ with the same quantisation parameters."""
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes, extra = [], []

    def name(base: str) -> str:
        return f"{base}__qdq{len(nodes) + len(extra)}"

    def dq(x: str, s: str, z: str, per_channel_axis=None) -> str:
        out = name(x + "_f")
        attrs = {} if per_channel_axis is None else {"axis": per_channel_axis}
        nodes.append(helper.make_node("DequantizeLinear", [x, s, z], [out], **attrs))
        return out

    def bias(b: str, x_scale: str, w_scale: str) -> str:
        # An int32 bias is quantised with scale x_scale * w_scale and zero point 0.
        scale = (inits[x_scale].astype(np.float64) * inits[w_scale].astype(np.float64))
        scale = scale.astype(np.float32).reshape(-1)
        s, z = name(b + "_scale"), name(b + "_zp")
        extra.append(numpy_helper.from_array(scale, s))
        extra.append(numpy_helper.from_array(np.zeros(scale.shape, np.int32), z))
        return dq(b, s, z, 0 if scale.size > 1 else None)

    def quantised(op: str, ins: list, out: str, y_scale: str, y_zp: str, **attrs) -> None:
        f = name(out + "_f")
        nodes.append(helper.make_node(op, ins, [f], **attrs))
        nodes.append(helper.make_node("QuantizeLinear", [f, y_scale, y_zp], [out]))

    for n in g.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        i = list(n.input) + [""] * 3
        if n.op_type == "QLinearConv":
            per_ch = 0 if inits[i[4]].size > 1 else None
            ins = [dq(i[0], i[1], i[2]), dq(i[3], i[4], i[5], per_ch)]
            if i[8]:
                ins.append(bias(i[8], i[1], i[4]))
            quantised("Conv", ins, n.output[0], i[6], i[7], **a)
        elif n.op_type in ("QLinearAdd", "QLinearMul"):
            ins = [dq(i[0], i[1], i[2]), dq(i[3], i[4], i[5])]
            quantised(n.op_type[7:], ins, n.output[0], i[6], i[7])
        elif n.op_type == "QGemm":
            per_ch = (0 if a.get("transB", 0) else 1) if inits[i[4]].size > 1 else None
            ins = [dq(i[0], i[1], i[2]), dq(i[3], i[4], i[5], per_ch)]
            if i[6]:
                ins.append(bias(i[6], i[1], i[4]))
            keep = {k: v for k, v in a.items() if k in ("alpha", "transA", "transB")}
            if i[7]:
                quantised("Gemm", ins, n.output[0], i[7], i[8], **keep)
            else:
                nodes.append(helper.make_node("Gemm", ins, [n.output[0]], **keep))
        else:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(extra)
    opsets = [o for o in m.opset_import if o.domain != "com.microsoft"]
    del m.opset_import[:]
    m.opset_import.extend(opsets)
    onnx.checker.check_model(m)
    onnx.save(m, dst)


def load_crop(path: str) -> np.ndarray:
    """A 112x112 crop as SFace's input: [1, 3, 112, 112] RGB, 0..255."""
    return np.asarray(Image.open(path).convert("RGB"), np.float32).transpose(2, 0, 1)[None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calib", help="directory of 112x112 aligned crops (PNG) to quantise with NNCF")
    ap.add_argument("--crops", help="directory of 112x112 aligned crops (PNG) for the agreement check")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runs", type=int, default=50, help="inferences per runtime per round")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp())
    fp32, int8, qdq = MODELS / "sface_2021dec_fp32.onnx", MODELS / "sface_2021dec_int8w7.onnx", tmp / "int8_qdq.onnx"
    to_qdq(int8, qdq)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    core = ov.Core()
    # f32: OpenVINO would otherwise run fp32 layers in bf16 where the CPU has it.
    ov_cfg = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32"}
    runtimes = {}
    nncf_model = None
    if args.calib:
        import nncf

        calib = [load_crop(f) for f in sorted(glob.glob(os.path.join(args.calib, "*.png")))]
        nncf_model = nncf.quantize(core.read_model(str(fp32)), nncf.Dataset(calib),
                                   preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(calib))
    for label, path, kind in [("ONNX Runtime, fp32", fp32, "ort"), ("ONNX Runtime, int8 (shipped)", int8, "ort"),
                              ("ONNX Runtime, int8 as QDQ", qdq, "ort"), ("OpenVINO, fp32", fp32, "ov"),
                              ("OpenVINO, int8 as QDQ", qdq, "ov")]:
        if kind == "ort":
            s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            input_name = s.get_inputs()[0].name
            runtimes[label] = lambda x, s=s, n=input_name: s.run(None, {n: x})[0]
        else:
            req = core.compile_model(str(path), "CPU", ov_cfg).create_infer_request()
            runtimes[label] = lambda x, r=req: np.asarray(r.infer({0: x})[0]).copy()
    if nncf_model is not None:
        req = core.compile_model(nncf_model, "CPU", ov_cfg).create_infer_request()
        runtimes["OpenVINO, int8 by NNCF"] = lambda x, r=req: np.asarray(r.infer({0: x})[0]).copy()

    if args.crops:
        files = sorted(glob.glob(os.path.join(args.crops, "*.png")))
        faces = [load_crop(f) for f in files]
        emb = {}
        for label, run in runtimes.items():
            e = np.concatenate([run(x) for x in faces])
            emb[label] = e / np.linalg.norm(e, axis=1, keepdims=True)
        shipped = emb["ONNX Runtime, int8 (shipped)"]
        print(f"agreement with the shipped int8 model's embeddings over {len(files)} crops (cosine):")
        for label, e in emb.items():
            c = (e * shipped).sum(1)
            print(f"  {label:32s} lowest {c.min():.4f}  median {np.median(c):.4f}")
        same = float((emb["ONNX Runtime, int8 as QDQ"] * shipped).sum(1).min())
        if same < 0.9999:
            sys.exit(f"the QDQ rewrite changed ONNX Runtime's embeddings (lowest cosine {same:.5f})")

    rng = np.random.default_rng(1)
    x = (rng.random((1, 3, 112, 112), dtype=np.float32) * 255).astype(np.float32)
    for run in runtimes.values():
        run(x)  # warm-up
    per = {label: [] for label in runtimes}
    for _ in range(args.rounds):
        for label, run in runtimes.items():
            t = time.process_time()
            for _ in range(args.runs):
                run(x)
            per[label].append((time.process_time() - t) / args.runs * 1e3)
    base = float(np.median(per["ONNX Runtime, fp32"]))
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    print(f"CPU time per face, median of {args.rounds} rounds of {args.runs}" + (f" (ONEDNN_MAX_CPU_ISA={cap})" if cap else ""))
    for label, v in per.items():
        m = float(np.median(v))
        print(f"  {label:32s} {m:6.2f} ms   {base / m:.2f}x ONNX Runtime's fp32")


if __name__ == "__main__":
    main()
