"""ONNX reductions, ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax, CumSum/CumProd, TopK,
LpNormalization and MeanVarianceNormalization: single-node models against NumPy, on both
backends, with the version differences (axes attribute vs input, 2-D softmax before opset
13), errors and a gradient."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import graphc as gx
from graphc.onnx import OnnxImportError, load
from graphc.onnx.dtypes import TO_ONNX

BACKENDS = ["numpy", "llvm"]
RNG = np.random.default_rng(5)
X = RNG.standard_normal((2, 3, 4)).astype(np.float32)


def model(op: str, inputs: list, opset: int, n_outputs: int = 1, **attrs) -> onnx.ModelProto:
    """One ``op`` node. ``inputs`` are arrays: the first is the graph input ``x``, the others
    initializers (axes, k)."""
    x = inputs[0]
    names = ["x"] + [f"c{k}" if a is not None else "" for k, a in enumerate(inputs[1:])]
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in zip(names[1:], inputs[1:],
                                                                      strict=True)
             if a is not None]
    outs = [f"y{k}" for k in range(n_outputs)]
    node = helper.make_node(op, names, outs, **attrs)
    graph = helper.make_graph(
        [node], op, [helper.make_tensor_value_info("x", TO_ONNX[x.dtype.name], x.shape)],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs],
        initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run(m: onnx.ModelProto, x: np.ndarray, backend: str) -> tuple[np.ndarray, ...]:
    return load(m).compile(backend)(x)


# -- reductions ---------------------------------------------------------------------------------

REDUCTIONS = {  # op -> NumPy reference f(x, axes, keepdims)
    "ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceProd": np.prod, "ReduceMax": np.max,
    "ReduceMin": np.min,
    "ReduceL1": lambda x, axis, keepdims: np.sum(np.abs(x), axis, keepdims=keepdims),
    "ReduceL2": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis, keepdims=keepdims)),
    "ReduceLogSum": lambda x, axis, keepdims: np.log(np.sum(x, axis, keepdims=keepdims)),
    "ReduceLogSumExp":
        lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis, keepdims=keepdims)),
    "ReduceSumSquare": lambda x, axis, keepdims: np.sum(x * x, axis, keepdims=keepdims),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("axes_as, axes, keepdims", [
    ("attribute", (1,), 1), ("input", (0, -1), 0), ("input", None, 1), ("attribute", None, 0)])
def test_reductions(op, axes_as, axes, keepdims, backend):
    x = np.abs(X) + 0.5 if op == "ReduceLogSum" else X
    if axes_as == "attribute":
        kwargs = {} if axes is None else {"axes": list(axes)}
        m = model(op, [x], 11, keepdims=keepdims, **kwargs)
    else:
        m = model(op, [x] + ([] if axes is None else [np.array(axes, np.int64)]), 18,
                  keepdims=keepdims)
    (y,) = run(m, x, backend)
    want = REDUCTIONS[op](x.astype(np.float64), axes, keepdims=bool(keepdims))
    assert y.dtype == np.float32 and y.shape == np.shape(want)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_axes_input_with_noop_is_the_identity(backend):
    m = model("ReduceSum", [X, np.array([], np.int64)], 13, noop_with_empty_axes=1)
    np.testing.assert_array_equal(run(m, X, backend)[0], X)
    m = model("ReduceMax", [X], 18, noop_with_empty_axes=0, keepdims=0)  # no axes: all
    np.testing.assert_array_equal(run(m, X, backend)[0], X.max())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op, dtype, want", [
    ("ReduceSum", "float32", 0), ("ReduceProd", "float32", 1), ("ReduceL2", "float32", 0),
    ("ReduceLogSumExp", "float32", -np.inf), ("ReduceMax", "float32", -np.inf),
    ("ReduceMin", "int32", np.iinfo(np.int32).max), ("ReduceMax", "bool", False),
])
def test_empty_sets_give_the_identity(op, dtype, want, backend):
    x = np.zeros((2, 0, 4), dtype)
    (y,) = run(model(op, [x, np.array([1], np.int64)], 18, keepdims=1), x, backend)
    assert y.dtype == dtype and y.shape == (2, 1, 4)
    np.testing.assert_array_equal(y, np.full((2, 1, 4), want, dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_reductions_keep_the_dtype(backend):
    x = RNG.integers(-5, 5, (3, 4)).astype(np.int32)
    for op, ref in [("ReduceSum", np.sum), ("ReduceProd", np.prod), ("ReduceMin", np.min)]:
        (y,) = run(model(op, [x], 11, axes=[1], keepdims=0), x, backend)
        assert y.dtype == np.int32
        np.testing.assert_array_equal(y, ref(x, 1).astype(np.int32))


# -- argmax, argmin -----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_extrema_with_ties(op, last, backend):
    x = RNG.integers(0, 3, (3, 5)).astype(np.float32)
    (y,) = run(model(op, [x], 13, axis=1, keepdims=0, select_last_index=last), x, backend)
    f = np.argmax if op == "ArgMax" else np.argmin
    want = 4 - f(x[:, ::-1], 1) if last else f(x, 1)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, want)


# -- softmax family -----------------------------------------------------------------------------

def _softmax(x, axes):
    e = np.exp(x - x.max(axes, keepdims=True))
    return e / e.sum(axes, keepdims=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opset, axis, axes", [(11, 1, (1, 2)), (11, 0, (0, 1, 2)),
                                               (13, 1, (1,)), (13, -1, (2,))])
def test_softmax_versions(opset, axis, axes, backend):
    x = X.astype(np.float64)
    (s,) = run(model("Softmax", [x], opset, axis=axis), x, backend)
    (ls,) = run(model("LogSoftmax", [x], opset, axis=axis), x, backend)
    (h,) = run(model("Hardmax", [x], opset, axis=axis), x, backend)
    np.testing.assert_allclose(s, _softmax(x, axes), rtol=1e-12)
    np.testing.assert_allclose(ls, np.log(_softmax(x, axes)), rtol=1e-12)
    rows = np.moveaxis(x, axes, range(3 - len(axes), 3)).reshape(
        *[x.shape[a] for a in range(3) if a not in axes], -1)
    hot = np.eye(rows.shape[-1])[rows.argmax(-1)].reshape(
        np.moveaxis(x, axes, range(3 - len(axes), 3)).shape)
    np.testing.assert_array_equal(h, np.moveaxis(hot, range(3 - len(axes), 3), axes))


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_gradient_matches_finite_differences(backend):
    imported = load(model("LogSoftmax", [X.astype(np.float64)], 13, axis=1))
    x, y = imported.inputs["x"], imported.outputs["y0"]
    r = RNG.standard_normal(y.shape)
    forward = gx.compile([x], gx.sum(y * r), backend=backend)
    grad = gx.compile([x], gx.grad(gx.sum(y * r), x), backend=backend)
    a = X.astype(np.float64)
    numeric = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        d = np.zeros_like(a)
        d[i] = 1e-6
        numeric[i] = (forward(a + d) - forward(a - d)) / 2e-6
    np.testing.assert_allclose(grad(a), numeric, rtol=1e-5, atol=1e-7)


# -- scans and TopK -----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op, ufunc", [("CumSum", np.cumsum), ("CumProd", np.cumprod)])
@pytest.mark.parametrize("exclusive, reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumulative_ops(op, ufunc, exclusive, reverse, backend):
    x = RNG.integers(-3, 4, (3, 5)).astype(np.int32)
    m = model(op, [x, np.array(-1, np.int64)], 26, exclusive=exclusive, reverse=reverse)
    (y,) = run(m, x, backend)
    flipped = x[:, ::-1] if reverse else x
    want = ufunc(flipped, 1)
    if exclusive:
        want = np.concatenate([np.full((3, 1), op == "CumProd"), want[:, :-1]], 1)
    want = want[:, ::-1] if reverse else want
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opset, largest", [(1, 1), (10, 1), (11, 0)])
def test_top_k(opset, largest, backend):
    x = RNG.integers(0, 4, (3, 6)).astype(np.float32)  # ties: the lower index first
    attrs = {"axis": 1} | ({"k": 3} if opset == 1 else {}) | (
        {"largest": largest} if opset >= 11 else {})
    inputs = [x] if opset == 1 else [x, np.array([3], np.int64)]
    values, indices = run(model("TopK", inputs, opset, n_outputs=2, **attrs), x, backend)
    key = -x if largest else x
    order = np.lexsort((np.broadcast_to(np.arange(6), x.shape), key), axis=1)[:, :3]
    np.testing.assert_array_equal(indices, order)
    np.testing.assert_array_equal(values, np.take_along_axis(x, order, 1))


# -- normalizations -----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization_with_a_zero_row(p, backend):
    x = X[0].copy()
    x[1] = 0
    (y,) = run(model("LpNormalization", [x], 1, axis=-1, p=p), x, backend)
    norm = np.linalg.norm(x.astype(np.float64), p, axis=-1, keepdims=True)
    np.testing.assert_allclose(y, np.where(norm == 0, 0, x / np.where(norm == 0, 1, norm)),
                               rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mean_variance_normalization(backend):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    (y,) = run(model("MeanVarianceNormalization", [x], 13), x, backend)
    mean = x.mean((0, 2, 3), keepdims=True)
    std = np.sqrt(((x - mean) ** 2).mean((0, 2, 3), keepdims=True))
    np.testing.assert_allclose(y, (x - mean) / (std + 1e-9), rtol=1e-4, atol=1e-5)


# -- errors -------------------------------------------------------------------------------------

def test_unsupported_attribute_names_the_op():
    with pytest.raises(OnnxImportError, match="LpNormalization.*p=3"):
        load(model("LpNormalization", [X], 1, p=3))
    with pytest.raises(OnnxImportError, match="ArgMax.*empty axis"):
        load(model("ArgMax", [np.zeros((2, 0), np.float32)], 13, axis=1))
