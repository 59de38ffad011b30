"""ONNX classification losses (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss).

For scores ``x`` of shape (N, C, d1, ...) and integer targets (N, d1, ...):

    loss[n, d...] = -w[t] * x[n, t, d...]      with t = target[n, d...]

where ``w[t]`` is the class weight (1 without ``weights``) and is 0 for targets
equal to ``ignore_index``. ``reduction="mean"`` divides the sum by the sum of
those per-element weights (so ignored targets count neither in the numerator
nor in the denominator); without weights or ignore_index it is a plain mean.
SoftmaxCrossEntropyLoss is the same applied to ``log_softmax(x, axis=1)``,
which it can also return.
"""

from __future__ import annotations

import graphc as gx
from graphc.onnx.registry import handler
from graphc.tensor import Tensor


def _nll(node, logp: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    """The reduced negative log-likelihood of ``target`` under ``logp`` (N, C, ...)."""
    reduction = node.attr("reduction", "mean")
    if reduction not in ("none", "sum", "mean"):
        raise node.unsupported(f"attribute reduction={reduction!r}")
    if logp.ndim < 2 or target.ndim != logp.ndim - 1:
        raise node.error(f"scores {logp.shape} and target {target.shape} do not match "
                         "(N, C, d...) / (N, d...)")
    if target.dtype not in ("int32", "int64"):
        raise node.unsupported(f"target dtype {target.dtype}")
    ii = node.attr("ignore_index")
    dt = logp.dtype
    safe = target
    valid = None
    if ii is not None:
        valid = gx.not_equal(target, ii)
        safe = gx.where(valid, target, gx.zeros_like(target))
    # x[n, t[n, d], d]: gather along the class axis
    picked = gx.squeeze(gx.take_along_axis(logp, gx.expand_dims(safe, 1), axis=1), 1)
    w = None
    if weight is not None:
        w = gx.take(weight, safe, axis=0)
        if valid is not None:
            w = gx.where(valid, w, gx.zeros_like(w))
    elif valid is not None:
        w = gx.cast(valid, dt)
    loss = -picked if w is None else -picked * w
    if reduction == "none":
        return loss
    total = gx.sum(loss)
    if reduction == "sum":
        return total
    if w is None:
        return gx.mean(loss)
    return total / gx.sum(w)


@handler("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(node):
    weight = node.input(2) if node.has(2) else None
    return _nll(node, node.input(0), node.input(1), weight)


@handler("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(node):
    """loss = NLL(log_softmax(scores, axis=1)); the second output is that log_softmax."""
    scores = node.input(0)
    if scores.ndim < 2:
        raise node.error(f"scores must be (N, C, ...), got shape {scores.shape}")
    logp = gx.log_softmax(scores, axis=1)
    weight = node.input(2) if node.has(2) else None
    loss = _nll(node, logp, node.input(1), weight)
    if node.n_outputs > 1:
        return loss, (logp if node.wants_output(1) else None)
    return loss
