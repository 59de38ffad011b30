"""What the base optimizer does to gradients before a step, and to weights after it.

All of these are graph builders (tensors in, tensors out), applied by
``Optimizer.apply`` in this order:

1. ``clip_by_value``: clamp each gradient entry to ``[−c, c]``;
2. ``clip_by_global_norm``: rescale all gradients together, ``g ← g·c/‖g‖`` when the
   norm of every gradient entry, over all params, exceeds ``c``;
3. ``penalty_gradient``: add the gradient of ``λ₂/2·‖θ‖² + λ₁·‖θ‖₁`` (coupled weight
   decay, as ``torch.optim``'s ``weight_decay``) to params that ``is_decayed``;

and after the optimizer's step, ``project_max_norm`` on weights of ndim ≥ 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

import graphc as gx
from graphc.nn.init import fan_in_axes
from graphc.tensor import Param, Tensor

K = TypeVar("K")


def is_decayed(param: Param, decay_bias: bool = False) -> bool:
    """Does weight decay (and L1) apply to ``param``? Weights do; biases and the gains
    of norm layers (ndim ≤ 1) only when ``decay_bias``."""
    return param.ndim >= 2 or decay_bias


def clip_by_value(grad: Tensor, limit: float) -> Tensor:
    """Each entry clamped to ``[−limit, limit]`` (``torch.nn.utils.clip_grad_value_``)."""
    return gx.clip(grad, -limit, limit)


def global_norm(tensors: Iterable[Tensor]) -> Tensor:
    """``√(Σ x²)`` over every entry of every tensor, as a float64 scalar (each tensor's
    sum of squares is taken in its own dtype, then added up in float64)."""
    squares = [gx.cast(gx.sum(gx.square(t)), "float64") for t in tensors]
    if not squares:
        return gx.constant(0.0)
    total = squares[0]
    for s in squares[1:]:
        total = total + s
    return gx.sqrt(total)


def clip_by_global_norm(grads: Mapping[K, Tensor], limit: float) -> dict[K, Tensor]:
    """All gradients times ``limit/‖g‖`` when their global norm ``‖g‖`` exceeds ``limit``,
    unchanged otherwise (the factor ``limit/max(‖g‖, limit)`` is exactly 1 then).

    ``torch.nn.utils.clip_grad_norm_`` divides by ``‖g‖ + 1e-6`` instead; the two agree
    to a relative ``1e-6/‖g‖``.
    """
    norm = global_norm(grads.values())
    scale = limit / gx.maximum(norm, limit)
    return {key: g * gx.cast(scale, g.dtype) for key, g in grads.items()}


def penalty_gradient(grad: Tensor, param: Param, l2: float, l1: float) -> Tensor:
    """``g + λ₂·θ + λ₁·sign(θ)``: the gradient of the loss plus ``λ₂/2·‖θ‖² + λ₁·‖θ‖₁``."""
    if l2:
        grad = grad + l2 * param
    if l1:
        grad = grad + l1 * gx.sign(param)
    return grad


def project_max_norm(weight: Tensor, limit: float) -> Tensor:
    """Each output unit's incoming weights rescaled onto the ball ``‖w‖ ≤ limit``.

    The norm runs over ``graphc.nn.init.fan_in_axes`` (a dense ``(in, out)`` weight: axis
    0; a conv ``(out, in, kh, kw)`` weight: axes 1–3). Units already inside the ball are
    left exactly as they are: the factor ``limit/max(‖w‖, limit)`` is 1 there.
    """
    if weight.ndim < 2:
        raise ValueError(f"max-norm projects weights of ndim >= 2, got shape {weight.shape}")
    norms = gx.norm(weight, axis=fan_in_axes(weight.ndim), keepdims=True)
    return weight * (limit / gx.maximum(norms, limit))


__all__ = ["is_decayed", "clip_by_value", "global_norm", "clip_by_global_norm",
           "penalty_gradient", "project_max_norm"]
