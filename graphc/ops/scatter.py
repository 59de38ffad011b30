"""``scatter_elements``: write (or combine) updates into a copy of ``data`` at indices.

``out = data.copy(); out[p with p[axis] = indices[p]] (=|+=|*=|max=|min=) updates[p]``
for every position ``p`` of ``indices`` (which has ``updates``' shape and, on the other
axes, no more than ``data``'s extent), in row-major order of ``p``: that is ONNX's
``ScatterElements`` and NumPy's ``np.put_along_axis`` / ``np.<ufunc>.at``. Negative
indices count from the end. Replacement, multiplication, max and min cannot be
composed from graphc's scatter-add, hence this op; ``ScatterND`` reduces to it on a
flattened ``data``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.errors import GraphcError
from graphc.ops._dims import checked_arguments
from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor, constant
from graphc.types import INT_DTYPES, TensorType, format_shape, normalize_axis

#: reduction -> the NumPy ufunc whose ``.at`` combines (``None``: plain assignment)
REDUCTIONS: dict[str, Any] = {"none": None, "add": np.add, "mul": np.multiply,
                              "max": np.maximum, "min": np.minimum}


class ScatterElements(Op):
    """``data`` with ``updates`` scattered at ``indices`` along ``axis`` (see module)."""

    name = "scatter_elements"

    def infer(self, inputs, *, axis, reduction):
        data, indices, updates = inputs
        if indices.dtype not in INT_DTYPES:
            raise TypeError(f"indices must be integers, got {indices.dtype}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, "
                             f"got {reduction!r}")
        if indices.shape != updates.shape:
            raise ValueError(f"indices {format_shape(indices.shape)} and updates "
                             f"{format_shape(updates.shape)} must have one shape")
        if indices.ndim != data.ndim:
            raise ValueError(f"indices need as many dims as data ({data.ndim}), "
                             f"got {indices.ndim}")
        if updates.dtype != data.dtype:
            raise TypeError(f"updates ({updates.dtype}) must have data's dtype ({data.dtype})")
        for d, (n, m) in enumerate(zip(data.shape, indices.shape, strict=True)):
            if d != axis and n != m and not (isinstance(n, int) and isinstance(m, int) and m <= n):
                raise ValueError(f"indices {format_shape(indices.shape)} exceed data "
                                 f"{format_shape(data.shape)} on axis {d}")
        return TensorType(data.shape, data.dtype)

    def vjp(self, node, g):
        data, indices, updates = node.inputs
        axis, reduction = node.attr["axis"], node.attr["reduction"]
        g_at = _gather(_crop(g, indices.shape, axis), indices, axis)
        if reduction == "add":
            return (g, None, g_at)
        if reduction != "none":
            raise GraphcError(f"scatter_elements with reduction={reduction!r} has no gradient "
                              "in graphc")
        # which update each position kept (the last one written), -1 where none was
        order = constant(np.arange(_static_size(updates), dtype=np.int64).reshape(updates.shape))
        from graphc.ops.elementwise import equal, full_like, where
        kept = _scatter(full_like(data, -1, "int64"), indices, order, axis=axis, reduction="none")
        won = equal(_gather(_crop(kept, indices.shape, axis), indices, axis), order)
        return (where(equal(kept, -1), g, 0), None, where(won, g_at, 0))

    def impl(self, data, indices, updates, *, axis, reduction):
        out = np.array(data, copy=True)
        indices = np.asarray(indices)
        n = out.shape[axis]
        if indices.size and not (-n <= indices.min() and indices.max() < n):
            raise IndexError(f"scatter_elements: an index is out of bounds for axis {axis} "
                             f"with size {n}")
        where = list(np.indices(indices.shape, sparse=True))
        where[axis] = indices
        ufunc = REDUCTIONS[reduction]
        if ufunc is None:  # NumPy assigns repeated indices in order: the last one wins
            out[tuple(where)] = updates
        else:
            ufunc.at(out, tuple(where), updates)
        return out


def _static_size(t: Tensor) -> int:
    if not all(isinstance(n, int) for n in t.shape):
        raise GraphcError("the gradient of scatter_elements needs static update shapes, got "
                          f"{format_shape(t.shape)}")
    return int(np.prod(t.shape, dtype=np.int64))


def _crop(x: Tensor, shape: tuple, axis: int) -> Tensor:
    """``x`` cut down to ``shape`` on every axis but ``axis``."""
    from graphc.ops.indexing import getitem
    index = tuple(slice(None) if d == axis or n == m else slice(0, m)
                  for d, (n, m) in enumerate(zip(x.shape, shape, strict=True)))
    return getitem(x, index)


def _gather(x: Tensor, indices: Tensor, axis: int) -> Tensor:
    from graphc.ops.indexing import take_along_axis
    return take_along_axis(x, indices, axis)


_scatter = ScatterElements()


def scatter_elements(data: Any, indices: Any, updates: Any, axis: int = 0,
                     reduction: str = "none") -> Tensor:
    """``data`` with ``updates`` written at ``indices`` along ``axis`` (ONNX
    ``ScatterElements``).

    Parameters
    ----------
    data : Tensor
    indices : Tensor or array of ints
        ``data``'s number of dims; no larger than ``data`` on the other axes. Negative
        indices count from the end; out-of-range ones are an error at run time.
    updates : Tensor
        ``indices``' shape, ``data``'s dtype.
    axis : int
    reduction : "none", "add", "mul", "max" or "min"
        How an update combines with the value there; with ``"none"`` and repeated
        indices the last update (in row-major order) wins.

    Returns
    -------
    Tensor
        ``data``'s shape and dtype. Differentiable for ``"none"`` and ``"add"``.
    """
    data = as_tensor(data)
    indices = as_tensor(indices if isinstance(indices, Tensor) else np.asarray(indices))
    updates = as_tensor(updates, data)
    with checked_arguments("scatter_elements", data, indices, updates):
        axis = normalize_axis(axis, data.ndim)
    return _scatter(data, indices, updates, axis=axis, reduction=reduction)


__all__ = ["scatter_elements"]
