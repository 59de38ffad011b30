"""Reductions over axes, with ``keepdims``."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ops import shape as shape_ops
from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor
from graphc.types import TensorType, normalize_axes


def reduced_shape(shape: tuple, axes: tuple[int, ...], keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


class Reduction(Op):
    """Shared type rule: ``axis`` is a sorted tuple of non-negative axes."""

    def infer(self, inputs: tuple[TensorType, ...], *, axis: tuple[int, ...],
              keepdims: bool) -> TensorType:
        (x,) = inputs
        return TensorType(reduced_shape(x.shape, axis, keepdims), self.result_dtype(x.dtype))

    def result_dtype(self, dtype: str) -> str:
        return dtype


def _expand_back(g: Tensor, x: Tensor, axis: tuple[int, ...], keepdims: bool) -> Tensor:
    """Undo a reduction's shape: reinsert reduced axes, broadcast to ``x``'s shape."""
    if not keepdims:
        g = shape_ops.expand_dims(g, axis)
    return shape_ops.broadcast_to(g, x.shape)


class Sum(Reduction):
    name = "sum"

    def result_dtype(self, dtype: str) -> str:
        return np.sum(np.zeros(0, dtype)).dtype.name  # NumPy widens bool and small ints

    def vjp(self, node, g):
        return (_expand_back(g, node.inputs[0], **node.attr),)

    def impl(self, x, *, axis, keepdims):
        return np.sum(x, axis=axis, keepdims=keepdims)


_sum = Sum()


def sum(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all axes when ``None``)."""
    x = as_tensor(x)
    return _sum(x, axis=normalize_axes(axis, x.ndim), keepdims=bool(keepdims))


__all__ = ["sum"]
