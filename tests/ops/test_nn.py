"""softmax, maxout, batch/layer norm and dropout: values against NumPy and
torch.nn.functional, type errors, and a gradient table by finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from tests.helpers import against_torch, assert_gradients, distinct, evaluate, functional, rand

# -- softmax -----------------------------------------------------------------------------------


def test_softmax_seed_fact():
    out = gx.softmax(gx.constant([0.5, 0.5, 0.1, 0.7])).eval()
    np.testing.assert_allclose(out, [0.257, 0.257, 0.172, 0.314], atol=5e-4)
    assert out.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2)])
def test_softmax_and_log_softmax_match_numpy(axis):
    x = rand(2, 3, 4)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    expected = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(evaluate(lambda t: gx.softmax(t, axis), x), expected, rtol=1e-12)
    np.testing.assert_allclose(evaluate(lambda t: gx.log_softmax(t, axis), x), np.log(expected),
                               rtol=1e-12)


def test_softmax_is_stable_for_large_logits():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1e4]], np.float32)
    p = evaluate(gx.softmax, x)
    lp = evaluate(gx.log_softmax, x)
    assert p.dtype == lp.dtype == np.float32
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(lp))
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0.0], atol=1e-7)
    np.testing.assert_allclose(lp[0], [-1.40760596, -0.40760596, -2.40760596], rtol=1e-6)


def test_softmax_of_integers_is_float64():
    assert gx.softmax(gx.input("i", (3,), "int32")).dtype == "float64"


@pytest.mark.parametrize("axis", [0, -1])
def test_softmax_against_torch(axis):
    torch = pytest.importorskip("torch")
    x = rand(3, 5)
    against_torch(lambda t: gx.softmax(t, axis), lambda t: torch.softmax(t, axis), x)
    against_torch(lambda t: gx.log_softmax(t, axis), lambda t: torch.log_softmax(t, axis), x)


def test_softmax_bad_axis():
    with pytest.raises(gx.GraphcTypeError, match="softmax: axis 2 is out of range"):
        gx.softmax(gx.input("x", (2, 3)), axis=2)


# -- maxout ------------------------------------------------------------------------------------


def test_maxout_groups_adjacent_pieces():
    x = np.array([[1.0, 5.0, 2.0, 3.0, 0.0, -1.0]])
    np.testing.assert_array_equal(evaluate(lambda t: gx.maxout(t, 2), x), [[5.0, 3.0, 0.0]])
    np.testing.assert_array_equal(evaluate(lambda t: gx.maxout(t, 3), x), [[5.0, 3.0]])
    np.testing.assert_array_equal(evaluate(lambda t: gx.maxout(t, 2, axis=0), x.T),
                                  [[5.0], [3.0], [0.0]])


def test_maxout_over_an_explicit_pieces_axis():
    x = rand(4, 3, 5)  # (batch, pieces, units)
    np.testing.assert_array_equal(evaluate(lambda t: gx.maxout(t, axis=1), x), x.max(axis=1))


def test_maxout_gradient_goes_to_first_maximum_on_ties():
    x = gx.input("x", (1, 4), "float64")
    g = gx.grad(gx.sum(gx.maxout(x, 2)), x)
    np.testing.assert_array_equal(gx.compile([x], g)(np.array([[2.0, 2.0, 1.0, 3.0]])),
                                  [[1.0, 0.0, 0.0, 1.0]])


def test_maxout_errors():
    with pytest.raises(gx.GraphcTypeError, match=r"\(2, 5\) is not a multiple of pieces=2"):
        gx.maxout(gx.input("x", (2, 5)), 2)


# -- batch norm --------------------------------------------------------------------------------


def _torch_batch_norm(x, gamma, beta):
    return functional().batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 5), (3, 2, 4)])
def test_batch_norm_training_against_torch(shape):
    against_torch(gx.batch_norm, _torch_batch_norm, rand(*shape), rand(shape[1]), rand(shape[1]))


def test_batch_norm_normalizes_each_channel():
    x = rand(16, 3, 4, 4) * np.array([1.0, 10.0, 0.1])[:, None, None] + 5.0
    y = evaluate(gx.batch_norm, x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    var = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), var / (var + 1e-5), rtol=1e-12)


def test_batch_norm_running_stats_and_inference_against_torch():
    torch = pytest.importorskip("torch")
    F = functional()
    x, gamma, beta = rand(6, 3, 2, 2), rand(3), rand(3)
    running_mean, running_var = rand(3), 1.0 + np.abs(rand(3))
    out = evaluate(lambda *t: gx.batch_norm(*t, momentum=0.3), x, gamma, beta, running_mean,
                   running_var)
    trm, trv = torch.tensor(running_mean), torch.tensor(running_var)
    ty = F.batch_norm(torch.tensor(x), trm, trv, torch.tensor(gamma), torch.tensor(beta),
                      training=True, momentum=0.3)
    for mine, theirs in zip(out, (ty, trm, trv), strict=True):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-10)
    inference = evaluate(lambda *t: gx.batch_norm(*t, training=False), x, gamma, beta,
                         running_mean, running_var)
    expected = F.batch_norm(torch.tensor(x), torch.tensor(running_mean),
                            torch.tensor(running_var), torch.tensor(gamma), torch.tensor(beta),
                            training=False)
    np.testing.assert_allclose(inference, expected.numpy(), rtol=1e-10)


def test_batch_norm_running_stats_as_param_updates():
    x = gx.input("x", ("batch", 2), "float64")
    mean = gx.param("mean", np.zeros(2))
    var = gx.param("var", np.ones(2))
    y, new_mean, new_var = gx.batch_norm(x, running_mean=mean, running_var=var)
    step = gx.compile([x], gx.sum(y), updates={mean: new_mean, var: new_var})
    data = rand(5, 2) * 2.0 + 3.0
    step(data)
    np.testing.assert_allclose(mean.value, 0.1 * data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var.value, 0.9 + 0.1 * data.var(axis=0, ddof=1), rtol=1e-12)


def test_batch_norm_stats():
    x = rand(4, 3, 5)
    mean, var = evaluate(gx.batch_norm_stats, x)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=(0, 2)), rtol=1e-12)


def test_batch_norm_symbolic_batch():
    x = gx.input("x", ("batch", 3, 2, 2), "float64")
    a = rand(5, 3, 2, 2)
    mean = a.mean(axis=(0, 2, 3), keepdims=True)
    expected = (a - mean) / np.sqrt(a.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(gx.compile([x], gx.batch_norm(x))(a), expected, rtol=1e-10)


@pytest.mark.parametrize("kwargs,needle", [
    ({"gamma": np.ones(4)}, "gamma of shape (4,) does not match (3,)"),
    ({"training": False}, "needs running_mean and running_var"),
    ({"running_mean": np.zeros(3)}, "give both running_mean and running_var"),
])
def test_batch_norm_errors(kwargs, needle):
    with pytest.raises(gx.GraphcTypeError, match="batch_norm") as info:
        gx.batch_norm(gx.input("x", (2, 3, 4)), **kwargs)
    assert needle in str(info.value)


def test_batch_norm_needs_two_values_per_channel_to_train():
    with pytest.raises(gx.GraphcTypeError, match="more than one value per channel"):
        gx.batch_norm(gx.input("x", (1, 3)))


# -- layer norm --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,normalized", [((4, 5), (5,)), ((2, 3, 4), (3, 4))])
def test_layer_norm_against_torch(shape, normalized):
    F = functional()
    against_torch(lambda x, w, b: gx.layer_norm(x, normalized, w, b),
                  lambda x, w, b: F.layer_norm(x, normalized, w, b),
                  rand(*shape), rand(*normalized), rand(*normalized))


def test_layer_norm_without_affine():
    x = rand(3, 6) * 4.0 - 2.0
    y = evaluate(lambda t: gx.layer_norm(t, 6), x)
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_layer_norm_errors():
    with pytest.raises(gx.GraphcTypeError, match=r"\(3,\) is not the trailing dims"):
        gx.layer_norm(gx.input("x", (3, 4)), 3)
    with pytest.raises(gx.GraphcTypeError, match=r"weight of shape \(3,\) does not match"):
        gx.layer_norm(gx.input("x", (3, 4)), 4, np.ones(3))


# -- gradients: one table, checked by finite differences ------------------------------------------

GRADIENTS = [
    # (id, function, input generators, order)
    ("softmax", gx.softmax, [lambda: rand(2, 4)], 2),
    ("softmax-axis0", lambda x: gx.softmax(x, 0), [lambda: rand(3, 2)], 2),
    ("softmax-axes", lambda x: gx.softmax(x, (0, 2)), [lambda: rand(2, 2, 3)], 2),
    ("log_softmax", gx.log_softmax, [lambda: rand(2, 4)], 2),
    ("maxout", lambda x: gx.maxout(x, 3), [lambda: distinct(2, 6)], 1),
    ("maxout-axis", lambda x: gx.maxout(x, axis=0), [lambda: distinct(3, 4)], 1),
    ("batch_norm", lambda x, g, b: gx.batch_norm(x, g, b),
     [lambda: rand(4, 2, 2), lambda: rand(2), lambda: rand(2)], 2),
    ("batch_norm-inference",
     lambda x, g, b, m, v: gx.batch_norm(x, g, b, m, v, training=False),
     [lambda: rand(3, 2), lambda: rand(2), lambda: rand(2), lambda: rand(2),
      lambda: 1.0 + np.abs(rand(2))], 2),
    ("layer_norm", lambda x, w, b: gx.layer_norm(x, 4, w, b),
     [lambda: rand(3, 4), lambda: rand(4), lambda: rand(4)], 2),
]


@pytest.mark.parametrize("f,makers,order", [pytest.param(f, m, o, id=name)
                                            for name, f, m, o in GRADIENTS])
def test_gradients(f, makers, order):
    assert_gradients(f, *(make() for make in makers), order=order)


# -- dropout -----------------------------------------------------------------------------------


def test_dropout_preserves_the_mean():
    x = gx.input("x", (200, 100), "float64")
    out = gx.compile([x], gx.dropout(x, 0.3, key=7))(np.ones((200, 100)))
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 20000 draws: sd of the rate ≈ 0.003
    np.testing.assert_allclose(out[kept], 1 / 0.7)
    assert abs(out.mean() - 1.0) < 0.015


def test_dropout_gradient_uses_the_forward_mask():
    x = gx.input("x", (50, 20), "float64")
    y = gx.dropout(x, 0.4, key=3)
    data = rand(50, 20) + 5.0  # no zeros, so y / x recovers the mask
    value, grad = gx.compile([x], [y, gx.grad(gx.sum(y), x)])(data)
    mask = value / data
    assert set(np.unique(np.round(mask, 12))) == {0.0, round(1 / 0.6, 12)}
    np.testing.assert_allclose(grad, mask, rtol=1e-12)


def test_dropout_draws_a_new_mask_each_call():
    x = gx.input("x", (1000,), "float64")
    f = gx.compile([x], gx.dropout(x, 0.5, key=11))
    assert not np.array_equal(f(np.ones(1000)), f(np.ones(1000)))


def test_dropout_is_identity_at_inference_and_for_p_zero():
    x = gx.input("x", (3,))
    assert gx.dropout(x, 0.5, training=False) is x
    assert gx.dropout(x, 0.0) is x
    np.testing.assert_array_equal(evaluate(lambda t: gx.dropout(t, 1.0), np.ones(3)), 0.0)


def test_dropout_keys_decide_node_identity():
    x = gx.input("x", (4,))
    assert gx.dropout(x, 0.5, key=1) is gx.dropout(x, 0.5, key=1)
    assert gx.dropout(x, 0.5, key=1) is not gx.dropout(x, 0.5, key=2)
    assert gx.dropout(x, 0.5) is not gx.dropout(x, 0.5)  # fresh keys
    many = gx.input("many", (1000,))
    same = gx.compile([many], [gx.dropout(many, 0.5, key=1), gx.dropout(many, 0.5, key=1)])
    a, b = same(np.ones(1000, np.float32))
    np.testing.assert_array_equal(a, b)
    other = gx.compile([many], [gx.dropout(many, 0.5, key=1), gx.dropout(many, 0.5, key=2)])
    c, d = other(np.ones(1000, np.float32))
    assert not np.array_equal(c, d)


def test_dropout_rejects_bad_probability():
    with pytest.raises(ValueError, match="p=1.5"):
        gx.dropout(gx.input("x", (3,)), 1.5)


def test_dropconnect_masks_weights_with_inverted_scaling():
    w = gx.input("w", (30, 40), "float64")
    out = gx.compile([w], gx.dropconnect(w, 0.25, key=5))(np.full((30, 40), 2.0))
    assert set(np.unique(out)) == {0.0, 2.0 / 0.75}
    assert abs((out == 0).mean() - 0.25) < 0.04
    assert gx.dropconnect(w, 0.25, training=False) is w
