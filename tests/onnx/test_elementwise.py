"""ONNX elementwise ops: values against NumPy on both backends, legacy broadcasting,
attribute handling, casts, and gradients through imported activations."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphc as gx
from graphc.onnx import OnnxImportError, load

BACKENDS = ["numpy", "llvm"]
ONNX_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE,
              "float16": TensorProto.FLOAT16, "int32": TensorProto.INT32,
              "int64": TensorProto.INT64, "uint8": TensorProto.UINT8, "int8": TensorProto.INT8,
              "bool": TensorProto.BOOL, "uint32": TensorProto.UINT32}


def _model(op: str, inputs: list[np.ndarray], out_dtype: str, opset: int = 21,
           **attrs) -> onnx.ModelProto:
    """One ``op`` node on graph inputs shaped like ``inputs``."""
    names = [f"x{k}" for k in range(len(inputs))]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], **attrs)], op,
        [helper.make_tensor_value_info(n, ONNX_TYPES[a.dtype.name], a.shape)
         for n, a in zip(names, inputs, strict=True)],
        [helper.make_tensor_value_info("y", ONNX_TYPES[out_dtype], None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(op: str, inputs: list[np.ndarray], backend: str, out_dtype: str | None = None,
         opset: int = 21, **attrs) -> np.ndarray:
    model = _model(op, inputs, out_dtype or inputs[0].dtype.name, opset, **attrs)
    (y,) = load(model).compile(backend)(*inputs)
    return y


X = np.array([[-2.5, -1.0, -0.3, 0.0], [0.4, 1.0, 1.5, 3.0]], np.float32)
UNIT = np.array([-0.9, -0.5, 0.0, 0.3, 0.99], np.float32)

#: op, attributes, input, NumPy reference
UNARY = [
    ("Atan", {}, X, np.arctan),
    ("Tan", {}, UNIT, np.tan),
    ("Asin", {}, UNIT, np.arcsin),
    ("Acos", {}, UNIT, np.arccos),
    ("Atanh", {}, UNIT, np.arctanh),
    ("Asinh", {}, X, np.arcsinh),
    ("Acosh", {}, X + 3.5, np.arccosh),
    ("Sinh", {}, X, np.sinh),
    ("Cosh", {}, X, np.cosh),
    ("Ceil", {}, X, np.ceil),
    ("Round", {}, np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4], np.float32), np.round),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, X, lambda x: np.clip(0.3 * x + 0.4, 0, 1)),
    ("Selu", {"alpha": 2.0, "gamma": 3.0}, X,
     lambda x: 3.0 * np.where(x > 0, x, 2.0 * (np.exp(x) - 1))),
    ("Shrink", {"lambd": 1.0, "bias": 0.5}, X,
     lambda x: np.where(x > 1.0, x - 0.5, np.where(x < -1.0, x + 0.5, 0))),
    ("ThresholdedRelu", {"alpha": 0.5}, X, lambda x: np.where(x > 0.5, x, 0)),
    ("Softplus", {}, X, lambda x: np.log1p(np.exp(x))),
    ("Gelu", {"approximate": "tanh"}, X,
     lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    ("IsInf", {"detect_negative": 0}, np.array([np.inf, -np.inf, 1.0, np.nan], np.float32),
     lambda x: x == np.inf),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op, attrs, x, ref", [pytest.param(*row, id=row[0]) for row in UNARY])
def test_unary_ops_match_numpy(op, attrs, x, ref, backend):
    want = ref(x.astype(np.float64))
    got = _run(op, [x], backend, "bool" if want.dtype == bool else "float32", **attrs)
    assert got.dtype == (np.bool_ if want.dtype == bool else np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_div_truncates_and_mod_follows_fmod_attribute(backend):
    a = np.array([7, -7, 7, -7, 0], np.int32)
    b = np.array([2, 2, -2, -2, 3], np.int32)
    assert _run("Div", [a, b], backend).tolist() == [3, -3, -3, 3, 0]
    assert _run("Mod", [a, b], backend).tolist() == [1, 1, -1, -1, 0]
    assert _run("Mod", [a, b], backend, fmod=1).tolist() == [1, -1, 1, -1, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bitshift_and_bitwise_ops_on_unsigned(backend):
    a = np.array([16, 4, 1, 255], np.uint8)
    n = np.array([1, 2, 3, 1], np.uint8)
    assert _run("BitShift", [a, n], backend, direction="LEFT").tolist() == [32, 16, 8, 254]
    assert _run("BitShift", [a, n], backend, direction="RIGHT").tolist() == [8, 1, 0, 127]
    assert _run("BitwiseXor", [a, n], backend).tolist() == (a ^ n).tolist()
    assert _run("BitwiseNot", [a], backend).tolist() == (~a).tolist()


@pytest.mark.parametrize("backend", BACKENDS)
def test_pow_keeps_the_base_dtype(backend):
    base = np.array([1, 2, 3], np.int32)
    exponent = np.array([2.0, 0.5, 3.0], np.float32)
    got = _run("Pow", [base, exponent], backend)
    assert got.dtype == np.int32 and got.tolist() == [1, 1, 27]  # 2**0.5 truncates to 1
    got = _run("Pow", [exponent, np.array([2, 3, 1], np.int64)], backend)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [4.0, 0.125, 3.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_variadic_max_mean_broadcast(backend):
    a, b, c = (np.array(v, np.float32) for v in ([[1.0], [5.0]], [2.0, 0.0, 7.0], [3.0]))
    for op, ref in (("Max", np.maximum), ("Min", np.minimum)):
        got = _run(op, [a, b, c], backend)
        np.testing.assert_array_equal(got, ref(ref(a, b), c))
    np.testing.assert_allclose(_run("Mean", [a, b, c], backend), (a + b + c) / 3, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_with_attributes_and_optional_inputs(backend):
    x = np.array([-3.0, -0.5, 0.5, 3.0], np.float32)
    np.testing.assert_array_equal(_run("Clip", [x], backend, opset=6, min=-1.0, max=1.0),
                                  np.clip(x, -1, 1))
    model = _model("Clip", [x], "float32", opset=13)
    lo = helper.make_tensor("lo", TensorProto.FLOAT, [], [0.0])
    model.graph.initializer.append(lo)
    model.graph.node[0].input.extend(["lo"])  # min given, max omitted
    (got,) = load(model).compile(backend)(x)
    np.testing.assert_array_equal(got, np.maximum(x, 0))
    ints = np.array([-5, 0, 9], np.int32)
    assert _run("Clip", [ints, np.array(-1, np.int32), np.array(4, np.int32)],
                backend).tolist() == [-1, 0, 4]


@pytest.mark.parametrize("backend", BACKENDS)
def test_legacy_broadcast_along_an_axis(backend):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    b = np.array([10.0, 20.0, 30.0], np.float32)
    got = _run("Add", [a, b], backend, opset=6, broadcast=1, axis=1)
    np.testing.assert_array_equal(got, a + b[:, None])


def test_legacy_shapes_must_match_without_broadcast():
    a, b = np.zeros((2, 3), np.float32), np.zeros((3,), np.float32)
    with pytest.raises(OnnxImportError, match="Mul"):
        load(_model("Mul", [a, b], "float32", opset=6))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cast_truncates_floats_to_ints(backend):
    x = np.array([-2.7, -0.5, 0.5, 2.7, 300.0], np.float32)
    got = _run("Cast", [x], backend, "int32", to=TensorProto.INT32)
    assert got.dtype == np.int32 and got.tolist() == [-2, 0, 0, 2, 300]


def test_unsupported_attribute_and_cast_target_name_the_op():
    with pytest.raises(OnnxImportError, match="Gelu.*approximate"):
        load(_model("Gelu", [X], "float32", approximate="erf"))
    with pytest.raises(OnnxImportError, match="Cast.*BFLOAT16"):
        load(_model("Cast", [X], "float32", to=TensorProto.BFLOAT16))


def test_imported_activations_are_differentiable():
    model = load(_model("Selu", [X], "float32", alpha=1.5, gamma=1.2))
    y = model.outputs["y"]
    x = model.inputs["x0"]
    g = gx.compile([x], gx.grad(gx.sum(y), x))(X)
    want = 1.2 * np.where(X > 0, 1.0, 1.5 * np.exp(X))
    np.testing.assert_allclose(g, want, rtol=1e-5)
    report = gx.check_grad(lambda v: gx.asin(v) * gx.atan(v) + gx.acosh(v + 2.0),
                           (UNIT.astype(np.float64),), order=2)
    assert report.ok, str(report)
