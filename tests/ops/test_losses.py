"""Losses and regularizers: values against NumPy and torch, gradients by finite differences."""

import numpy as np
import pytest

import graphc as gx
from tests.helpers import assert_gradients, evaluate, requires_torch, torch

rng = np.random.default_rng(0)
PRED = rng.standard_normal((4, 3))
TARGET = rng.standard_normal((4, 3))
SCORES = rng.standard_normal(6) * 2
SIGNS = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
LOGITS = rng.standard_normal((5, 4)) * 3
LABELS = np.array([0, 3, 1, 2, 3])
PROBS = rng.uniform(0.05, 0.95, (4, 3))
TARGETS01 = rng.integers(0, 2, (4, 3)).astype(np.float64)


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# name, graphc loss, numpy formula, arrays
VALUE_TABLE = [
    ("mse", lambda p, t: gx.mse(p, t), lambda p, t: (p - t) ** 2, (PRED, TARGET)),
    ("mae", lambda p, t: gx.mae(p, t), lambda p, t: np.abs(p - t), (PRED, TARGET)),
    ("epsilon_insensitive", lambda p, t: gx.epsilon_insensitive(p, t, 0.3),
     lambda p, t: np.maximum(np.abs(p - t) - 0.3, 0), (PRED, TARGET)),
    ("logistic", gx.logistic_loss, lambda s, y: np.log1p(np.exp(-y * s)), (SCORES, SIGNS)),
    ("hinge", gx.hinge, lambda s, y: np.maximum(1 - y * s, 0), (SCORES, SIGNS)),
    ("cross_entropy", gx.cross_entropy,
     lambda z, y: -log_softmax(z)[np.arange(len(y)), y], (LOGITS, LABELS)),
    ("cross_entropy_soft", gx.cross_entropy,
     lambda z, q: -(q * log_softmax(z)).sum(-1), (LOGITS, np.exp(log_softmax(LOGITS[::-1])))),
    ("bce", gx.binary_cross_entropy,
     lambda p, t: -(t * np.log(p) + (1 - t) * np.log(1 - p)), (PROBS, TARGETS01)),
    ("bce_logits", gx.binary_cross_entropy_with_logits,
     lambda z, t: -(t * np.log(1 / (1 + np.exp(-z))) + (1 - t) * np.log(1 - 1 / (1 + np.exp(-z)))),
     (PRED, TARGETS01)),
    ("l1", gx.l1, lambda w: np.abs(w).sum(), (PRED,)),
    ("l2", gx.l2, lambda w: (w ** 2).sum(), (PRED,)),
    ("entropy", gx.entropy, lambda p: -(p * np.log(p)).sum(-1),
     (PROBS / PROBS.sum(-1, keepdims=True),)),
]
IDS = [row[0] for row in VALUE_TABLE]


@pytest.mark.parametrize("name, loss, reference, arrays", VALUE_TABLE, ids=IDS)
def test_loss_values(name, loss, reference, arrays):
    np.testing.assert_allclose(evaluate(loss, *arrays), reference(*arrays), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, loss, reference, arrays", VALUE_TABLE, ids=IDS)
def test_loss_gradients(name, loss, reference, arrays):
    # kinks (mae, hinge, l1, epsilon) are avoided by the random points; order 2 only where smooth
    kinked = name in {"mae", "epsilon_insensitive", "hinge", "l1"}
    assert_gradients(loss, *arrays, order=1 if kinked else 2,
                     argnums=[0] if name.startswith(("cross_entropy", "bce", "logistic", "hinge"))
                     else None)


@pytest.mark.parametrize("reduction, combine", [("mean", np.mean), ("sum", np.sum)])
def test_reductions(reduction, combine):
    got = evaluate(lambda p, t: gx.mse(p, t, reduction=reduction), PRED, TARGET)
    np.testing.assert_allclose(got, combine((PRED - TARGET) ** 2))


def test_unknown_reduction_is_refused():
    p = gx.input("p", (3,))
    with pytest.raises(ValueError, match="reduction"):
        gx.mse(p, p, reduction="avg")


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 0.0]])
    got = evaluate(gx.cross_entropy, z, np.array([1]))
    np.testing.assert_allclose(got, [2000.0])


def test_bce_with_logits_is_stable_for_huge_logits():
    got = evaluate(gx.binary_cross_entropy_with_logits, np.array([800.0, -800.0]),
                   np.array([0.0, 1.0]))
    np.testing.assert_allclose(got, [800.0, 800.0])


def test_bce_clamps_log_at_minus_100_like_torch():
    got = evaluate(gx.binary_cross_entropy, np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    np.testing.assert_allclose(got, [100.0, 100.0])


def test_entropy_gradient_is_finite_at_zero_probability():
    p = np.array([0.0, 0.25, 0.75])
    x = gx.input("p", (3,), "float64")
    g = gx.grad(gx.entropy(x), x).eval({x: p})
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[1:], -(np.log(p[1:]) + 1))


def test_regularizers_take_several_params():
    a, b = gx.param("a", np.array([1.0, -2.0])), gx.param("b", np.array([[3.0]]))
    assert float(gx.l1([a, b]).eval()) == 6.0
    assert float(gx.l2([a, b]).eval()) == 14.0


def test_cross_entropy_int_labels_get_no_gradient():
    z = gx.input("z", (2, 3), "float64")
    y = gx.input("y", (2,), "int64")
    with pytest.raises(gx.GradientError, match="integer"):
        gx.grad(gx.cross_entropy(z, y).mean(), y)


def F():  # noqa: N802 - torch.nn.functional, reached only when torch is installed
    return torch.nn.functional


# name, graphc loss, torch loss (reduction none), arrays
TORCH_TABLE = [
    ("mse", gx.mse, lambda p, t: F().mse_loss(p, t, reduction="none"), (PRED, TARGET)),
    ("mae", gx.mae, lambda p, t: F().l1_loss(p, t, reduction="none"), (PRED, TARGET)),
    ("cross_entropy", gx.cross_entropy, lambda z, y: F().cross_entropy(z, y, reduction="none"),
     (LOGITS, LABELS)),
    ("bce", gx.binary_cross_entropy,
     lambda p, t: F().binary_cross_entropy(p, t, reduction="none"), (PROBS, TARGETS01)),
    ("bce_logits", gx.binary_cross_entropy_with_logits,
     lambda z, t: F().binary_cross_entropy_with_logits(z, t, reduction="none"), (PRED, TARGETS01)),
    ("hinge_embedding_like", gx.hinge,
     lambda s, y: torch.clamp(1 - y * s, min=0), (SCORES, SIGNS)),
    ("logistic", gx.logistic_loss, lambda s, y: F().soft_margin_loss(s, y, reduction="none"),
     (SCORES, SIGNS)),
    ("epsilon_insensitive", lambda p, t: gx.epsilon_insensitive(p, t, 0.3),
     lambda p, t: torch.clamp((p - t).abs() - 0.3, min=0), (PRED, TARGET)),
    ("l1", gx.l1, lambda w: w.abs().sum(), (PRED,)),
    ("l2", gx.l2, lambda w: (w**2).sum(), (PRED,)),
    ("entropy", gx.entropy, lambda p: torch.special.entr(p).sum(-1),
     (PROBS / PROBS.sum(-1, keepdims=True),)),
]


@requires_torch
@pytest.mark.parametrize("name, loss, torch_loss, arrays", TORCH_TABLE,
                         ids=[r[0] for r in TORCH_TABLE])
def test_losses_match_torch(name, loss, torch_loss, arrays):
    xs = [gx.input(f"a{k}", a.shape, a.dtype) for k, a in enumerate(arrays)]
    out = loss(*xs).sum()
    fn = gx.compile(xs, [out, gx.grad(out, xs[0])])
    value, grad = fn(*arrays)
    t_args = [torch.tensor(a, requires_grad=(k == 0)) for k, a in enumerate(arrays)]
    t_out = torch_loss(*t_args).sum()
    t_out.backward()
    np.testing.assert_allclose(value, t_out.item(), rtol=1e-10)
    np.testing.assert_allclose(grad, t_args[0].grad.numpy(), rtol=1e-8, atol=1e-12)
