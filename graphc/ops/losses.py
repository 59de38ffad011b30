"""Losses and regularizers, written with graphc's primitives (no derivative of their own).

Losses return one value per element or example (``reduction="none"``, the default,
so ``gx.cross_entropy(z, y).mean()`` reads as the math), or their ``"mean"`` or
``"sum"``. Margin losses take raw scores and labels in {−1, +1}; the margin is
M = label · score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphc.ops import activations as act
from graphc.ops import elementwise as ew
from graphc.ops import indexing, nn, reduce
from graphc.ops import shape as shape_ops
from graphc.tensor import Tensor, as_tensor
from graphc.types import FLOAT_DTYPES

_REDUCTIONS = ("none", "mean", "sum")


def _reduced(loss: Tensor, reduction: str) -> Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "mean":
        return reduce.mean(loss)
    if reduction == "sum":
        return reduce.sum(loss)
    return loss


def _positive_part(x: Tensor) -> Tensor:
    """(x)+ = max(x, 0), with gradient 0 at the kink (as ReLU)."""
    return act.relu(x)


def mse(pred: Any, target: Any, reduction: str = "none") -> Tensor:
    """Squared error (pred − target)²."""
    return _reduced(ew.square(ew.sub(pred, target)), reduction)


def mae(pred: Any, target: Any, reduction: str = "none") -> Tensor:
    """Absolute error |pred − target|."""
    return _reduced(ew.abs(ew.sub(pred, target)), reduction)


def epsilon_insensitive(pred: Any, target: Any, epsilon: float = 0.1,
                        reduction: str = "none") -> Tensor:
    """The ε-insensitive loss of support-vector regression: (|pred − target| − ε)+."""
    return _reduced(_positive_part(ew.sub(ew.abs(ew.sub(pred, target)), epsilon)), reduction)


def logistic_loss(scores: Any, labels: Any, reduction: str = "none") -> Tensor:
    """ln(1 + e^(−M)) with margin M = label · score, labels in {−1, +1}; computed as
    softplus(−M), exact for large margins of either sign."""
    return _reduced(act.softplus(ew.neg(ew.mul(labels, scores))), reduction)


def hinge(scores: Any, labels: Any, reduction: str = "none") -> Tensor:
    """The hinge loss (1 − M)+ with margin M = label · score, labels in {−1, +1}."""
    return _reduced(_positive_part(ew.sub(1.0, ew.mul(labels, scores))), reduction)


def cross_entropy(logits: Any, labels: Any, axis: int = -1, reduction: str = "none") -> Tensor:
    """Cross-entropy of softmax(logits) against the labels, from logits.

    Integer ``labels`` (one class index per example, the logits' shape without
    ``axis``) give logsumexp(z) − z[label], never forming the probabilities.
    Float ``labels`` of the logits' shape are target distributions:
    −Σ labels · log_softmax(z).
    """
    logits = as_tensor(logits)
    labels = as_tensor(labels)
    if labels.dtype in FLOAT_DTYPES:
        return _reduced(ew.neg(reduce.sum(ew.mul(labels, nn.log_softmax(logits, axis)), axis)),
                        reduction)
    axis = axis % max(logits.ndim, 1)
    picked = indexing.take_along_axis(logits, shape_ops.expand_dims(labels, axis), axis)
    nll = ew.sub(reduce.logsumexp(logits, axis), shape_ops.squeeze(picked, axis))
    return _reduced(nll, reduction)


def binary_cross_entropy(probs: Any, targets: Any, reduction: str = "none") -> Tensor:
    """−(t·ln p + (1 − t)·ln(1 − p)) from probabilities; each log is clamped at −100,
    as in PyTorch, so p = 0 or 1 gives a finite loss."""
    log_p = ew.maximum(ew.log(probs), -100.0)
    log_not_p = ew.maximum(ew.log1p(ew.neg(probs)), -100.0)
    loss = ew.neg(ew.add(ew.mul(targets, log_p), ew.mul(ew.sub(1.0, targets), log_not_p)))
    return _reduced(loss, reduction)


def binary_cross_entropy_with_logits(logits: Any, targets: Any,
                                     reduction: str = "none") -> Tensor:
    """Binary cross-entropy of sigmoid(z), from logits: softplus(z) − t·z, stable for
    any z (no probability is formed)."""
    return _reduced(ew.sub(act.softplus(logits), ew.mul(targets, logits)), reduction)


def _params_list(params: Any) -> Sequence[Tensor]:
    return [params] if isinstance(params, Tensor) else list(params)


def l1(params: Any) -> Tensor:
    """The L1 penalty Σ|w| over one tensor or a sequence of tensors."""
    terms = [reduce.sum(ew.abs(p)) for p in _params_list(params)]
    return _sum_terms(terms)


def l2(params: Any) -> Tensor:
    """The L2 penalty Σw² (the squared Euclidean norm) over one tensor or a sequence.
    Weight decay with rate λ adds (λ/2)·l2(w) to the loss."""
    terms = [reduce.sum(ew.square(p)) for p in _params_list(params)]
    return _sum_terms(terms)


def _sum_terms(terms: list[Tensor]) -> Tensor:
    total = terms[0]
    for t in terms[1:]:
        total = ew.add(total, t)
    return total


def entropy(probs: Any, axis: int = -1, reduction: str = "none") -> Tensor:
    """Entropy −Σ p·ln p of a predicted distribution along ``axis``, with 0·ln 0 = 0.

    The log reads a safe copy of p (1 where p = 0), so the gradient at p = 0 is
    finite instead of 0·(−∞) = NaN.
    """
    probs = as_tensor(probs)
    safe = ew.where(ew.greater(probs, 0.0), probs, ew.ones_like(probs))
    return _reduced(ew.neg(reduce.sum(ew.mul(probs, ew.log(safe)), axis)), reduction)


__all__ = [
    "mse", "mae", "epsilon_insensitive", "logistic_loss", "hinge", "cross_entropy",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "l1", "l2", "entropy",
]
