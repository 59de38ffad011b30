"""ONNX nn ops (Conv, ConvTranspose, pools, normalizations, Gemm) against torch / NumPy."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

import graphc as gx
from graphc.graph import toposort
from graphc.onnx import OnnxImportError, load

BACKENDS = ["numpy", "llvm"]
RNG = np.random.default_rng(0)


def _model(node: onnx.NodeProto, inputs: dict[str, np.ndarray], outputs: list[str],
           opset: int = 22) -> onnx.ModelProto:
    """One-node model; every input is a float32 graph input of the array's shape."""
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape))
         for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(node, inputs, outputs, backend, opset=22):
    model = load(_model(node, inputs, outputs, opset))
    return model.compile(backend)(*inputs.values())


def _rand(*shape) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


# (x shape, w shape, attrs, torch conv, torch kwargs)
CONVS = [
    ((2, 4, 9), (6, 2, 3), dict(strides=[2], pads=[1, 2], group=2),
     F.conv1d, None),
    ((1, 3, 7, 8), (4, 3, 3, 2), dict(strides=[2, 1], dilations=[1, 2], pads=[1, 0, 1, 0]),
     F.conv2d, dict(stride=(2, 1), dilation=(1, 2), padding=(1, 0))),
    ((1, 2, 5, 6, 4), (4, 1, 2, 3, 2), dict(strides=[1, 2, 1], pads=[1, 1, 0, 1, 1, 0],
                                            group=2),
     F.conv3d, dict(stride=(1, 2, 1), padding=(1, 1, 0), groups=2)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(len(CONVS)))
def test_conv_matches_torch(backend, case):
    xs, ws, attrs, conv, kwargs = CONVS[case]
    x, w, b = _rand(*xs), _rand(*ws), _rand(ws[0])
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    (y,) = _run(node, {"x": x, "w": w, "b": b}, ["y"], backend)
    if kwargs is None:  # asymmetric 1-D pads: pad first, as torch has none
        ref = conv(F.pad(_t(x), (1, 2)), _t(w), _t(b), stride=2, groups=2)
    else:
        ref = conv(_t(x), _t(w), _t(b), **kwargs)
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_same_lower_pads_at_the_start(backend):
    x, w = _rand(1, 1, 4, 4), _rand(1, 1, 2, 2)
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_LOWER")
    (y,) = _run(node, {"x": x, "w": w}, ["y"], backend)
    ref = F.conv2d(F.pad(_t(x), (1, 0, 1, 0)), _t(w))  # the odd pixel goes first
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_transpose_matches_torch(backend):
    x, w, b = _rand(2, 4, 3, 5), _rand(4, 3, 3, 2), _rand(6)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 3],
                            pads=[1, 0, 1, 0], output_padding=[1, 2], dilations=[1, 2],
                            group=2)
    (y,) = _run(node, {"x": x, "w": w, "b": b}, ["y"], backend)
    ref = F.conv_transpose2d(_t(x), _t(w), _t(b), stride=(2, 3), padding=(1, 0),
                             output_padding=(1, 2), dilation=(1, 2), groups=2)
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_indices_are_flat_over_the_whole_tensor(backend):
    x = _rand(2, 3, 6, 7)
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 2],
                            strides=[2, 2], pads=[1, 0, 1, 0], ceil_mode=1)
    y, i = _run(node, {"x": x}, ["y", "i"], backend)
    ref, ref_i = F.max_pool2d(_t(x), (3, 2), (2, 2), (1, 0), ceil_mode=True,
                              return_indices=True)
    np.testing.assert_allclose(y, ref.numpy())
    base = (np.arange(6) * 42).reshape(2, 3, 1, 1)  # (n·C + c)·H·W
    np.testing.assert_array_equal(i, ref_i.numpy() + base)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("include", [0, 1])
def test_average_pool_counts(backend, include):
    x = _rand(1, 2, 5, 6)
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                            pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=include)
    (y,) = _run(node, {"x": x}, ["y"], backend)
    ref = F.avg_pool2d(_t(x), 3, 2, 1, ceil_mode=True, count_include_pad=bool(include))
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-5, atol=1e-6)


# (ONNX op, extra attributes, torch reference of the 3-D pool)
LARGE_POOLS = [
    ("MaxPool", {}, lambda x: F.max_pool3d(x, (3, 12, 16), (1, 2, 3), (1, 5, 4),
                                           dilation=(2, 3, 2), ceil_mode=True)),
    ("AveragePool", dict(count_include_pad=1),
     lambda x: F.avg_pool3d(F.pad(x, (4, 4, 5, 5, 1, 1)), (3, 12, 16), (1, 2, 3),
                            ceil_mode=True)),
    ("LpPool", dict(p=3),  # ONNX takes |x|^p, torch x^p
     lambda x: F.lp_pool3d(F.pad(x.abs(), (4, 4, 5, 5, 1, 1)), 3, (3, 12, 16), (1, 2, 3),
                           ceil_mode=True)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(len(LARGE_POOLS)))
def test_large_pools_reduce_one_axis_at_a_time(backend, case):
    op, attrs, ref = LARGE_POOLS[case]
    dilation = dict(dilations=[2, 3, 2]) if op == "MaxPool" else {}
    x = _rand(1, 2, 6, 40, 50)
    node = helper.make_node(op, ["x"], ["y"], kernel_shape=[3, 12, 16], strides=[1, 2, 3],
                            pads=[1, 5, 4, 1, 5, 4], ceil_mode=1, **attrs, **dilation)
    model = load(_model(node, {"x": x}, ["y"], opset=22))
    # a 3×12×16 window is 576 slices taken whole, 3 + 12 + 16 = 31 taken axis by axis
    slices = [t for t in toposort(model.outputs.values()) if t.op.name == "getitem"]
    assert len(slices) == 31
    (y,) = model.compile(backend)(x)
    np.testing.assert_allclose(y, ref(_t(x)).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_norm_outputs_mean_and_inv_std(backend):
    x, scale, bias = _rand(2, 3, 4), _rand(3, 4), _rand(3, 4)
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "m", "r"], axis=1,
                            epsilon=1e-3)
    y, m, r = _run(node, {"x": x, "s": scale, "b": bias}, ["y", "m", "r"], backend)
    mean = x.mean(axis=(1, 2), keepdims=True)
    inv = 1 / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-3)
    np.testing.assert_allclose(m, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r, inv, rtol=1e-5)
    np.testing.assert_allclose(y, (x - mean) * inv * scale + bias, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_training_mode_running_stats(backend):
    x, s, b, m, v = _rand(3, 2, 4), _rand(2), _rand(2), _rand(2), np.abs(_rand(2))
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"],
                            ["y", "rm", "rv"], training_mode=1, momentum=0.8)
    y, rm, rv = _run(node, {"x": x, "s": s, "b": b, "m": m, "v": v}, ["y", "rm", "rv"],
                     backend)
    bm, bv = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    expected = (x - bm[:, None]) / np.sqrt(bv[:, None] + 1e-5) * s[:, None] + b[:, None]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rm, 0.8 * m + 0.2 * bm, rtol=1e-5)
    np.testing.assert_allclose(rv, 0.8 * v + 0.2 * bv, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gemm_transposes_and_scales(backend):
    a, bm, c = _rand(4, 3), _rand(5, 4), _rand(5)
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, alpha=0.5,
                            beta=2.0)
    (y,) = _run(node, {"a": a, "b": bm, "c": c}, ["y"], backend)
    np.testing.assert_allclose(y, 0.5 * a.T @ bm.T + 2.0 * c, rtol=1e-5, atol=1e-6)


def test_conv_transpose_weight_gradient_matches_torch():
    x, w = _rand(1, 2, 3, 3), _rand(2, 3, 2, 2)
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], pads=[0, 1, 1, 0])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[onnx.numpy_helper.from_array(w, "w")])
    model = load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)]))
    y = model.outputs["y"]
    (g_w,) = gx.grad(gx.sum(gx.mul(y, y)), [model.params["w"]])
    (value,) = gx.compile([model.inputs["x"]], [g_w])(x)
    wt = _t(w).requires_grad_()
    ref = F.conv_transpose2d(_t(x), wt, stride=2, padding=0)[:, :, :-1, 1:]
    (ref * ref).sum().backward()
    np.testing.assert_allclose(value, wt.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op, attrs", [
    ("BatchNormalization", dict(spatial=0)),
    ("AveragePool", dict(kernel_shape=[2], auto_pad="SAME_SIDEWAYS")),
])
def test_unsupported_attributes_name_the_op(op, attrs):
    if op == "BatchNormalization":
        x = {k: _rand(2, 3) if k == "x" else _rand(3) for k in "xsbmv"}
        node, opset = helper.make_node(op, list(x), ["y"], **attrs), 7
    else:
        x, opset = {"x": _rand(1, 1, 4)}, 22
        node = helper.make_node(op, ["x"], ["y"], **attrs)
    with pytest.raises(OnnxImportError, match=op):
        load(_model(node, x, ["y"], opset))


@pytest.mark.parametrize("is_test", [0, 1])
def test_batch_norm_opset6_is_test_chooses_the_statistics(is_test):
    x, s, b, m, v = _rand(3, 2, 4), _rand(2), _rand(2), _rand(2), np.abs(_rand(2))
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                            is_test=is_test)
    (y,) = _run(node, {"x": x, "s": s, "b": b, "m": m, "v": v}, ["y"], "numpy", opset=6)
    mean, var = (m, v) if is_test else (x.mean(axis=(0, 2)), x.var(axis=(0, 2)))
    expected = (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5) * s[:, None] + b[:, None]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
