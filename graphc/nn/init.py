"""Initializers: how a layer's params get their first values.

An initializer is a callable ``init(shape, rng, dtype) -> np.ndarray``. Every public
function here returns one (``xavier_uniform()``, ``constant(0.1)``), and layers also
accept the function's name as a string (``kernel_init="he_normal"``).

Fans follow graphc's weight layouts: a dense weight is ``(in, out)``, a convolution
weight ``(out, in/groups, kh, kw)``, so ``fans`` reads ``(fan_in, fan_out)`` from the
shape alone; max-norm constraints (``graphc.optim``) use the same fan-in axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

Initializer = Callable[[tuple[int, ...], np.random.Generator, Any], np.ndarray]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight: ``(in, out)`` for dense, ``(out, in, *k)`` for conv."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def fan_in_axes(ndim: int) -> tuple[int, ...]:
    """The axes holding one output unit's incoming weights (summed over by max-norm)."""
    if ndim < 2:
        return tuple(range(ndim))
    return (0,) if ndim == 2 else tuple(range(1, ndim))


def zeros() -> Initializer:
    """All zeros (biases, the shift of a norm layer)."""
    return constant(0.0)


def ones() -> Initializer:
    """All ones (the scale of a norm layer)."""
    return constant(1.0)


def constant(value: float) -> Initializer:
    """Every entry ``value``."""
    def init(shape, rng, dtype):
        return np.full(shape, value, dtype=dtype)
    init.__name__ = f"constant({value})"
    return init


def uniform(low: float = -0.05, high: float = 0.05) -> Initializer:
    """U[low, high]."""
    if not low < high:
        raise ValueError(f"uniform: need low < high, got {low}, {high}")

    def init(shape, rng, dtype):
        return rng.uniform(low, high, shape).astype(dtype)
    init.__name__ = f"uniform({low}, {high})"
    return init


def normal(mean: float = 0.0, std: float = 0.05) -> Initializer:
    """N(mean, std²)."""
    if not std >= 0:
        raise ValueError(f"normal: std must be >= 0, got {std}")

    def init(shape, rng, dtype):
        return rng.normal(mean, std, shape).astype(dtype)
    init.__name__ = f"normal({mean}, {std})"
    return init


def xavier_uniform(gain: float = 1.0) -> Initializer:
    """Glorot & Bengio (2010): U[−a, a] with a = gain·√(6 / (fan_in + fan_out)), so
    activations and gradients keep their variance through tanh/sigmoid layers."""
    def init(shape, rng, dtype):
        fan_in, fan_out = fans(shape)
        a = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, shape).astype(dtype)
    init.__name__ = "xavier_uniform"
    return init


def xavier_normal(gain: float = 1.0) -> Initializer:
    """Glorot normal: N(0, σ²) with σ = gain·√(2 / (fan_in + fan_out))."""
    def init(shape, rng, dtype):
        fan_in, fan_out = fans(shape)
        return rng.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape).astype(dtype)
    init.__name__ = "xavier_normal"
    return init


def he_uniform() -> Initializer:
    """He et al. (2015) for ReLU: U[−a, a] with a = √(6 / fan_in) (variance 2/fan_in)."""
    def init(shape, rng, dtype):
        a = math.sqrt(6.0 / fans(shape)[0])
        return rng.uniform(-a, a, shape).astype(dtype)
    init.__name__ = "he_uniform"
    return init


def he_normal() -> Initializer:
    """He/Kaiming normal for ReLU: N(0, 2 / fan_in)."""
    def init(shape, rng, dtype):
        return rng.normal(0.0, math.sqrt(2.0 / fans(shape)[0]), shape).astype(dtype)
    init.__name__ = "he_normal"
    return init


def orthogonal(gain: float = 1.0) -> Initializer:
    """Saxe et al. (2014): a (semi-)orthogonal matrix from the QR decomposition of a
    Gaussian one, signs fixed so the draw is uniform (Haar); conv weights are flattened
    to (out, in·kh·kw) first."""
    def init(shape, rng, dtype):
        if len(shape) < 2:
            raise ValueError(f"orthogonal: needs a weight of 2 or more dims, got shape {shape}")
        rows = shape[0]
        cols = math.prod(shape) // rows
        a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        q = q if rows >= cols else q.T
        return (gain * q).reshape(shape).astype(dtype)
    init.__name__ = "orthogonal"
    return init


kaiming_uniform = he_uniform
kaiming_normal = he_normal
glorot_uniform = xavier_uniform
glorot_normal = xavier_normal

#: initializer names layers accept as strings
BY_NAME: dict[str, Callable[[], Initializer]] = {
    "zeros": zeros, "ones": ones, "uniform": uniform, "normal": normal,
    "xavier_uniform": xavier_uniform, "xavier_normal": xavier_normal,
    "glorot_uniform": xavier_uniform, "glorot_normal": xavier_normal,
    "he_uniform": he_uniform, "he_normal": he_normal,
    "kaiming_uniform": he_uniform, "kaiming_normal": he_normal, "orthogonal": orthogonal,
}


def get(init: str | Initializer) -> Initializer:
    """An initializer from its name or itself."""
    if isinstance(init, str):
        if init not in BY_NAME:
            raise ValueError(f"unknown initializer {init!r}; known: {', '.join(BY_NAME)}")
        return BY_NAME[init]()
    if not callable(init):
        raise TypeError(f"an initializer is a name or a callable, got {init!r}")
    return init


__all__ = [
    "Initializer", "fans", "fan_in_axes", "zeros", "ones", "constant", "uniform", "normal",
    "xavier_uniform", "xavier_normal", "glorot_uniform", "glorot_normal", "he_uniform",
    "he_normal", "kaiming_uniform", "kaiming_normal", "orthogonal", "get",
]
