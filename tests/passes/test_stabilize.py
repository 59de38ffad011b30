"""Stabilize rules: each fires, keeps values and gradients, and stays finite and accurate
where the formula it replaces overflows, underflows or cancels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import graphc as gx
from graphc.graph import Graph
from tests.helpers import rand
from tests.passes.rules import check_rule, ops_in

RNG = np.random.default_rng(7)


def run_naive(inputs, outputs, *arrays):
    """Run the unoptimized graph, which may overflow or take log(0) on ``arrays``."""
    with np.errstate(all="ignore"):
        return gx.compile(inputs, outputs, optimize=False)(*arrays)


def positive(*shape):
    return RNG.uniform(0.5, 2.0, shape)


def probability(*shape):
    return RNG.uniform(0.05, 0.95, shape)


# rule, graph, moderate inputs, ops that must be gone, ops that must be there
CASES = [
    ("log_softmax", lambda z: gx.log(gx.softmax(z)), rand(3, 4), ["softmax", "log"],
     ["log_softmax"]),
    ("log_softmax", lambda z: gx.log(gx.softmax(z, axis=0)), rand(3, 4), ["softmax"],
     ["log_softmax"]),
    ("logsumexp", lambda z: gx.log(gx.sum(gx.exp(z), axis=1)), rand(3, 4), ["exp", "sum"],
     ["logsumexp"]),
    ("logsumexp", lambda z: gx.log(gx.sum(gx.exp(z), axis=0, keepdims=True)), rand(3, 4),
     ["exp"], ["logsumexp"]),
    ("logsumexp", lambda z: gx.log(gx.exp(z).sum()), rand(3, 4), ["exp"], ["logsumexp"]),
    ("log1p", lambda z: gx.log(1 + z), positive(5), ["log"], ["log1p"]),
    ("log1p", lambda z: gx.log(z + 1.0), positive(5), ["log"], ["log1p"]),
    ("log_one_minus", lambda z: gx.log(1 - z), probability(5), ["log"], ["log1p"]),
    ("expm1", lambda z: gx.exp(z) - 1, rand(5), ["exp"], ["expm1"]),
    ("log_sigmoid", lambda z: gx.log(gx.sigmoid(z)), rand(5) * 3, ["sigmoid", "log"],
     ["logsigmoid"]),
    ("log_one_minus_sigmoid", lambda z: gx.log(1 - gx.sigmoid(z)), rand(5) * 3,
     ["sigmoid", "log"], ["logsigmoid"]),
    ("log1p_neg_sigmoid", lambda z: gx.log1p(-gx.sigmoid(z)), rand(5) * 3,
     ["sigmoid", "log1p"], ["logsigmoid"]),
]
IDS = [f"{c[0]}-{k}" for k, c in enumerate(CASES)]


@pytest.mark.parametrize("rule, build, array, gone, present", CASES, ids=IDS)
def test_rule_fires_and_keeps_values(rule, build, array, gone, present):
    check_rule(rule, build, array, gone=gone, present=present)


@pytest.mark.parametrize("rule, build, array, gone, present", CASES, ids=IDS)
def test_optimized_gradients_agree(rule, build, array, gone, present):
    """Values and gradients of the optimized graph (level 2, the normal pipeline) are those
    of the unoptimized one."""
    z = gx.input("z", array.shape, "float64")
    y = build(z)
    r = rand(*y.shape)
    outputs = [y, gx.grad(gx.sum(y * r), z)]
    fn, report = gx.compile([z], outputs, optimize=2, explain=True)
    assert report.fired[rule] >= 1
    for got, expected in zip(fn(array), gx.compile([z], outputs, optimize=False)(array),
                             strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-14)


# rule, graph, extreme inputs, float64 reference (scipy / NumPy's own stable functions)
EXTREMES = [
    ("log_softmax", lambda z: gx.log(gx.softmax(z)), np.array([[1000.0, 0.0, -1000.0]]),
     lambda z: special.log_softmax(z, axis=-1)),
    ("logsumexp", lambda z: gx.log(gx.sum(gx.exp(z), axis=-1)), np.array([[1000.0, 999.0],
                                                                         [-1000.0, -1001.0]]),
     lambda z: special.logsumexp(z, axis=-1)),
    ("log1p", lambda z: gx.log(1 + z), np.array([1e-20, -1e-17, 3e-300]), np.log1p),
    ("log_one_minus", lambda z: gx.log(1 - z), np.array([1e-20, 2e-17]), lambda z: np.log1p(-z)),
    ("expm1", lambda z: gx.exp(z) - 1, np.array([1e-20, -3e-18, 1e-300]), np.expm1),
    ("log_sigmoid", lambda z: gx.log(gx.sigmoid(z)), np.array([-1000.0, -40.0, 800.0]),
     special.log_expit),
    ("log_one_minus_sigmoid", lambda z: gx.log(1 - gx.sigmoid(z)),
     np.array([1000.0, 40.0, -800.0]), lambda z: special.log_expit(-z)),
    ("log1p_neg_sigmoid", lambda z: gx.log1p(-gx.sigmoid(z)), np.array([1000.0, 40.0, -800.0]),
     lambda z: special.log_expit(-z)),
]


def _relative_error(got, expected):
    """|got − expected| / |expected| (against 1 where expected is 0), ∞ where got is not finite."""
    with np.errstate(all="ignore"):
        error = np.abs(got - expected) / np.where(expected == 0, 1, np.abs(expected))
    return np.where(np.isfinite(got), error, np.inf)


@pytest.mark.parametrize("rule, build, array, reference", EXTREMES,
                         ids=[e[0] for e in EXTREMES])
def test_stable_where_the_naive_formula_breaks(rule, build, array, reference):
    """The naive graph overflows, takes log(0), or cancels to 0 (relative error ≥ 1e-3 at
    some element); the optimized one is finite and matches the float64 reference."""
    z = gx.input("z", array.shape, "float64")
    y = build(z)
    naive = run_naive([z], y, array)
    expected = reference(array)
    assert np.max(_relative_error(naive, expected)) > 1e-3
    optimized = gx.compile([z], gx.optimize(y, level=2), optimize=False)(array)
    assert np.all(np.isfinite(optimized))
    np.testing.assert_allclose(optimized, expected, rtol=1e-15, atol=0)


# -- gradients taken of the naive forms --------------------------------------------------------

R = rand(2, 3)

GRADIENT_CASES = [
    ("cancel_reciprocal", lambda z: gx.grad(gx.sum(gx.log(gx.softmax(z)) * R), z)),
    ("cancel_reciprocal", lambda z: gx.grad(gx.sum(gx.log(gx.sigmoid(z)) * R), z)),
    ("cancel_reciprocal", lambda z: gx.grad(gx.sum(gx.log1p(-gx.sigmoid(z)) * R), z)),
    ("cancel_reciprocal", lambda z: gx.grad(gx.sum(gx.binary_cross_entropy(gx.sigmoid(z), 0.3)),
                                            z)),
    ("exp_over_sum_exp", lambda z: gx.grad(gx.sum(gx.log(gx.sum(gx.exp(z), axis=1)) * R[:, 0]),
                                           z)),
    ("exp_over_sum_exp", lambda z: gx.grad(gx.sum(gx.log(gx.sum(gx.exp(z), axis=0,
                                                                  keepdims=True))), z)),
    ("exp_over_sum_exp", lambda z: gx.grad(gx.log(gx.sum(gx.exp(z))), z)),
]


@pytest.mark.parametrize("rule, build", GRADIENT_CASES, ids=[c[0] for c in GRADIENT_CASES])
def test_gradient_rules_fire_and_keep_values(rule, build):
    check_rule(rule, build, rand(2, 3), gone=["reciprocal"])


# rule, graph, extreme inputs, the float64 reference of the gradient of sum(graph)
GRADIENT_EXTREMES = [
    ("log_softmax", lambda z: gx.log(gx.softmax(z)), np.array([[1000.0, 0.0, -1000.0]]),
     lambda z: 1 - 3 * special.softmax(z, axis=-1)),
    ("logsumexp", lambda z: gx.log(gx.sum(gx.exp(z), axis=-1)),
     np.array([[1000.0, 999.0, 0.0], [-1000.0, -1001.0, -2000.0]]),
     lambda z: special.softmax(z, axis=-1)),
    ("log_sigmoid", lambda z: gx.log(gx.sigmoid(z)), np.array([-1000.0, -40.0, 800.0]),
     lambda z: special.expit(-z)),
    ("log_one_minus_sigmoid", lambda z: gx.log(1 - gx.sigmoid(z)),
     np.array([1000.0, 40.0, -800.0]), lambda z: -special.expit(z)),
    ("log1p_neg_sigmoid", lambda z: gx.log1p(-gx.sigmoid(z)), np.array([1000.0, 40.0, -800.0]),
     lambda z: -special.expit(z)),
]


@pytest.mark.parametrize("rule, build, array, reference", GRADIENT_EXTREMES,
                         ids=[e[0] for e in GRADIENT_EXTREMES])
def test_gradients_are_stable_too(rule, build, array, reference):
    """A gradient taken before optimization differentiates the naive forward (ḡ/s times
    s' with s rounded to 0: nan); after optimization it is finite and right."""
    z = gx.input("z", array.shape, "float64")
    gradient = gx.grad(gx.sum(build(z)), z)
    naive = run_naive([z], gradient, array)
    assert not np.all(np.isfinite(naive))
    fn, report = gx.compile([z], gradient, optimize=2, explain=True)
    assert report.fired[rule] >= 1
    assert report.fired["cancel_reciprocal"] + report.fired["exp_over_sum_exp"] >= 1
    np.testing.assert_allclose(fn(array), reference(array), rtol=1e-15, atol=1e-15)


# -- losses on probabilities become losses from logits ------------------------------------------


def _value_and_gradient(loss, wrt):
    return [gx.sum(loss), gx.grad(gx.sum(loss), wrt)]


@pytest.mark.parametrize("dtype, scale, rtol", [("float64", 1000.0, 1e-13),
                                                ("float32", 100.0, 1e-6)])
def test_softmax_cross_entropy_on_probabilities_becomes_from_logits(dtype, scale, rtol):
    z_value = (np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5], [0.2, 0.1, -0.3]])
               * scale).astype(dtype)
    t_value = np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0], [0.3, 0.3, 0.4]], dtype)
    z, t = gx.input("z", (3, 3), dtype), gx.input("t", (3, 3), dtype)
    on_probabilities = -gx.sum(t * gx.log(gx.softmax(z)), axis=-1)
    from_logits = gx.cross_entropy(z, t)

    naive = run_naive([z, t], _value_and_gradient(on_probabilities, z), z_value, t_value)
    assert not all(np.all(np.isfinite(v)) for v in naive)

    optimized = gx.optimize(_value_and_gradient(on_probabilities, z), level=2)
    names = ops_in(Graph.build([z, t], optimized))
    assert "log" not in names and "reciprocal" not in names and "log_softmax" in names
    got = gx.compile([z, t], optimized, optimize=False)(z_value, t_value)
    expected = gx.compile([z, t], _value_and_gradient(from_logits, z),
                          optimize=False)(z_value, t_value)
    for g, e in zip(got, expected, strict=True):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)
    # and the float64 reference: −Σ t · log_softmax(z)
    reference = -np.sum(t_value * special.log_softmax(z_value.astype(float), axis=-1))
    np.testing.assert_allclose(got[0], reference, rtol=rtol)


@pytest.mark.parametrize("dtype, scale, rtol", [("float64", 1000.0, 1e-13),
                                                ("float32", 100.0, 1e-6)])
def test_log_softmax_at_label_indices_becomes_from_logits(dtype, scale, rtol):
    z_value = (np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5]]) * scale).astype(dtype)
    labels = np.array([1, 0])
    z, y = gx.input("z", (2, 3), dtype), gx.input("y", (2,), "int64")
    picked = gx.take_along_axis(gx.log(gx.softmax(z)), gx.expand_dims(y, -1), -1)
    nll = -gx.squeeze(picked, -1)

    naive = run_naive([z, y], nll, z_value, labels)
    assert not np.all(np.isfinite(naive))
    got = gx.compile([z, y], gx.optimize(nll, level=2), optimize=False)(z_value, labels)
    expected = gx.compile([z, y], gx.cross_entropy(z, y), optimize=False)(z_value, labels)
    np.testing.assert_allclose(got, expected, rtol=rtol)
    np.testing.assert_allclose(got, [2 * scale, 2 * scale], rtol=rtol)


def _bce_case(dtype, logits):
    z_value = np.array(logits, dtype)
    t_value = np.resize(np.array([0.0, 1.0, 0.3], dtype), z_value.shape)
    z, t = gx.input("z", z_value.shape, dtype), gx.input("t", t_value.shape, dtype)
    return z, t, z_value, t_value, gx.binary_cross_entropy(gx.sigmoid(z), t)


@pytest.mark.parametrize("dtype, logits, rtol", [
    ("float64", [-90.0, -40.0, -1.0, 3.0, 40.0, 90.0], 1e-13),
    ("float32", [-100.0, -30.0, 0.5, 30.0, 100.0], 1e-6),
])
def test_binary_cross_entropy_on_sigmoid_becomes_from_logits(dtype, logits, rtol):
    """Up to the −100 clamp each log of ``binary_cross_entropy`` keeps (as torch's), the
    optimized loss and its gradient are those of ``binary_cross_entropy_with_logits``;
    the naive graph rounds σ(z) to 1 (loss 100 for z = 40, not 40) and its gradient is
    0·∞ = nan there."""
    z, t, z_value, t_value, loss = _bce_case(dtype, logits)
    outputs = [loss, gx.grad(gx.sum(loss), z)]
    naive = run_naive([z, t], outputs, z_value, t_value)
    assert not np.all(np.isfinite(naive[1]))

    optimized = gx.optimize(outputs, level=2)
    names = ops_in(Graph.build([z, t], optimized))
    assert "log" not in names and "reciprocal" not in names and "logsigmoid" in names
    got = gx.compile([z, t], optimized, optimize=False)(z_value, t_value)
    with_logits = gx.binary_cross_entropy_with_logits(z, t)
    expected = gx.compile([z, t], [with_logits, gx.grad(gx.sum(with_logits), z)],
                          optimize=False)(z_value, t_value)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)
    assert np.max(np.abs(naive[0] - expected[0])) > 1  # the naive value is wrong, too


def test_binary_cross_entropy_on_sigmoid_is_finite_for_huge_logits():
    """At |z| = 1000 every −log term above 100 is clamped to 100 in both graphs; the
    optimized gradient is finite (0 on clamped terms) where the naive one is nan."""
    z, t, z_value, t_value, loss = _bce_case("float64", [-1000.0, 1000.0, 1000.0,
                                                         -1000.0, 5.0, -5.0])
    outputs = [loss, gx.grad(gx.sum(loss), z)]
    naive = run_naive([z, t], outputs, z_value, t_value)
    got = gx.compile([z, t], gx.optimize(outputs, level=2), optimize=False)(z_value, t_value)
    assert np.isnan(naive[1]).any() and np.all(np.isfinite(got[1]))
    log_p = np.maximum(special.log_expit(z_value), -100)
    log_not_p = np.maximum(special.log_expit(-z_value), -100)
    np.testing.assert_allclose(got[0], -(t_value * log_p + (1 - t_value) * log_not_p),
                               rtol=1e-15)
