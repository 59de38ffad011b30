"""Specialize rules: x·x → square, x / c → x·(1/c), matmul + bias → dense, and the
activation folded into dense only where that computes nothing twice."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.graph import Graph
from graphc.passes import run_pipeline
from tests.helpers import rand
from tests.passes.rules import check_rule, ops_in


def optimized_ops(inputs, outputs, level=2):
    """The op names of the level-``level`` optimized graph, and the pass report."""
    graph, report = run_pipeline(Graph.build(inputs, outputs), level=level)
    return ops_in(graph), report


# -- x · x → square(x) ---------------------------------------------------------------------------


@pytest.mark.parametrize("array", [rand(3, 4), rand(5).astype(np.float32),
                                   np.arange(-3, 4), np.array(7.5)])
def test_mul_self(array):
    optimized = check_rule("mul_self", lambda x: x * x, array, gone=["mul"], present=["square"])
    assert optimized.outputs[0].dtype == array.dtype.name


def test_mul_self_leaves_bool_alone():
    x = gx.input("x", (3,), "bool")
    names, report = optimized_ops([x], [x * x])
    assert report.fired["mul_self"] == 0 and "square" not in names


# -- x / c → x · (1/c) ---------------------------------------------------------------------------


@pytest.mark.parametrize("divisor", [3.0, 0.1, -7.0, 1e-300, np.array([2.0, 3.0, -5.0, 1e300])])
def test_div_by_constant_agrees_to_a_few_ulps(divisor):
    x = rand(6, 4) * 10
    optimized = check_rule("div_by_constant", lambda t: t / gx.constant(divisor), x,
                           gone=["div", "reciprocal"], present=["mul"], rtol=1e-15, atol=0)
    assert optimized.outputs[0].dtype == "float64"


@pytest.mark.parametrize("dtype, divisor", [("float32", 3.0), ("int64", 4), ("float64", 0.25)])
def test_div_by_constant_keeps_the_division_dtype(dtype, divisor):
    array = (rand(5) * 100).astype(dtype)
    check_rule("div_by_constant", lambda t: t / divisor, array, gone=["div"],
               rtol=1e-6 if dtype == "float32" else 1e-15, atol=0)


def test_division_by_a_power_of_two_is_exact():
    x = gx.input("x", (100,), "float64")
    array = rand(100)
    fn = gx.compile([x], gx.optimize(x / 8.0, level=2), optimize=False)
    np.testing.assert_array_equal(fn(array), array / 8.0)


@pytest.mark.parametrize("divisor", [np.array([1.0, 0.0]), 1e-310, 1e308, np.inf, np.nan,
                                     np.array([], dtype=float)])
def test_div_by_constant_declines_where_the_reciprocal_is_not_normal(divisor):
    """Zero, subnormal and huge divisors (1/c is ∞ or subnormal), ∞ and nan stay divisions."""
    divisor = np.asarray(divisor)
    x = gx.input("x", divisor.shape, "float64")
    names, report = optimized_ops([x], [x / gx.constant(divisor)])
    assert report.fired["div_by_constant"] == 0 and "div" in names


def test_div_by_an_input_is_left_alone():
    x, y = gx.input("x", (3,), "float64"), gx.input("y", (3,), "float64")
    names, report = optimized_ops([x, y], [x / y])
    assert report.fired["div_by_constant"] == 0 and names.count("div") == 1


# -- matmul(x, W) + b → dense(x, W, b) ------------------------------------------------------------


@pytest.mark.parametrize("shape_x, shape_b, bias_first", [
    ((4, 3), (5,), False), ((4, 3), (5,), True), ((4, 3), (1, 5), False),
    ((2, 4, 3), (5,), False), ((2, 4, 3), (1, 1, 5), True),
])
def test_dense(shape_x, shape_b, bias_first):
    def build(x, w, b):
        return b + gx.matmul(x, w) if bias_first else gx.matmul(x, w) + b

    check_rule("dense", build, rand(*shape_x), rand(3, 5), rand(*shape_b),
               gone=["matmul", "add"], present=["dense"])


def test_dense_of_a_vector_input():
    """A 1-D x reaches the rule as a reshaped (1, k) matmul."""
    check_rule("dense_vector", lambda x, w, b: gx.matmul(x, w) + b, rand(3), rand(3, 5),
               rand(5), gone=["matmul", "reshape"], present=["dense"])


@pytest.mark.parametrize("shape_x, shape_w, shape_b, dtype_b", [
    ((4, 3), (3, 5), (4, 5), "float64"),     # a bias per row is no layer bias
    ((4, 3), (3, 5), (4, 1), "float64"),     # nor one per row, broadcast over columns
    ((2, 4, 3), (2, 3, 5), (5,), "float64"),  # a batch of weights
    ((4, 3), (3, 5), (5,), "float32"),        # mixed dtypes: the add promotes
])
def test_dense_declines_what_is_not_a_layer(shape_x, shape_w, shape_b, dtype_b):
    x, w = gx.input("x", shape_x, "float64"), gx.input("W", shape_w, "float64")
    b = gx.input("b", shape_b, dtype_b)
    names, report = optimized_ops([x, w, b], [gx.matmul(x, w) + b])
    assert report.fired["dense"] == 0 and "dense" not in names


def test_dense_declines_when_the_product_is_used_elsewhere():
    """Fusing would compute x @ W twice: once in dense, once for the other consumer."""
    x, w, b = (gx.input(n, s, "float64") for n, s in (("x", (4, 3)), ("W", (3, 5)), ("b", (5,))))
    product = gx.matmul(x, w)
    names, report = optimized_ops([x, w, b], [product + b, product * 2.0])
    assert report.fired["dense"] == 0 and names.count("matmul") == 1


# -- act(dense(x, W, b)) → dense(x, W, b, activation=act) ----------------------------------------

ACTIVATIONS = [
    ("relu", gx.relu), ("sigmoid", gx.sigmoid), ("tanh", gx.tanh),
    ("leaky_relu", lambda z: gx.leaky_relu(z, 0.2)), ("gelu", gx.gelu),
    ("elu", gx.elu), ("softplus", gx.softplus), ("sigmoid_c", lambda z: gx.sigmoid(z, 3.0)),
]


@pytest.mark.parametrize("name, activation", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_dense_activation(name, activation):
    optimized = check_rule("dense_activation", lambda x, w, b: activation(gx.matmul(x, w) + b),
                           rand(4, 3), rand(3, 5), rand(5), gone=["matmul", "add", name])
    assert ops_in(optimized) == ["input"] * 3 + ["dense"]
    assert optimized.outputs[0].attr["activation"] == name


def test_dense_activation_keeps_the_params():
    x, w, b = (gx.input(n, s, "float64") for n, s in (("x", (4, 3)), ("W", (3, 5)), ("b", (5,))))
    y = gx.optimize(gx.leaky_relu(gx.matmul(x, w) + b, 0.3), level=2)
    assert y.op.name == "dense" and y.attr["params"] == (("alpha", 0.3),)


def test_dense_activation_declines_when_the_pre_activation_is_used_elsewhere():
    x, w, b = (gx.input(n, s, "float64") for n, s in (("x", (4, 3)), ("W", (3, 5)), ("b", (5,))))
    pre = gx.matmul(x, w) + b
    names, report = optimized_ops([x, w, b], [gx.relu(pre), pre])
    assert report.fired["dense"] == 1 and report.fired["dense_activation"] == 0
    assert names.count("dense") == 1 and "relu" in names


@pytest.mark.parametrize("name, activation, fused", [
    ("gelu", gx.gelu, False),       # gelu' reads the pre-activation: keep it, fuse nothing
    ("relu", gx.relu, True),        # relu' = [out > 0] reads only the output: fuse
    ("sigmoid", gx.sigmoid, True),  # σ' reads only the output: fuse
    ("tanh", gx.tanh, True),
])
def test_training_graphs_compute_the_product_once(name, activation, fused):
    """With the gradient in the graph, x @ W runs once, fused or not."""
    x, w, b = (gx.input(n, s, "float64") for n, s in (("x", (4, 3)), ("W", (3, 5)), ("b", (5,))))
    loss = gx.sum(gx.square(activation(gx.matmul(x, w) + b)))
    outputs = [loss, *gx.grad(loss, [x, w, b])]
    names, report = optimized_ops([x, w, b], outputs)
    graph, _ = run_pipeline(Graph.build([x, w, b], outputs), level=2)
    forward = [n for n in graph.toposort() if n.op.name == "dense"
               or (n.op.name == "matmul" and n.inputs == (x, w))]
    assert len(forward) == 1 and forward[0].op.name == "dense"
    assert (report.fired["dense_activation"] == 1) == fused
    assert (name in names) != fused


# -- the pipeline: values and gradients of optimized and unoptimized graphs agree ----------------


def mlp(x, w1, b1, w2, b2):
    hidden = gx.tanh(gx.matmul(x, w1) + b1)
    scores = gx.matmul(hidden, w2) + b2
    return gx.mean(gx.square(scores / 3.0)) + gx.sum(w1 * w1)


def test_mlp_values_and_gradients_agree():
    arrays = [rand(8, 4), rand(4, 6), rand(6), rand(6, 3), rand(3)]
    xs = [gx.input(f"a{k}", a.shape, "float64") for k, a in enumerate(arrays)]
    loss = mlp(*xs)
    outputs = [loss, *gx.grad(loss, xs)]
    fn, report = gx.compile(xs, outputs, optimize=2, explain=True)
    for rule in ("dense", "dense_activation", "mul_self", "div_by_constant"):
        assert report.fired[rule] >= 1, f"{rule} did not fire:\n{report}"
    expected = gx.compile(xs, outputs, optimize=False)(*arrays)
    for got, want in zip(fn(*arrays), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


# -- c ± k·(a @ b) → addmm(c, a, b) ------------------------------------------------------------


@pytest.mark.parametrize("rule,build", [
    ("addmm_sub_scaled", lambda c, a, b: c - 0.1 * (a @ b)),
    ("addmm_sub_scaled", lambda c, a, b: c - (a @ b) * 0.1),
    ("addmm_add_scaled", lambda c, a, b: c + 2.0 * (a @ b)),
    ("addmm_sub", lambda c, a, b: c - a @ b),
])
def test_updates_by_a_product_become_addmm(rule, build):
    optimized = check_rule(rule, build, rand(3, 2), rand(3, 4), rand(4, 2),
                           gone=["matmul", "sub"], present=["addmm"])
    assert optimized.outputs[0].op.name == "addmm"


def test_a_product_read_elsewhere_stays_a_product():
    c, a, b = (gx.input(n, s) for n, s in (("c", (3, 2)), ("a", (3, 4)), ("b", (4, 2))))
    product = a @ b
    names, report = optimized_ops([c, a, b], [c - 0.1 * product, product])
    assert "addmm" not in names and report.fired["addmm_sub_scaled"] == 0


def test_a_broadcast_c_is_left_to_the_other_rules():
    c, a, b = (gx.input(n, s) for n, s in (("c", (2,)), ("a", (3, 4)), ("b", (4, 2))))
    names, _ = optimized_ops([c, a, b], [c - 0.1 * (a @ b)])
    assert "addmm" not in names


def test_an_sgd_step_updates_weights_inside_their_gradients_products():
    w = gx.param("w", rand(3, 2))
    x = gx.input("x", ("n", 3), "float64")
    loss = gx.sum(gx.tanh(x @ w))
    (g,) = gx.grad(loss, [w])
    graph, _ = run_pipeline(Graph.build([x], [loss], {w: w - 0.5 * g}))
    [(_, value)] = graph.updates
    assert value.op.name == "addmm" and value.inputs[0] is w
    assert value.attr["alpha"] == -0.5 and value.attr["beta"] == 1.0
