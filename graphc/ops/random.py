"""Random draws with explicit keys.

A random node carries its ``key`` as an attribute, so two draws with different
keys are two nodes and are never merged; the same key is the same draw, which
is how a dropout's backward pass reuses its forward mask. Keys left out are
taken fresh from a counter. A compiled function keeps one NumPy generator per
key: each call draws new numbers, reproducibly from the key.

Each op takes a tensor ``like`` whose (runtime) shape the draw takes; ``like``
gets no gradient.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor
from graphc.types import FLOAT_DTYPES, TensorType, as_dtype

_FRESH_KEYS = itertools.count(1 << 32)


def fresh_key() -> int:
    """A key no other draw uses (user-chosen keys should stay below 2**32)."""
    return next(_FRESH_KEYS)


class RandomOp(Op):
    differentiable = False

    def infer(self, inputs, *, key, dtype, **params):
        if not isinstance(key, int):
            raise TypeError(f"key must be an int, got {key!r}")
        return TensorType(inputs[0].shape, as_dtype(dtype))

    def emit(self, args: list[str], attrs: dict[str, str]) -> str:
        params = [f"{k}={v}" for k, v in attrs.items() if k != "key"]
        return f"{self.name}(rng({attrs['key']}), {', '.join([*args, *params])})"


class UniformLike(RandomOp):
    name = "uniform_like"

    def impl(self, rng, like, *, low, high, dtype):  # type: ignore[override]
        return rng.uniform(low, high, np.shape(like)).astype(dtype)


class NormalLike(RandomOp):
    name = "normal_like"

    def impl(self, rng, like, *, mean, std, dtype):  # type: ignore[override]
        return rng.normal(mean, std, np.shape(like)).astype(dtype)


class BernoulliLike(RandomOp):
    name = "bernoulli_like"

    def impl(self, rng, like, *, p, dtype):  # type: ignore[override]
        return (rng.random(np.shape(like)) < p).astype(dtype)


_uniform, _normal, _bernoulli = UniformLike(), NormalLike(), BernoulliLike()


def _float_dtype(like: Tensor, dtype: Any) -> str:
    if dtype is not None:
        return as_dtype(dtype)
    return like.dtype if like.dtype in FLOAT_DTYPES else "float64"


def uniform_like(like: Any, low: float = 0.0, high: float = 1.0, *, key: int | None = None,
                 dtype: Any = None) -> Tensor:
    """Uniform draws in ``[low, high)`` of ``like``'s shape."""
    like = as_tensor(like)
    return _uniform(like, low=float(low), high=float(high), dtype=_float_dtype(like, dtype),
                    key=fresh_key() if key is None else int(key))


def normal_like(like: Any, mean: float = 0.0, std: float = 1.0, *, key: int | None = None,
                dtype: Any = None) -> Tensor:
    """Gaussian draws of ``like``'s shape."""
    like = as_tensor(like)
    return _normal(like, mean=float(mean), std=float(std), dtype=_float_dtype(like, dtype),
                   key=fresh_key() if key is None else int(key))


def bernoulli_like(like: Any, p: float, *, key: int | None = None, dtype: Any = None) -> Tensor:
    """1 with probability ``p``, else 0, in ``like``'s shape."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"bernoulli_like: p={p} is not a probability")
    like = as_tensor(like)
    return _bernoulli(like, p=float(p), dtype=_float_dtype(like, dtype),
                      key=fresh_key() if key is None else int(key))


__all__ = ["uniform_like", "normal_like", "bernoulli_like"]
