"""Initializers: bounds and variances against their papers' formulas, fans of dense and
conv layouts, orthogonality, and reproducible seeding of a layer's params by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gx
from graphc import nn
from graphc.nn import init

DENSE, CONV = (256, 128), (64, 32, 3, 3)


def draw(initializer, shape, seed=0, dtype="float64"):
    return initializer(shape, np.random.default_rng(seed), dtype)


# -- fans ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, expected", [
    ((), (1, 1)),
    ((7,), (7, 7)),
    ((4, 3), (4, 3)),                    # dense (in, out)
    ((16, 8, 3, 3), (8 * 9, 16 * 9)),    # conv (out, in, kh, kw): receptive field 9
    ((6, 2, 5, 1), (2 * 5, 6 * 5)),
])
def test_fans(shape, expected):
    assert init.fans(shape) == expected


@pytest.mark.parametrize("ndim, axes", [(0, ()), (1, (0,)), (2, (0,)), (4, (1, 2, 3))])
def test_fan_in_axes(ndim, axes):
    assert init.fan_in_axes(ndim) == axes


# -- variance-scaling initializers --------------------------------------------------------------


def variance(name: str, fan_in: int, fan_out: int) -> float:
    """The variance each initializer is designed to give (Glorot & Bengio 2010, He 2015)."""
    return {"xavier_uniform": 2 / (fan_in + fan_out), "xavier_normal": 2 / (fan_in + fan_out),
            "he_uniform": 2 / fan_in, "he_normal": 2 / fan_in}[name]


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
@pytest.mark.parametrize("name", ["xavier_uniform", "xavier_normal", "he_uniform", "he_normal"])
def test_empirical_mean_and_variance(name, shape):
    w = draw(init.get(name), shape)
    expected = variance(name, *init.fans(shape))
    assert w.shape == shape
    # ≥ 18k samples: the sample variance is within ~1.5% of the truth, the mean within 3σ/√n
    np.testing.assert_allclose(w.var(), expected, rtol=0.05)
    assert abs(w.mean()) < 4 * math.sqrt(expected / w.size)


@pytest.mark.parametrize("shape", [DENSE, CONV, (3, 2)], ids=["dense", "conv", "tiny"])
def test_xavier_uniform_bound(shape):
    fan_in, fan_out = init.fans(shape)
    bound = math.sqrt(6 / (fan_in + fan_out))
    w = draw(init.xavier_uniform(), shape)
    assert np.abs(w).max() <= bound
    if w.size > 1000:  # the extremes of many draws come close to the bound
        assert np.abs(w).max() > 0.99 * bound


def test_gain_scales_the_xavier_bound():
    a = draw(init.xavier_uniform(), DENSE)
    np.testing.assert_allclose(draw(init.xavier_uniform(gain=2.0), DENSE), 2 * a)


def test_he_uniform_bound():
    w = draw(init.he_uniform(), CONV)
    bound = math.sqrt(6 / init.fans(CONV)[0])
    assert bound * 0.99 < np.abs(w).max() <= bound


# the defaults: U[−0.05, 0.05] (std = width/√12) and N(0, 0.05²)
@pytest.mark.parametrize("name, mean, std", [("uniform", 0.0, 0.1 / math.sqrt(12)),
                                             ("normal", 0.0, 0.05)])
def test_plain_random_initializers(name, mean, std):
    w = draw(init.get(name), DENSE)
    np.testing.assert_allclose(w.std(), std, rtol=0.03)
    assert abs(w.mean() - mean) < 4 * std / math.sqrt(w.size)


# -- orthogonal ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 4), (4, 8), (6, 6), (16, 4, 3, 3), (4, 8, 2, 2)],
                         ids=["tall", "wide", "square", "conv-wide", "conv-tall"])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal_has_orthonormal_rows_or_columns(shape, gain):
    w = draw(init.orthogonal(gain), shape)
    assert w.shape == shape
    m = w.reshape(shape[0], -1) / gain
    rows, cols = m.shape
    # the shorter side is orthonormal: QᵀQ = I for tall matrices, QQᵀ = I for wide ones
    gram = m.T @ m if rows >= cols else m @ m.T
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_refuses_vectors():
    with pytest.raises(ValueError, match=r"orthogonal: needs a weight of 2 or more dims, got "
                                         r"shape \(5,\)"):
        draw(init.orthogonal(), (5,))


# -- constants and names ------------------------------------------------------------------------


@pytest.mark.parametrize("initializer, value", [(init.zeros(), 0.0), (init.ones(), 1.0),
                                                (init.constant(-0.25), -0.25),
                                                (init.get("zeros"), 0.0),
                                                (init.get("ones"), 1.0)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_constant_initializers(initializer, value, dtype):
    w = draw(initializer, (3, 2), dtype=dtype)
    assert w.dtype == dtype
    np.testing.assert_array_equal(w, np.full((3, 2), value))


@pytest.mark.parametrize("alias, original", [("glorot_uniform", init.xavier_uniform),
                                             ("glorot_normal", init.xavier_normal),
                                             ("kaiming_uniform", init.he_uniform),
                                             ("kaiming_normal", init.he_normal)])
def test_aliases_draw_what_the_original_draws(alias, original):
    np.testing.assert_array_equal(draw(init.get(alias), (5, 4)), draw(original(), (5, 4)))


def test_get_passes_a_callable_through():
    def mine(shape, rng, dtype):
        return np.full(shape, 7, dtype)
    assert init.get(mine) is mine


@pytest.mark.parametrize("bad, error, message", [
    ("glorot", ValueError, r"unknown initializer 'glorot'; known: zeros, ones, uniform"),
    (3, TypeError, "an initializer is a name or a callable, got 3"),
])
def test_get_refuses_unknown_initializers(bad, error, message):
    with pytest.raises(error, match=message):
        init.get(bad)


def test_a_layer_with_an_unknown_initializer_fails_when_built():
    with pytest.raises(ValueError, match="unknown initializer 'nope'"):
        nn.Dense(3, kernel_init="nope")(gx.input("x", ("batch", 2)))


@pytest.mark.parametrize("make, message", [
    (lambda: init.uniform(1.0, 1.0), "uniform: need low < high, got 1.0, 1.0"),
    (lambda: init.normal(std=-1.0), "normal: std must be >= 0, got -1.0"),
])
def test_bad_initializer_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- seeding: a param's values depend on (seed, its name) only ---------------------------------


def built_weight(name: str, seed: int, kernel_init: str = "he_normal") -> np.ndarray:
    model = nn.Sequential([nn.Dense(6, kernel_init=kernel_init, name=name)], seed=seed)
    model(gx.input("x", ("batch", 5)))
    return model.layers[0].W.value


def test_same_seed_and_name_give_the_same_values():
    np.testing.assert_array_equal(built_weight("a", 0), built_weight("a", 0))


@pytest.mark.parametrize("other", [("b", 0), ("a", 1)], ids=["other name", "other seed"])
def test_another_name_or_seed_gives_other_values(other):
    first, second = built_weight("a", 0), built_weight(*other)
    assert first.shape == second.shape == (5, 6)
    assert not np.any(first == second)


def test_initializers_draw_from_the_generator_they_are_given():
    for name in ("xavier_uniform", "he_normal", "orthogonal", "uniform", "normal"):
        np.testing.assert_array_equal(draw(init.get(name), (4, 3), seed=3),
                                      draw(init.get(name), (4, 3), seed=3))
        assert not np.array_equal(draw(init.get(name), (4, 3), seed=3),
                                  draw(init.get(name), (4, 3), seed=4))
