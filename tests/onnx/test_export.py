"""graphc → ONNX: every exportable op run in onnxruntime against graphc's numpy backend,
optimized (fused) graphs, symbolic dims, and graphc → ONNX → graphc round trips."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest

import graphc as gx
from graphc.onnx.exporter import DEFAULT_OPSET, OnnxExportError, exportable_ops, save
from graphc.ops.base import ALL_OPS
from graphc.ops.elementwise import ELEMENTWISE

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)


def _ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _assert_close(got: np.ndarray, want: np.ndarray, rtol: float) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


# -- the op table ----------------------------------------------------------------------------

#: attribute values for the elementwise ops' formula params
PARAMS = {"alpha": 0.7, "beta": 1.3, "lambd": 0.5, "lo": -0.5, "hi": 0.5, "at_zero": 0.5,
          "threshold": 0.1, "value": -2.0, "min_val": -1.0, "max_val": 1.0, "c": 1.5}
#: ops defined only for positive inputs
POSITIVE = {"log", "sqrt", "log1p", "pow", "reciprocal", "div"}
#: elementwise ops also checked on int64 inputs (NumPy keeps ints, or promotes to float64)
INT_TOO = {"add", "sub", "mul", "maximum", "minimum", "neg", "abs", "sign", "square", "floor",
           "div", "exp", "less", "equal", "not_equal", "logical_and", "logical_xor",
           "logical_not", "where", "round", "fmod", "mod", "ceil", "trunc"}


#: ops defined on (-1, 1), or from 1 on
UNIT, FROM_ONE = {"asin", "acos", "atanh"}, {"acosh"}
#: ops whose second input must not be 0, or must be a small shift count
DIVISORS, SHIFTS = {"fmod", "mod", "trunc_div", "div"}, {"left_shift", "right_shift"}


def _sample(name: str, dtype: str, shape: tuple[int, ...], k: int = 0) -> np.ndarray:
    if dtype == "bool":
        return RNG.random(shape) < 0.5
    if k == 1 and name in SHIFTS:
        return RNG.integers(0, 6, shape).astype(dtype)
    if k == 1 and name in DIVISORS:
        return (RNG.choice([-1, 1], shape) * RNG.uniform(1, 4, shape)).astype(dtype)
    if dtype.startswith("int"):
        return RNG.integers(-30 if name in SHIFTS | DIVISORS else -3, 31, shape).astype(dtype)
    if name in POSITIVE:
        return RNG.uniform(0.2, 2.0, shape).astype(dtype)
    if name in UNIT | FROM_ONE:
        return RNG.uniform(-0.9, 0.9, shape).astype(dtype) + (2.0 if name in FROM_ONE else 0)
    values = RNG.normal(0, 2, shape)
    values.flat[::5] = 0.0  # kinks and ties: x = 0 is a branch point of many activations
    return values.astype(dtype)


Case = tuple[list[tuple[gx.Tensor, np.ndarray]], list[gx.Tensor]]


def _elementwise_case(name: str, dtype: str) -> Callable[[], Case]:
    def build() -> Case:
        op = ELEMENTWISE[name]
        f = op.formula
        shapes = [(2, 3), (3,), (2, 1)][: len(f.inputs)]  # broadcasting as well
        pairs = []
        for k, (var, shape) in enumerate(zip(f.inputs, shapes, strict=True)):
            d = "bool" if (name == "where" and var == "c") else dtype
            pairs.append((gx.input(f"in{k}", shape, d), _sample(name, d, shape, k)))
        attrs = {p: PARAMS[p] for p in f.params}
        if name == "clip":
            attrs = {"lo": -0.5, "hi": 1.0}
        return pairs, [op(*(t for t, _ in pairs), **attrs)]
    return build


def _one(shape: tuple, dtype: str = "float32", name: str = "x") -> tuple[gx.Tensor, np.ndarray]:
    return gx.input(name, shape, dtype), _sample(name, dtype, shape)


def _unary(fn: Callable[[gx.Tensor], gx.Tensor], shape: tuple = (2, 3, 4),
           dtype: str = "float32") -> Callable[[], Case]:
    def build() -> Case:
        x = _one(shape, dtype)
        return [x], [fn(x[0])]
    return build


def _with_indices(fn: Callable, shape: tuple, index_shape: tuple, high: int,
                  dtype: str = "float32") -> Callable[[], Case]:
    def build() -> Case:
        x = _one(shape, dtype)
        i = (gx.input("i", index_shape, "int64"), RNG.integers(0, high, index_shape))
        return [x, i], [fn(x[0], i[0])]
    return build


def _binary(fn: Callable, a: tuple, b: tuple) -> Callable[[], Case]:
    def build() -> Case:
        x, y = _one(a, name="x"), _one(b, name="y")
        return [x, y], [fn(x[0], y[0])]
    return build


def _internal(op: str, **attrs) -> Callable:
    return lambda *inputs: ALL_OPS[op](*inputs, **attrs)


def _scatter_case(reduction: str) -> Case:
    data, updates = _one((3, 4), name="data"), _one((2, 4), name="updates")
    # distinct positions for plain assignment, a repeated one to combine otherwise
    rows = [[0, 2, 1, 0], [2, 1, 0, 1]] if reduction == "none" else [[0, 2, 1, 0], [0, 1, 1, 0]]
    indices = (gx.input("i", (2, 4), "int64"), np.array(rows))
    out = _internal("scatter_elements", axis=0, reduction=reduction)(
        data[0], indices[0], updates[0])
    return [data, indices, updates], [out]


OTHER_CASES: dict[str, Callable[[], Case]] = {
    "cast": _unary(lambda x: gx.cast(x, "int32")),
    "full_like": _unary(lambda x: gx.full_like(x, 2.5)),
    "reshape": _unary(lambda x: gx.reshape(x, (4, 6))),
    "transpose": _unary(lambda x: gx.transpose(x, (2, 0, 1))),
    "broadcast_to": _unary(lambda x: gx.broadcast_to(x, (5, 2, 3, 4))),
    "concatenate": _binary(lambda x, y: gx.concatenate([x, y], axis=1), (2, 3), (2, 4)),
    "pad": _unary(lambda x: gx.pad(x, ((1, 0), (0, 2), (1, 1)), constant_values=1.5)),
    "getitem": _unary(lambda x: x[1, ::-2, None, 1:3]),
    "getitem_last": _unary(lambda x: x[-1, :, -1]),
    "slice_scatter": _binary(
        _internal("slice_scatter", index=(1, (None, None, -2), (1, 3, None))), (2, 2), (2, 3, 4)),
    "take": _with_indices(lambda x, i: gx.take(x, i, axis=1), (2, 5, 3), (4,), 5),
    "take_along_axis": _with_indices(lambda x, i: gx.take_along_axis(x, i, axis=1),
                                     (2, 5, 3), (2, 4, 1), 5),
    "take_scatter_add": _with_indices(
        lambda g, i: _internal("take_scatter_add", axis=1)(
            g, i, gx.constant(np.zeros((2, 5, 3)))),
        (2, 4, 3), (4,), 5, dtype="float64"),
    "take_along_axis_scatter_add": _with_indices(
        lambda g, i: _internal("take_along_axis_scatter_add", axis=1)(
            g, i, gx.constant(np.zeros((2, 5, 3), "float32"))),
        (2, 4, 3), (2, 4, 1), 5),
    "scatter_elements": lambda: _scatter_case("none"),
    "scatter_elements_add": lambda: _scatter_case("add"),
    "scatter_elements_max": lambda: _scatter_case("max"),
    "one_hot": lambda: ([(t := gx.input("i", (2, 3), "int64"),
                          np.array([[0, 2, -1], [5, 1, 4]]))], [gx.one_hot(t, 5)]),
    "sum": _unary(lambda x: gx.sum(x, axis=(0, 2))),
    "sum_int32": _unary(lambda x: gx.sum(x, axis=1, keepdims=True), dtype="int32"),
    "prod": _unary(lambda x: gx.prod(x, axis=1)),
    "max": _unary(lambda x: gx.max(x, axis=(1, 2), keepdims=True)),
    "min": _unary(lambda x: gx.min(x)),
    "logsumexp": _unary(lambda x: gx.logsumexp(x, axis=-1)),
    "l2_norm": _unary(lambda x: gx.norm(x, axis=1)),
    "argmax": _unary(lambda x: gx.argmax(x, axis=1)),
    "argmin_flat": _unary(lambda x: gx.argmin(x)),
    "axis_size": lambda: ([(t := gx.input("x", ("n", 3), "float32"),
                            _sample("x", "float32", (4, 3)))],
                          [ALL_OPS["axis_size"](t, axis=(0, 1), dtype="float32")]),
    "first_max_mask_symbolic": lambda: ([(t := gx.input("x", (2, "n"), "float32"),
                                          _sample("x", "float32", (2, 5)))],
                                        [ALL_OPS["first_max_mask"](t, axis=1)]),
    "first_max_mask": _unary(_internal("first_max_mask", axis=2)),
    "maxout": _unary(lambda x: gx.maxout(x, 2)),
    "cumsum": _unary(lambda x: gx.cumsum(x, axis=1)),
    "cumsum_int32": _unary(_internal("cumsum", axis=2, exclusive=True, reverse=True),
                           dtype="int32"),
    "cumprod": _unary(lambda x: gx.cumprod(x, axis=1)),
    "cumprod_exclusive_reverse": _unary(
        _internal("cumprod", axis=0, exclusive=True, reverse=True), dtype="float64"),
    "argsort": _unary(lambda x: gx.argsort(x, axis=1)),
    "argsort_descending_ties": lambda: (
        [(t := gx.input("x", (2, 6), "int64"),
          np.array([[3, 1, 3, 0, 1, 3], [2, 2, 2, 5, 5, 0]]))],
        [gx.argsort(t, axis=-1, descending=True)]),
    "matmul": _binary(gx.matmul, (2, 3, 4), (4, 5)),
    "matmul_vector": _binary(gx.matmul, (4,), (3, 4, 2)),
    "dense": _binary(lambda x, w: gx.dense(x, w, activation="tanh"), (3, 4), (4, 2)),
    "addmm": lambda: (
        [(c := _one((3, 2), name="c")), (a := _one((3, 4), name="a")),
         (m := _one((4, 2), name="m"))],
        [gx.addmm(c[0], a[0], m[0], beta=0.5, alpha=-2.0)]),
    "einsum": _binary(lambda x, y: gx.einsum("bij,jk->bik", x, y), (2, 3, 4), (4, 5)),
    "softmax": _unary(lambda x: gx.softmax(x, axis=1)),
    "softmax_2axes": _unary(lambda x: gx.softmax(x, axis=(1, 2))),
    "log_softmax": _unary(lambda x: gx.log_softmax(x, axis=-1)),
    "log_softmax_2axes": _unary(lambda x: gx.log_softmax(x, axis=(0, 2))),
    "conv2d": _binary(lambda x, w: gx.conv2d(x, w, stride=(2, 1), padding=((1, 0), (2, 1)),
                                             dilation=(1, 2)), (2, 4, 7, 8), (6, 4, 3, 2)),
    "conv2d_groups": _binary(lambda x, w: gx.conv2d(x, w, padding=1, groups=2),
                             (1, 4, 5, 5), (6, 2, 3, 3)),
    "max_pool2d": _unary(lambda x: gx.max_pool2d(x, 3, stride=2, padding=1), (2, 3, 7, 6)),
    "avg_pool2d": _unary(lambda x: gx.avg_pool2d(x, 2, stride=1, padding=1,
                                                 count_include_pad=False), (2, 3, 5, 4)),
    "avg_pool2d_pad": _unary(lambda x: gx.avg_pool2d(x, (3, 2), stride=2), (1, 2, 7, 6)),
    "col2im": _unary(_internal("col2im", image_size=(5, 5), kernel=(3, 3), stride=(1, 1),
                               padding=((1, 1), (1, 1)), dilation=(1, 1)), (2, 3, 9, 5, 5)),
}

#: ops on integers only
INT_ONLY = {n for n, op in ELEMENTWISE.items() if op.formula.result == "int"}
FLOAT_OPS = [n for n in ELEMENTWISE if n not in INT_ONLY]

CASES: dict[str, Callable[[], Case]] = {
    **{name: _elementwise_case(name, "float32") for name in FLOAT_OPS},
    **{f"{name}_float64": _elementwise_case(name, "float64") for name in FLOAT_OPS},
    **{f"{name}_int64": _elementwise_case(name, "int64") for name in sorted(INT_TOO | INT_ONLY)},
    **{f"{name}_int32": _elementwise_case(name, "int32") for name in sorted(INT_ONLY)},
    **{f"{name}_uint8": _elementwise_case(name, "uint8") for name in sorted(SHIFTS)},
    **OTHER_CASES,
}

#: float formulas that ONNX computes by another route (log1p as log(1 + x), ...)
LOOSE = {"log1p", "expm1", "celu", "elu", "selu", "softplus", "logsigmoid", "mish", "gelu",
         "gelu_tanh", "logsumexp"}


def _graph_and_feeds(case: str) -> tuple[gx.Graph, dict[str, np.ndarray], list[np.ndarray]]:
    pairs, outputs = CASES[case]()
    graph = gx.Graph.build([t for t, _ in pairs], outputs)
    feeds = {t.name: a for t, a in pairs}
    want = gx.compile(graph.inputs, graph.outputs, backend="numpy", optimize=False)(
        *(a for _, a in pairs))
    return graph, feeds, list(want)


def _rtol(case: str) -> float:
    return 2e-4 if case.split("_float64")[0] in LOOSE else 2e-5


#: cases onnxruntime has no CPU kernel for (the model is valid ONNX all the same)
ORT_LACKS = {"erf_float64": "Erf(double)", "gelu_float64": "Erf(double)",
             "atan_float64": "Atan(double)", "asin_float64": "Atan(double)",
             "acos_float64": "Atan(double)"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_runs_in_onnxruntime(case):
    if case in ORT_LACKS:
        pytest.skip(f"onnxruntime has no CPU kernel for {ORT_LACKS[case]}")
    graph, feeds, want = _graph_and_feeds(case)
    model = save(graph)
    got = _ort_run(model, feeds)
    for g, w in zip(got, want, strict=True):
        _assert_close(g, w, _rtol(case))


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_through_graphc(case):
    graph, feeds, want = _graph_and_feeds(case)
    imported = gx.onnx.load(save(graph), initializers="constants")
    got = list(imported.run(feeds, backend="numpy").values())
    for g, w in zip(got, want, strict=True):
        _assert_close(g, w, _rtol(case))


def test_every_op_is_exported_or_refused():
    """The table covers every graphc op save lowers; the rest are the refused ones."""
    covered = set()
    for case in CASES.values():
        pairs, outputs = case()
        covered |= {n.op.name for n in gx.Graph.build([t for t, _ in pairs], outputs).toposort()}
    others = {"param", "fused", "uniform_like", "normal_like", "bernoulli_like",
              "bitcast"}  # tested below
    assert set(exportable_ops()) - covered - others == set()
    # (tests elsewhere register ops of their own: only graphc's count)
    graphc_ops = {n for n, op in ALL_OPS.items() if type(op).__module__.startswith("graphc.")}
    assert graphc_ops - set(exportable_ops()) == {"im2col"}


def test_bitcast_exports_from_opset_26():
    x = gx.input("x", (2, 3), "float32")
    graph = gx.Graph.build([x], [gx.bitcast(x, "int32")])
    with pytest.raises(OnnxExportError, match="opset 26"):
        save(graph)
    model = save(graph, opset=26)
    xv = RNG.normal(size=(2, 3)).astype("float32")
    (back,) = gx.onnx.load(model).compile()(xv)
    np.testing.assert_array_equal(back, xv.view("int32"))


def test_op_without_onnx_equivalent_names_it():
    x = gx.input("x", (1, 2, 4, 4))
    windows = ALL_OPS["im2col"](x, kernel=(2, 2), stride=(1, 1), padding=((0, 0), (0, 0)),
                                dilation=(1, 1), pad_value=0.0)
    with pytest.raises(OnnxExportError, match="im2col"):
        save(gx.Graph.build([x], [windows]))


# -- whole graphs ----------------------------------------------------------------------------


def test_params_and_constants_become_initializers(tmp_path):
    x = gx.input("x", ("batch", 3), "float32")
    W = gx.param("W", RNG.normal(size=(3, 4)).astype("float32"))
    b = gx.param("b", np.zeros(4, "float32"))
    y = gx.relu(x @ W + b) * gx.constant(np.arange(4, dtype="float32"))
    path = tmp_path / "m.onnx"
    model = save(gx.Graph.build([x], [y]), path)
    assert onnx.load(str(path)) == model
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert {"W", "b"} <= set(initializers)
    np.testing.assert_array_equal(initializers["W"], W.value)
    assert any(np.array_equal(v, np.arange(4)) and v.dtype == np.float32
               for v in initializers.values())
    (inp,) = model.graph.input
    assert inp.name == "x" and inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert model.opset_import[0].version == DEFAULT_OPSET
    for n in (1, 5):  # the symbolic batch binds at run time
        xv = RNG.normal(size=(n, 3)).astype("float32")
        want = np.maximum(xv @ W.value + b.value, 0) * np.arange(4)
        np.testing.assert_allclose(_ort_run(model, {"x": xv})[0], want, rtol=1e-5)


def test_symbolic_dims_in_shapes():
    x = gx.input("x", ("n", 6), "float32")
    ones = gx.broadcast_to(gx.full_like(x[:, None, :3], 1.0), ("n", 2, 3))
    y = gx.sum(gx.reshape(x, ("n", 2, 3)) + ones, axis=0) / gx.size(x, 0)
    model = save(gx.Graph.build([x], [y]))
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_value == 2
    f = gx.compile([x], [y], backend="numpy")
    imported = gx.onnx.load(model).compile("numpy")
    for n in (2, 7):
        xv = RNG.normal(size=(n, 6)).astype("float32")
        np.testing.assert_allclose(_ort_run(model, {"x": xv})[0], f(xv)[0], rtol=1e-5)
        np.testing.assert_allclose(imported(xv)[0], f(xv)[0], rtol=1e-5)


def _mlp_loss():
    x = gx.input("x", (4, 3), "float32")
    W = gx.param("W", RNG.normal(size=(3, 5)).astype("float32"))
    h = gx.softplus(x @ W) * 0.5 - gx.tanh(x @ W)
    return x, [gx.sum(gx.exp(-h) + h * h, axis=1), gx.max(gx.sigmoid(h) * 3.0, axis=0)]


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_optimized_graph_with_fused_kernels(backend):
    x, outputs = _mlp_loss()
    f = gx.compile([x], outputs, backend=backend)
    assert any(n.op.name == "fused" for n in f.graph.toposort())
    assert any(n.op.name == "fused" and n.attr["reduce"] for n in f.graph.toposort())
    xv = RNG.normal(size=(4, 3)).astype("float32")
    model = save(f)
    for got, want in zip(_ort_run(model, {"x": xv}), f(xv), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", range(DEFAULT_OPSET, 27))
def test_newer_opsets(opset):
    x, outputs = _mlp_loss()
    f = gx.compile([x], [*outputs, gx.cumprod(outputs[0], 0)], backend="numpy")
    model = save(f, opset=opset)
    assert model.opset_import[0].version == opset
    xv = RNG.normal(size=(4, 3)).astype("float32")
    for got, want in zip(_ort_run(model, {"x": xv}), f(xv), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "hardshrink", "selu"])
def test_activations_with_an_onnx_op_use_it(name):
    x = gx.input("x", (3,), "float32")
    model = save(gx.Graph.build([x], [ELEMENTWISE[name](x, **(
        {"lambd": 0.5} if name == "hardshrink" else {}))]))
    op_types = [n.op_type for n in model.graph.node]
    assert op_types[:-1] == [{"hardshrink": "Shrink", "selu": "Selu"}.get(name, name.title())]


def test_gradient_graph_exports():
    x = gx.input("x", (2, 5), "float32")
    W = gx.param("W", RNG.normal(size=(5, 3)).astype("float32"))
    loss = gx.sum(gx.log_softmax(gx.tanh(x[:, 1:]) @ W[1:], axis=-1) * gx.one_hot(
        gx.argmax(x, axis=1), 3))
    (dW,) = gx.grad(loss, [W])
    f = gx.compile([x], [loss, dW], backend="numpy")
    xv = RNG.normal(size=(2, 5)).astype("float32")
    for got, want in zip(_ort_run(save(f), {"x": xv}), f(xv), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_onnx_model_round_trip_keeps_names():
    x = gx.input("x", ("batch", 3), "float32")
    y = gx.relu(x * 2.0)
    imported = gx.onnx.load(save(gx.Graph.build([x], [y])))
    again = save(imported)
    assert [o.name for o in again.graph.output] == list(imported.outputs)
    assert [i.name for i in again.graph.input] == ["x"]


@pytest.mark.parametrize("op", ["uniform_like", "normal_like", "bernoulli_like"])
def test_random_ops_export_their_distribution(op):
    x = gx.input("x", (200, 50), "float32")
    draw = {"uniform_like": lambda: gx.uniform_like(x, -1.0, 3.0, key=3),
            "normal_like": lambda: gx.normal_like(x, 2.0, 0.5, key=3),
            "bernoulli_like": lambda: gx.bernoulli_like(x, 0.25, key=3)}[op]()
    (got,) = _ort_run(save(gx.Graph.build([x], [draw])), {"x": np.zeros((200, 50), "float32")})
    assert got.shape == (200, 50) and got.dtype == np.float32
    mean = {"uniform_like": 1.0, "normal_like": 2.0, "bernoulli_like": 0.25}[op]
    assert abs(got.mean() - mean) < 0.05
