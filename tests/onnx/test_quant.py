"""ONNX quantization ops against NumPy integer arithmetic."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

import graphc as gx
from graphc.onnx import OnnxImportError, dtypes, load
from graphc.onnx.handlers.quant import round_half_even

BACKENDS = ["numpy", "llvm"]
RNG = np.random.default_rng(1)


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, np.ndarray],
           consts: dict[str, np.ndarray], outputs: list[str], opset: int = 21
           ) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "m",
        [helper.make_tensor_value_info(k, dtypes.to_onnx(v.dtype), v.shape)
         for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model: onnx.ModelProto, inputs: dict[str, np.ndarray], backend: str) -> tuple:
    return load(model, initializers="constants").compile(backend)(*inputs.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_half_even_matches_rint(backend):
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.49, -3.51, 0.0, 7.5, 1e6 + 0.5], np.float64)
    t = gx.input("x", x.shape, "float64")
    (y,) = gx.compile([t], [round_half_even(t)], backend=backend)(x)
    np.testing.assert_array_equal(y, np.rint(x))


# (zero point dtype or None, axis, block size, scale shape given x of shape (4, 6))
QUANT_CASES = [("uint8", None, 0, ()), ("int8", 0, 0, (4,)), ("int16", 1, 0, (6,)),
               ("uint16", 1, 3, (4, 2)), (None, None, 0, ())]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("zp_dtype,axis,block,scale_shape", QUANT_CASES)
def test_quantize_then_dequantize(backend, zp_dtype, axis, block, scale_shape):
    x = (RNG.standard_normal((4, 6)) * 200).astype(np.float32)
    x[0, :3] = [0.5, 1.5, -2.5]  # ties round to even
    scale = RNG.uniform(0.5, 2.0, scale_shape).astype(np.float32)
    scale.reshape(-1)[:1] = 1.0
    out_dtype = zp_dtype or "uint8"
    lo, hi = np.iinfo(out_dtype).min, np.iinfo(out_dtype).max
    zp = np.full(scale_shape, 3, out_dtype)
    attrs = {} if axis is None else {"axis": axis}
    if block:
        attrs["block_size"] = block
    q_inputs = ["x", "scale", "zp"] if zp_dtype else ["x", "scale"]
    nodes = [helper.make_node("QuantizeLinear", q_inputs, ["q"], **attrs),
             helper.make_node("DequantizeLinear", ["q", *q_inputs[1:]], ["y"], **attrs)]
    consts = {"scale": scale, **({"zp": zp} if zp_dtype else {})}
    q, y = _run(_model(nodes, {"x": x}, consts, ["q", "y"]), {"x": x}, backend)
    # broadcast scale / zero point the way ONNX does, then integer arithmetic
    if block:
        s_full = np.repeat(scale, block, axis=axis)
    elif axis is not None:
        s_full = scale.reshape([-1 if a == axis else 1 for a in range(2)])
    else:
        s_full = scale
    z_full = np.broadcast_to(np.asarray(3 if zp_dtype else 0), x.shape)
    expected_q = np.clip(np.rint(x / s_full) + z_full, lo, hi).astype(out_dtype)
    assert q.dtype == np.dtype(out_dtype)
    np.testing.assert_array_equal(q, expected_q)
    np.testing.assert_allclose(y, (expected_q.astype(np.float32) - z_full) * s_full, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_quantize_linear(backend):
    x = np.array([[-1.0, 0.2, 3.7], [2.5, -0.3, 0.0]], np.float32)
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    y, s, z = _run(_model([node], {"x": x}, {}, ["y", "s", "z"], opset=11), {"x": x}, backend)
    scale = np.float32(4.7) / np.float32(255)
    zero = np.rint(np.clip(-np.float32(-1.0) / scale, 0, 255))
    assert s.shape == () and z.dtype == np.uint8 and y.dtype == np.uint8
    np.testing.assert_allclose(s, scale, rtol=1e-6)
    assert z == zero
    np.testing.assert_array_equal(y, np.clip(np.rint(x / scale) + zero, 0, 255))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_integer_matmuls(backend, dtype):
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max, (3, 5)).astype(dtype)
    b = RNG.integers(info.min, info.max, (5, 4)).astype(dtype)
    za, zb = np.array(7, dtype), np.array(-3 if dtype == "int8" else 9, dtype)
    sa, sb, sy = (np.array(v, np.float32) for v in (0.02, 0.03, 0.5))
    zy = np.array(5, dtype)
    nodes = [helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["p"]),
             helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"],
                              ["q"])]
    consts = {"za": za, "zb": zb, "sa": sa, "sb": sb, "sy": sy, "zy": zy}
    p, q = _run(_model(nodes, {"a": a, "b": b}, consts, ["p", "q"], opset=13),
                {"a": a, "b": b}, backend)
    exact = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
    assert p.dtype == np.int32
    np.testing.assert_array_equal(p, exact)
    factor = np.float64(sa * sb / sy)
    np.testing.assert_array_equal(q, np.clip(np.rint(exact * factor) + zy, info.min, info.max))


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_convs(backend):
    x = RNG.integers(0, 255, (1, 2, 6, 5)).astype(np.uint8)
    w = RNG.integers(0, 255, (3, 2, 3, 3)).astype(np.uint8)
    zx, zw = np.array(128, np.uint8), np.array([120, 128, 130], np.uint8)
    sx, sy = np.array(0.01, np.float32), np.array(0.7, np.float32)
    sw = np.array([0.02, 0.01, 0.03], np.float32)
    zy, bias = np.array(100, np.uint8), np.array([5, -40, 300], np.int32)
    conv = {"pads": [1, 0, 1, 2], "strides": [2, 1]}
    nodes = [helper.make_node("ConvInteger", ["x", "w", "zx", "zw"], ["c"], **conv),
             helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy",
                                              "bias"], ["q"], **conv)]
    consts = {"zx": zx, "zw": zw, "sx": sx, "sw": sw, "sy": sy, "zy": zy, "bias": bias}
    c, q = _run(_model(nodes, {"x": x, "w": w}, consts, ["c", "q"], opset=13),
                {"x": x, "w": w}, backend)
    xt = torch.from_numpy(x.astype(np.float64) - 128)
    wt = torch.from_numpy(w.astype(np.float64) - zw.reshape(3, 1, 1, 1))
    exact = F.conv2d(F.pad(xt, (0, 2, 1, 1)), wt, stride=(2, 1)).numpy()
    assert c.dtype == np.int32
    np.testing.assert_array_equal(c, exact)
    factor = (sx * sw / sy).astype(np.float64).reshape(1, 3, 1, 1)
    acc = (exact + bias.reshape(1, 3, 1, 1)) * factor
    np.testing.assert_array_equal(q, np.clip(np.rint(acc) + 100, 0, 255))


def test_unsupported_quantized_type_names_the_op():
    x = np.zeros((2,), np.float32)
    node = helper.make_node("QuantizeLinear", ["x", "scale"], ["q"],
                            output_dtype=TensorProto.FLOAT8E4M3FN)
    model = _model([node], {"x": x}, {"scale": np.array(1.0, np.float32)}, ["q"])
    with pytest.raises(OnnxImportError, match="QuantizeLinear"):
        load(model)
