"""Shape ops: reshape, transpose, broadcasting, indexing, joining and splitting.

Attributes named ``shape`` may hold symbolic dims; backends resolve them from the
sizes bound when the compiled function checks its arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.errors import GraphcTypeError, user_location
from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor
from graphc.types import (
    TensorType,
    as_shape,
    broadcast_shapes,
    format_shape,
    normalize_axes,
    shape_size,
)


class Reshape(Op):
    name = "reshape"

    def infer(self, inputs, *, shape):
        (x,) = inputs
        if shape_size(shape) != shape_size(x.shape):
            raise ValueError(f"cannot reshape {format_shape(x.shape)} to {format_shape(shape)}")
        return TensorType(shape, x.dtype)

    def vjp(self, node, g):
        return (reshape(g, node.inputs[0].shape),)

    def impl(self, x, *, shape):
        return np.reshape(x, shape)


class Transpose(Op):
    name = "transpose"

    def infer(self, inputs, *, axes):
        (x,) = inputs
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of {x.ndim} dims")
        return TensorType(tuple(x.shape[a] for a in axes), x.dtype)

    def vjp(self, node, g):
        return (transpose(g, tuple(np.argsort(node.attr["axes"]))),)

    def impl(self, x, *, axes):
        return np.transpose(x, axes)


class BroadcastTo(Op):
    name = "broadcast_to"

    def infer(self, inputs, *, shape):
        (x,) = inputs
        if broadcast_shapes(x.shape, shape) != tuple(shape):
            raise ValueError(f"cannot broadcast {format_shape(x.shape)} to {format_shape(shape)}")
        return TensorType(shape, x.dtype)

    def vjp(self, node, g):
        return (g,)  # the autodiff driver sums g back to the input's shape

    def impl(self, x, *, shape):
        return np.broadcast_to(x, shape)


_reshape, _transpose, _broadcast_to = Reshape(), Transpose(), BroadcastTo()


def _resolve_minus_one(shape: tuple, old: tuple) -> tuple:
    """Replace one ``-1`` by what makes the sizes match (symbolic dims cancel by name)."""
    if -1 not in shape:
        return shape
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: at most one -1 in {shape}")
    rest = tuple(d for d in shape if d != -1)
    known, total = shape_size(rest), shape_size(old)
    missing = _divide_size(total, known)
    return tuple(missing if d == -1 else d for d in shape)


def _divide_size(total: int | str, known: int | str) -> int | str:
    def parts(size):
        if isinstance(size, int):
            return size, []
        names = size.split("*")
        num = int(names[-1]) if names[-1].isdigit() else 1
        return num, [n for n in names if not n.isdigit()]

    (tn, tnames), (kn, knames) = parts(total), parts(known)
    left = list(tnames)
    for n in knames:
        if n not in left:
            raise ValueError(f"cannot infer -1: size {total} is not a multiple of {known}")
        left.remove(n)
    if kn == 0 or tn % kn:
        raise ValueError(f"cannot infer -1: size {total} is not a multiple of {known}")
    return shape_size((tn // kn, *left))


def reshape(x: Any, shape: Any) -> Tensor:
    """Reshape to ``shape``; one dim may be ``-1``, and symbolic dims are allowed."""
    x = as_tensor(x)
    shape = tuple(shape) if not isinstance(shape, int | str) else (shape,)
    if -1 in shape:
        try:
            shape = _resolve_minus_one(shape, x.shape)
        except ValueError as e:
            raise GraphcTypeError("reshape", str(e), (x.type,), user_location()) from None
    shape = as_shape(shape)
    return x if shape == x.shape else _reshape(x, shape=shape)


def transpose(x: Any, axes: Any = None) -> Tensor:
    """Permute axes; reverse them when ``axes`` is None."""
    x = as_tensor(x)
    axes = tuple(range(x.ndim))[::-1] if axes is None else tuple(int(a) % max(x.ndim, 1)
                                                                  for a in axes)
    return x if axes == tuple(range(x.ndim)) else _transpose(x, axes=axes)


def broadcast_to(x: Any, shape: Any) -> Tensor:
    """Broadcast to ``shape`` (NumPy rules; symbolic dims allowed)."""
    x = as_tensor(x)
    shape = as_shape(shape)
    return x if shape == x.shape else _broadcast_to(x, shape=shape)


def expand_dims(x: Any, axis: int | tuple[int, ...]) -> Tensor:
    """Insert size-1 axes at the positions ``axis`` of the result."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim + (1 if isinstance(axis, int) else len(axis)))
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, tuple(shape))


__all__ = ["reshape", "transpose", "broadcast_to", "expand_dims"]
