"""The dense op: act(x @ W + b) in one node — values, in-place activations, derivatives,
type errors."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.compile import default_backend
from graphc.ops import dense as dense_module
from graphc.ops.dense import DENSE, DENSE_ACTIVATIONS, dense
from graphc.ops.elementwise import ELEMENTWISE
from tests.helpers import against_torch, assert_gradients, functional, rand

#: Every activation op a dense node may end with, spelled as a user calls it, with
#: params where the op has some (or where the test wants non-default ones).
ACTIVATION_CASES = [
    ("identity", {}), ("heaviside", {"at_zero": 0.5}),
    ("threshold", {"threshold": 0.1, "value": -2.0}), ("sign", {}), ("sigmoid", {}),
    ("sigmoid_c", {"c": 2.5}), ("logsigmoid", {}), ("tanh", {}), ("relu", {}), ("relu6", {}),
    ("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 0.7}), ("selu", {}), ("celu", {}),
    ("gelu", {}), ("gelu_tanh", {}), ("silu", {}), ("swish", {"beta": 1.5}), ("mish", {}),
    ("softplus", {"beta": 2.0}), ("softsign", {}), ("hardtanh", {}), ("hardsigmoid", {}),
    ("hardswish", {}), ("tanhshrink", {}), ("softshrink", {}), ("hardshrink", {}),
    ("piecewise_linear", {}),
]
NAMES = [name for name, _ in ACTIVATION_CASES]


def test_the_cases_cover_every_dense_activation():
    assert set(NAMES) == DENSE_ACTIVATIONS


def layer(shape_x=(4, 3), n=5, bias_shape=(5,)):
    """Random float64 x, W and b (``None`` for no bias) for a layer of ``n`` units."""
    x = rand(*shape_x) * 2
    w = rand(shape_x[-1], n)
    b = None if bias_shape is None else rand(*bias_shape)
    return x, w, b


def run(activation, x, w, b, **params):
    """Compile ``dense`` on inputs shaped like the arrays (no optimization) and run it."""
    arrays = [a for a in (x, w, b) if a is not None]
    xs = [gx.input(f"a{k}", a.shape, a.dtype) for k, a in enumerate(arrays)]
    y = dense(*xs[:2], xs[2] if b is not None else None, activation, **params)
    return gx.compile(xs, y, optimize=False)(*arrays), y


# -- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, params", ACTIVATION_CASES, ids=NAMES)
def test_value_is_the_activation_op_on_the_affine_map(name, params):
    x, w, b = layer()
    got, y = run(name, x, w, b, **params)
    z = np.matmul(x, w) + b
    expected = ELEMENTWISE[y.attr["activation"]].impl(z, **dict(y.attr["params"]))
    if default_backend() == "numpy":  # in place or not: NumPy's arithmetic
        np.testing.assert_array_equal(got, expected)
    else:  # the llvm backend's vector math is within a few ulps of NumPy's
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15)
    assert got.shape == (4, 5) and got.dtype == np.float64


@pytest.mark.parametrize("name, reference", [
    ("relu", lambda z: np.maximum(z, 0)),
    ("tanh", np.tanh),
    ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
    ("leaky_relu", lambda z: np.where(z > 0, z, 0.01 * z)),
    ("softplus", lambda z: np.logaddexp(0, z)),
    (None, lambda z: z),
])
def test_values_match_numpy(name, reference):
    x, w, b = layer()
    got, _ = run(name, x, w, b)
    np.testing.assert_allclose(got, reference(x @ w + b), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("shape_x, bias_shape", [
    ((3,), (5,)), ((4, 3), None), ((4, 3), (1, 5)), ((2, 4, 3), (5,)), ((2, 4, 3), (1, 1, 5)),
])
def test_shapes(shape_x, bias_shape):
    x, w, b = layer(shape_x, 5, bias_shape)
    got, y = run("tanh", x, w, b)
    expected = np.tanh(x @ w + (0 if b is None else b))
    assert y.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_float32_computes_in_float32():
    x, w, b = (a.astype(np.float32) for a in layer())
    got, y = run("sigmoid", x, w, b)
    assert y.dtype == "float32" and got.dtype == np.float32
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(x.astype(float) @ w + b))), rtol=1e-5)


def test_symbolic_batch_dim():
    xs = gx.input("x", ("batch", 3), "float64"), gx.input("W", (3, 2), "float64")
    y = dense(*xs, activation="relu")
    assert y.shape == ("batch", 2)
    fn = gx.compile(list(xs), y, optimize=False)
    for rows in (1, 7):
        x, w, _ = layer((rows, 3), 2, None)
        np.testing.assert_allclose(fn(x, w), np.maximum(x @ w, 0), rtol=1e-14)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "identity", "sigmoid_c"])
def test_activations_run_in_place_on_the_product_buffer(name):
    params = {"c": 2.0} if name == "sigmoid_c" else {}
    buffer = rand(4, 5)
    expected = ELEMENTWISE[name].impl(buffer.copy(), **params)
    result = dense_module._activate_in_place(buffer, name, params)
    assert result is buffer
    np.testing.assert_array_equal(result, expected)


def test_relu_in_place_keeps_the_formula_meaning_of_nan():
    buffer = np.array([np.nan, -1.0, 2.0])
    expected = ELEMENTWISE["relu"].impl(buffer.copy())
    np.testing.assert_array_equal(dense_module._activate_in_place(buffer, "relu", {}), expected)


@pytest.mark.parametrize("name, params", ACTIVATION_CASES[:12], ids=NAMES[:12])
def test_expand_computes_the_same_value(name, params):
    x, w, b = layer((2, 4, 3))
    xs = [gx.input(f"a{k}", a.shape, "float64") for k, a in enumerate((x, w, b))]
    y = dense(*xs, activation=name, **params)
    fused, expanded = gx.compile(xs, [y, DENSE.expand(y)], optimize=False)(x, w, b)
    np.testing.assert_allclose(fused, expanded, rtol=1e-14, atol=1e-15)


# -- derivatives ---------------------------------------------------------------------------------

SMOOTH = ["identity", "sigmoid", "sigmoid_c", "tanh", "gelu", "silu", "softplus", "mish", "selu"]
PIECEWISE = ["relu", "leaky_relu", "elu", "celu", "relu6", "hardtanh", "softsign"]
PARAMS = dict(ACTIVATION_CASES)


@pytest.mark.parametrize("name", [None, *SMOOTH, *PIECEWISE])
def test_gradients_first_and_second_order(name):
    x, w, b = layer()
    params = PARAMS.get(name, {})
    assert_gradients(lambda x, w, b: dense(x, w, b, name, **params), x, w, b, order=2)


@pytest.mark.parametrize("shape_x, bias_shape", [((3,), (5,)), ((2, 4, 3), (1, 1, 5)),
                                                 ((4, 3), None)])
def test_gradients_of_every_shape(shape_x, bias_shape):
    arrays = [a for a in layer(shape_x, 5, bias_shape) if a is not None]

    def f(x, w, b=None):
        return dense(x, w, b, "tanh")

    assert_gradients(f, *arrays, order=2)


@pytest.mark.parametrize("name, params", ACTIVATION_CASES, ids=NAMES)
def test_gradient_equals_the_gradient_of_the_expansion(name, params):
    x, w, b = layer((2, 4, 3))
    xs = [gx.input(f"a{k}", a.shape, "float64") for k, a in enumerate((x, w, b))]
    y = dense(*xs, activation=name, **params)
    r = rand(*y.shape)
    ours = gx.grad(gx.sum(y * r), xs)
    theirs = gx.grad(gx.sum(DENSE.expand(y) * r), xs)
    values = gx.compile(xs, [*ours, *theirs], optimize=False)(x, w, b)
    for mine, reference in zip(values[:3], values[3:], strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name, dense_nodes", [("relu", 1), ("sigmoid", 1), ("tanh", 1),
                                               ("elu", 1), ("gelu", 2), ("softplus", 2)])
def test_backward_reads_the_forward_output_instead_of_recomputing_the_product(name, dense_nodes):
    """relu' = [out > 0] and σ' = out(1 − out) need no pre-activation; gelu' needs it, so
    the backward builds dense(x, W, b) (a second product) for it."""
    xs = [gx.input("x", (4, 3), "float64"), gx.input("W", (3, 5), "float64"),
          gx.input("b", (5,), "float64")]
    y = dense(*xs, activation=name)
    graph = gx.Graph.build(xs, [y, *gx.grad(gx.sum(y), xs)])
    products = [n for n in graph.toposort() if n.op.name == "dense"
                or (n.op.name == "matmul" and n.inputs == tuple(xs[:2]))]
    assert len(products) == dense_nodes


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "leaky_relu", "gelu"])
def test_against_torch(name):
    F = functional()
    torch_act = {"relu": F.relu, "tanh": F.tanh, "sigmoid": F.sigmoid,
                 "leaky_relu": F.leaky_relu, "gelu": F.gelu}[name]
    against_torch(lambda x, w, b: dense(x, w, b, name), lambda x, w, b: torch_act(x @ w + b),
                  *layer((2, 4, 3)))


# -- type errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape_x, shape_w, shape_b, message", [
    ((4, 3), (4, 5), (5,), "contraction dims differ (3 vs 4)"),
    ((4, 3), (3,), None, "W (3,)"),
    ((4, 3), (2, 3, 5), None, "W (2, 3, 5)"),
    ((), (3, 5), None, "x ()"),
    ((4, 3), (3, 5), (4,), "b (4,) must be (5,)"),
    ((4, 3), (3, 5), (4, 5), "b (4, 5) must be (5,)"),
    ((4, 3), (3, 5), (1, 1, 5), "b (1, 1, 5)"),
])
def test_bad_shapes_name_dense_and_the_shapes(shape_x, shape_w, shape_b, message):
    xs = [gx.input("x", shape_x, "float64"), gx.input("W", shape_w, "float64")]
    b = None if shape_b is None else gx.input("b", shape_b, "float64")
    with pytest.raises(gx.GraphcTypeError) as info:
        dense(*xs, b)
    text = str(info.value)
    assert text.startswith("dense: ") and message in text
    assert f"float64{shape_x}".replace(",)", ")") in text.replace(",)", ")")


@pytest.mark.parametrize("dtypes, message", [
    (("float64", "float32", "float64"), "one float dtype, got float64, float32, float64"),
    (("int64", "int64", "int64"), "one float dtype, got int64"),
])
def test_bad_dtypes(dtypes, message):
    xs = [gx.input(n, s, d) for n, s, d in zip("xWb", [(4, 3), (3, 5), (5,)], dtypes,
                                                strict=True)]
    with pytest.raises(gx.GraphcTypeError, match="dense") as info:
        dense(*xs)
    assert message in str(info.value)


@pytest.mark.parametrize("activation, params, message", [
    ("softmax", {}, "unknown activation 'softmax'"),
    ("prelu", {}, "dense: "),
    ("rrelu", {"training": True}, "is not one elementwise op"),
    ("leaky_relu", {"beta": 2.0}, "dense: "),
    ("threshold", {}, "dense: "),
    (None, {"alpha": 0.1}, "without an activation"),
])
def test_bad_activations(activation, params, message):
    xs = [gx.input("x", (4, 3), "float64"), gx.input("W", (3, 5), "float64")]
    with pytest.raises(gx.GraphcTypeError, match="dense") as info:
        dense(*xs, activation=activation, **params)
    assert message in str(info.value)


def test_public_spellings_become_ops_with_their_params():
    xs = [gx.input("x", (4, 3), "float64"), gx.input("W", (3, 5), "float64")]
    assert dense(*xs, activation="gelu", approximate="tanh").attr["activation"] == "gelu_tanh"
    assert dense(*xs, activation="sigmoid", c=3).attr["params"] == (("c", 3.0),)
    assert dense(*xs, activation="leaky_relu").attr["params"] == (("alpha", 0.01),)
    assert dense(*xs, activation="swish").attr["activation"] == "silu"
    # hash-consed: the same layer is one node
    assert dense(*xs, activation="relu") is dense(*xs, activation="relu")
