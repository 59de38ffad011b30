"""Weight decay and L1 skip biases and norm gains unless asked; max-norm projection; the
gradient clipping functions."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc import nn, optim
from graphc.optim import regularize
from tests.helpers import evaluate

_rng = np.random.default_rng(11)
X, Y = _rng.standard_normal((6, 3)), _rng.standard_normal((6, 2))


def model() -> nn.Sequential:
    """Weights (ndim 2), biases and a layer norm's gain and shift (ndim 1)."""
    return nn.Sequential([nn.Dense(4, "tanh"), nn.LayerNorm(), nn.Dense(2)], seed=3,
                         input_shape=(3,), dtype="float64")


def one_step(opt: optim.Optimizer) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A fresh model's params before and after one step of ``opt``, by name."""
    net = model()
    x, y = gx.input("x", X.shape, "float64"), gx.input("y", Y.shape, "float64")
    loss = gx.mean(gx.square(net(x) - y))
    before = {name: p.value.copy() for name, p in net.named_params().items()}
    gx.compile([x, y], loss, updates=opt.minimize(loss, net.params()))(X, Y)
    return before, {name: p.value for name, p in net.named_params().items()}


# -- weight decay and L1: weights only, unless decay_bias ----------------------------------------

LR, LAMBDA = 0.1, 0.3
#: id, options, the extra step −lr·penalty'(θ) a decayed param takes
PENALTIES = [
    ("weight_decay", dict(weight_decay=LAMBDA), lambda theta: -LR * LAMBDA * theta),
    ("l1", dict(l1=LAMBDA), lambda theta: -LR * LAMBDA * np.sign(theta)),
]


@pytest.mark.parametrize("decay_bias", [False, True])
@pytest.mark.parametrize("options, extra", [pytest.param(o, e, id=n) for n, o, e in PENALTIES])
def test_penalties_skip_biases_and_norm_gains_by_default(options, extra, decay_bias):
    before, plain = one_step(optim.SGD(LR))
    _, penalized = one_step(optim.SGD(LR, decay_bias=decay_bias, **options))
    assert {n for n, v in before.items() if v.ndim == 1} == {
        "dense/b", "layer_norm/gamma", "layer_norm/beta", "dense_1/b"}
    for name, theta in before.items():
        if theta.ndim >= 2 or decay_bias:
            np.testing.assert_allclose(penalized[name] - plain[name], extra(theta),
                                       rtol=1e-9, atol=1e-15, err_msg=name)
        else:
            np.testing.assert_array_equal(penalized[name], plain[name], err_msg=name)


@pytest.mark.parametrize("decay_bias", [False, True])
def test_adamw_decays_weights_beside_the_adam_step(decay_bias):
    before, adam = one_step(optim.Adam(LR))
    _, adamw = one_step(optim.AdamW(LR, weight_decay=LAMBDA, decay_bias=decay_bias))
    for name, theta in before.items():
        if theta.ndim >= 2 or decay_bias:
            np.testing.assert_allclose(adamw[name] - adam[name], -LR * LAMBDA * theta,
                                       rtol=1e-9, atol=1e-15, err_msg=name)
        else:
            np.testing.assert_array_equal(adamw[name], adam[name], err_msg=name)


def test_adam_weight_decay_is_coupled_through_the_moments():
    """Adam's weight_decay enters the gradient, so the adaptive scaling divides it:
    unlike AdamW's, its effect on θ is not −η·λ·θ."""
    before, adam = one_step(optim.Adam(LR))
    _, coupled = one_step(optim.Adam(LR, weight_decay=LAMBDA))
    theta = before["dense/W"]
    assert not np.allclose(coupled["dense/W"] - adam["dense/W"], -LR * LAMBDA * theta,
                           rtol=1e-3)


# -- max-norm projection -------------------------------------------------------------------------

def _columns(norms: list[float], rows: int = 4) -> np.ndarray:
    """A dense (in, out) weight whose output units' incoming weights have these norms."""
    directions = _rng.standard_normal((rows, len(norms)))
    return directions / np.linalg.norm(directions, axis=0) * np.array(norms)


def _project(weight: np.ndarray, limit: float, **options) -> np.ndarray:
    """One SGD step of lr 0 (θ unchanged) with max_norm: the projection alone."""
    W = gx.param("W", weight)
    loss = gx.sum(W)
    opt = optim.SGD(0.0, max_norm=limit, **options)
    gx.compile([], loss, updates=opt.minimize(loss, [W]))()
    return W.value


def test_max_norm_projects_each_output_unit_onto_the_ball():
    weight = _columns([0.5, 1.0, 2.0, 5.0])
    got = _project(weight, 1.0)
    norms = np.linalg.norm(got, axis=0)
    np.testing.assert_allclose(norms, [0.5, 1.0, 1.0, 1.0], rtol=1e-14)
    np.testing.assert_array_equal(got[:, :2], weight[:, :2])  # inside: untouched, bit for bit
    # outside: the same direction, shortened to the limit 1
    np.testing.assert_allclose(got[:, 2:], weight[:, 2:] / np.linalg.norm(weight[:, 2:], axis=0),
                               rtol=1e-14)


def test_max_norm_of_a_conv_weight_runs_over_its_fan_in_axes():
    weight = _rng.standard_normal((3, 2, 2, 2)) * np.array([0.1, 1.0, 3.0])[:, None, None, None]
    got = _project(weight, 1.5)
    norms = np.sqrt((got**2).sum(axis=(1, 2, 3)))
    before = np.sqrt((weight**2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(norms, np.minimum(before, 1.5), rtol=1e-14)
    np.testing.assert_array_equal(got[0], weight[0])


def test_max_norm_leaves_vectors_alone():
    bias = np.array([3.0, 4.0])
    np.testing.assert_array_equal(_project(bias, 1.0), bias)


def test_max_norm_holds_after_every_training_step():
    net = model()
    x, y = gx.input("x", X.shape, "float64"), gx.input("y", Y.shape, "float64")
    loss = gx.mean(gx.square(net(x) - y))
    step = gx.compile([x, y], loss,
                      updates=optim.SGD(2.0, momentum=0.9, max_norm=0.7).minimize(
                          loss, net.params()))
    for _ in range(5):
        step(X, Y)
        for layer in (net.layers[0], net.layers[2]):
            assert np.linalg.norm(layer.W.value, axis=0).max() <= 0.7 * (1 + 1e-12)


def test_project_max_norm_refuses_vectors():
    with pytest.raises(ValueError, match=r"ndim >= 2, got shape \(3,\)"):
        regularize.project_max_norm(gx.input("b", (3,), "float64"), 1.0)


# -- the clipping functions ----------------------------------------------------------------------

def test_global_norm_runs_over_every_entry_in_float64():
    a = np.array([[3.0, 0.0]], np.float32)
    b = np.array([4.0, 12.0])
    norm = evaluate(lambda u, v: regularize.global_norm([u, v]), a, b)
    assert norm.dtype == np.float64 and norm == 13.0


@pytest.mark.parametrize("limit, scale", [(6.5, 0.5), (13.0, 1.0), (100.0, 1.0)])
def test_clip_by_global_norm_scales_only_above_the_limit(limit, scale):
    a, b = np.array([3.0, 0.0], np.float32), np.array([[4.0, 12.0]])
    got = evaluate(lambda u, v: list(regularize.clip_by_global_norm({"a": u, "b": v},
                                                                    limit).values()), a, b)
    assert got[0].dtype == np.float32 and got[1].dtype == np.float64
    np.testing.assert_array_equal(got[0], a * np.float32(scale))
    np.testing.assert_array_equal(got[1], b * scale)


def test_clip_by_value():
    g = np.array([-2.0, -0.5, 0.0, 0.7, 3.0])
    got = evaluate(lambda t: regularize.clip_by_value(t, 1.0), g)
    np.testing.assert_array_equal(got, [-1.0, -0.5, 0.0, 0.7, 1.0])
