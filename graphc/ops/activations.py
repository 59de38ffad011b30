"""Activation functions: each is one elementwise op, one node in the graph.

The math of every activation (value, derivative, the convention at its kinks) is
a sympy formula in ``formulas.py``, compiled ahead of time into ``_generated.py``;
``elementwise.ELEMENTWISE`` already holds an op per formula. This module gives
them their public spelling, checks the attributes, and turns them into floats.

Kinks follow PyTorch: ReLU'(0) = 0, LeakyReLU'(0) = α, hardtanh' = 0 at both
ends, and so on. Derivatives that share work with the forward value are written
in terms of it: the gradient of ``sigmoid`` reads its own output, s·(1 − s).

``tanh`` and ``sign`` are elementwise primitives (``gx.tanh``, ``gx.sign``); they
appear in the ``ACTIVATIONS`` registry but are not redefined here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphc.ops import elementwise as ew
from graphc.ops.elementwise import ELEMENTWISE
from graphc.ops.random import uniform_like
from graphc.tensor import Tensor, as_tensor

_GELU_OPS = {"none": "gelu", "tanh": "gelu_tanh"}


def identity(x: Any) -> Tensor:
    """The identity activation f(x) = x (a linear unit), as a node of its own."""
    return ELEMENTWISE["identity"](x)


def heaviside(x: Any, at_zero: float = 0.0) -> Tensor:
    """The step (threshold) activation of the perceptron.

    H(x) = 1 for x > 0, ``at_zero`` for x = 0, 0 for x < 0. Its gradient is 0
    everywhere. The default H(0) = 0 makes H the derivative of ``relu``; pass
    ``at_zero=0.5`` for the symmetric convention, 1 for "fires at zero".
    """
    return ELEMENTWISE["heaviside"](x, at_zero=float(at_zero))


def threshold(x: Any, threshold: float, value: float) -> Tensor:
    """``torch.nn.functional.threshold``: x where x > ``threshold``, else ``value``.

    The gradient is 1 above the threshold and 0 at and below it.
    """
    return ELEMENTWISE["threshold"](x, threshold=float(threshold), value=float(value))


def sigmoid(x: Any, c: float = 1.0) -> Tensor:
    """The logistic sigmoid σ_c(x) = 1 / (1 + exp(−c·x)).

    Parameters
    ----------
    x : tensor-like
    c : float
        Steepness; σ_c'(0) = c/4. ``c = 1`` (the default) builds the plain
        ``sigmoid`` node, any other value a ``sigmoid_c`` node.

    Notes
    -----
    Never nan: exp(−c·x) = inf gives exactly 0. The derivative is read from the
    output, σ_c' = c·σ_c·(1 − σ_c).
    """
    if c == 1:
        return ELEMENTWISE["sigmoid"](x)
    return ELEMENTWISE["sigmoid_c"](x, c=float(c))


def logsigmoid(x: Any) -> Tensor:
    """log σ(x) = min(x, 0) − log1p(exp(−|x|)), stable for any x.

    Its derivative σ(−x) is computed from the output as −expm1(out).
    """
    return ELEMENTWISE["logsigmoid"](x)


def relu(x: Any) -> Tensor:
    """The rectified linear unit max(x, 0); ReLU'(0) = 0. Integer inputs stay integer."""
    return ELEMENTWISE["relu"](x)


def relu6(x: Any) -> Tensor:
    """min(max(x, 0), 6); the gradient is 0 at 0 and at 6 (torch)."""
    return ELEMENTWISE["relu6"](x)


def leaky_relu(x: Any, alpha: float = 0.01) -> Tensor:
    """x for x > 0, α·x otherwise; the gradient at 0 is α (torch)."""
    return ELEMENTWISE["leaky_relu"](x, alpha=float(alpha))


def prelu(x: Any, alpha: Any) -> Tensor:
    """The parametric ReLU: x for x > 0, α·x otherwise, with α a tensor (learnable).

    ``alpha`` broadcasts against ``x`` NumPy-style and receives a gradient
    (Σ of g·x over the elements it scaled). For torch's per-channel weight of an
    (N, C, H, W) input, pass ``alpha`` of shape (C, 1, 1).
    """
    x = as_tensor(x)
    return ELEMENTWISE["prelu"](x, as_tensor(alpha, x))


def rrelu(x: Any, lower: float = 1 / 8, upper: float = 1 / 3, training: bool = False,
          key: int | None = None) -> Tensor:
    """The randomized leaky ReLU: x for x > 0, a·x otherwise.

    Parameters
    ----------
    x : tensor-like
    lower, upper : float
        The range of the negative slope.
    training : bool
        In training each element draws its own slope a ~ U[lower, upper) at every
        call (a ``uniform_like`` node feeding a ``prelu``); at inference the slope
        is fixed at (lower + upper)/2 (a ``leaky_relu``).
    key : int, optional
        The random key of the draw (see ``gx.uniform_like``); fresh when omitted.
    """
    if not lower <= upper:
        raise ValueError(f"rrelu: lower={lower} is greater than upper={upper}")
    if not training:
        return leaky_relu(x, (lower + upper) / 2)
    x = as_tensor(x)
    return prelu(x, uniform_like(x, lower, upper, key=key))


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """The exponential linear unit: x for x > 0, α·(exp(x) − 1) otherwise."""
    return ELEMENTWISE["elu"](x, alpha=float(alpha))


def selu(x: Any) -> Tensor:
    """The scaled ELU: λ·x for x > 0, λ·α·(exp(x) − 1) otherwise.

    λ ≈ 1.0507 and α ≈ 1.6733 are PyTorch's constants (Klambauer et al., 2017).
    """
    return ELEMENTWISE["selu"](x)


def celu(x: Any, alpha: float = 1.0) -> Tensor:
    """The continuously differentiable ELU: x for x > 0, α·(exp(x/α) − 1) otherwise."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    return ELEMENTWISE["celu"](x, alpha=float(alpha))


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """The Gaussian error linear unit x·Φ(x).

    Parameters
    ----------
    x : tensor-like
    approximate : {"none", "tanh"}
        ``"none"``: exactly, x/2·(1 + erf(x/√2)); ``"tanh"``: torch's approximation
        x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    """
    if approximate not in _GELU_OPS:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return ELEMENTWISE[_GELU_OPS[approximate]](x)


def silu(x: Any) -> Tensor:
    """The sigmoid linear unit x·σ(x) (swish with β = 1)."""
    return ELEMENTWISE["silu"](x)


def swish(x: Any, beta: float = 1.0) -> Tensor:
    """Swish x·σ(β·x); ``beta = 1`` (the default) builds a ``silu`` node."""
    if beta == 1:
        return silu(x)
    return ELEMENTWISE["swish"](x, beta=float(beta))


def mish(x: Any) -> Tensor:
    """Mish x·tanh(softplus(x)) = x·tanh(log(1 + exp(x)))."""
    return ELEMENTWISE["mish"](x)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """Softplus log(1 + exp(β·x))/β, and exactly x where β·x > ``threshold`` (torch).

    Computed as (max(βx, 0) + log1p(exp(−|βx|)))/β, which neither overflows nor
    loses the small values of the left tail, whatever the threshold. The derivative
    σ(β·x) is read from the output as −expm1(−β·out).
    """
    if beta == 0:
        raise ValueError("softplus: beta must not be 0")
    return ELEMENTWISE["softplus"](x, beta=float(beta), threshold=float(threshold))


def softsign(x: Any) -> Tensor:
    """x / (1 + |x|); its derivative is 1/(1 + |x|)²."""
    return ELEMENTWISE["softsign"](x)


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clamped to [min_val, max_val]; the gradient is 0 at both ends (torch)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val={min_val} is greater than max_val={max_val}")
    return ELEMENTWISE["hardtanh"](x, min_val=float(min_val), max_val=float(max_val))


def hardsigmoid(x: Any) -> Tensor:
    """torch's hard sigmoid relu6(x + 3)/6: 0 up to −3, 1 from 3, linear between."""
    return ELEMENTWISE["hardsigmoid"](x)


def hardswish(x: Any) -> Tensor:
    """torch's hard swish x·relu6(x + 3)/6; the gradient is (2x + 3)/6 strictly between
    −3 and 3, 0 at −3 and 1 at 3 (torch)."""
    return ELEMENTWISE["hardswish"](x)


def tanhshrink(x: Any) -> Tensor:
    """x − tanh(x)."""
    return ELEMENTWISE["tanhshrink"](x)


def softshrink(x: Any, lambd: float = 0.5) -> Tensor:
    """x − λ for x > λ, x + λ for x < −λ, 0 between (and at ±λ)."""
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be non-negative, got {lambd}")
    return ELEMENTWISE["softshrink"](x, lambd=float(lambd))


def hardshrink(x: Any, lambd: float = 0.5) -> Tensor:
    """x for |x| > λ, 0 otherwise (0 at ±λ)."""
    return ELEMENTWISE["hardshrink"](x, lambd=float(lambd))


def piecewise_linear(x: Any, lo: float = -0.5, hi: float = 0.5) -> Tensor:
    """The saturating linear unit: a straight ramp from 0 at ``lo`` to 1 at ``hi``.

    f(x) = 0 for x ≤ lo, (x − lo)/(hi − lo) for lo < x < hi, 1 for x ≥ hi. With
    the defaults it is x + 1/2 on (−1/2, 1/2), the unit-slope linear threshold
    unit. The gradient is 1/(hi − lo) strictly inside and 0 at lo and hi
    (as hardtanh).
    """
    if not lo < hi:
        raise ValueError(f"piecewise_linear: lo={lo} must be less than hi={hi}")
    return ELEMENTWISE["piecewise_linear"](x, lo=float(lo), hi=float(hi))


#: Every activation by name, for layers and configs: name -> function of a tensor
#: (keyword arguments for its parameters). ``tanh`` and ``sign`` are the primitives.
ACTIVATIONS: dict[str, Callable[..., Tensor]] = {
    "identity": identity, "heaviside": heaviside, "threshold": threshold, "sign": ew.sign,
    "sigmoid": sigmoid, "logsigmoid": logsigmoid, "tanh": ew.tanh, "relu": relu,
    "relu6": relu6, "leaky_relu": leaky_relu, "prelu": prelu, "rrelu": rrelu, "elu": elu,
    "selu": selu, "celu": celu, "gelu": gelu, "silu": silu, "swish": swish, "mish": mish,
    "softplus": softplus, "softsign": softsign, "hardtanh": hardtanh,
    "hardsigmoid": hardsigmoid, "hardswish": hardswish, "tanhshrink": tanhshrink,
    "softshrink": softshrink, "hardshrink": hardshrink, "piecewise_linear": piecewise_linear,
}

__all__ = [
    "identity", "heaviside", "threshold", "sigmoid", "logsigmoid", "relu", "relu6",
    "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu", "swish", "mish",
    "softplus", "softsign", "hardtanh", "hardsigmoid", "hardswish", "tanhshrink",
    "softshrink", "hardshrink", "piecewise_linear",
]
