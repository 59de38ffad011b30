"""Indexing ops: ``x[...]`` basic indexing, ``take``, ``take_along_axis`` and ``one_hot``.

Slices of symbolic dims get the static or derived sizes described in
``graphc.ops._dims``; the op checks or binds them when it runs. Advanced indexing
(arrays as indices) is spelled ``take`` / ``take_along_axis``, whose gradients
scatter-add back (repeated indices accumulate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.errors import GraphcTypeError, user_location
from graphc.ops._dims import BindsDims, check_result_shape, checked_arguments, slice_length
from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor
from graphc.types import (
    INT_DTYPES,
    Dim,
    Shape,
    TensorType,
    as_dtype,
    broadcast_shapes,
    format_shape,
    normalize_axis,
)

# -- basic indexing ----------------------------------------------------------------------------

IndexEntry = int | None | tuple[int | None, int | None, int | None]


class GetItem(BindsDims):
    """``x[index]`` with NumPy basic indexing. ``index`` holds one entry per input axis
    (an int or a ``(start, stop, step)`` triple) plus ``None`` for each new axis."""

    name = "getitem"

    def infer(self, inputs, *, index, out_shape):
        shape = index_result_shape(inputs[0].shape, index)
        if shape != out_shape:
            raise ValueError(f"index result {format_shape(shape)} is not the declared "
                             f"{format_shape(out_shape)}")
        return TensorType(shape, inputs[0].dtype)

    def vjp(self, node, g):
        return (_slice_scatter(g, node.inputs[0], index=node.attr["index"]),)

    def impl(self, x, *, index, out_shape, dims=None):
        return check_result_shape(np.asarray(x[numpy_index(index)]), out_shape, dims)


class SliceScatter(Op):
    """Zeros of ``like``'s (run-time) shape with ``g`` written at ``index``: the adjoint of
    ``getitem``. ``like`` gives only its shape."""

    name = "slice_scatter"

    def infer(self, inputs, *, index):
        g, like = inputs
        if index_result_shape(like.shape, index) != g.shape:
            raise ValueError(f"{format_shape(g.shape)} does not fit index {index} of "
                             f"{format_shape(like.shape)}")
        return TensorType(like.shape, g.dtype)

    def vjp(self, node, g):
        g_in, like = node.inputs
        return (_getitem(g, index=node.attr["index"], out_shape=g_in.shape), None)

    def impl(self, g, like, *, index):
        out = np.zeros(np.shape(like), np.asarray(g).dtype)
        out[numpy_index(index)] = g
        return out


_getitem, _slice_scatter = GetItem(), SliceScatter()


def numpy_index(index: tuple[IndexEntry, ...]) -> tuple:
    """The NumPy index an attribute ``index`` stands for."""
    return tuple(slice(*e) if isinstance(e, tuple) else e for e in index)


def index_result_shape(shape: Shape, index: tuple[IndexEntry, ...]) -> Shape:
    """The shape of ``x[index]`` for ``x`` of ``shape``; raises on an int out of range."""
    out: list[Dim] = []
    axis = 0
    for entry in index:
        if entry is None:
            out.append(1)
            continue
        if axis >= len(shape):
            raise ValueError(f"too many indices for shape {format_shape(shape)}")
        n = shape[axis]
        if isinstance(entry, int):
            if isinstance(n, int) and not -n <= entry < n:
                raise ValueError(f"index {entry} is out of range for axis {axis} of size {n} "
                                 f"(shape {format_shape(shape)})")
        else:
            out.append(slice_length(n, *entry))
        axis += 1
    if axis != len(shape):
        raise ValueError(f"index {index} covers {axis} of {len(shape)} axes")
    return tuple(out)


def _index_entry(item: Any) -> IndexEntry:
    if item is None or isinstance(item, int | np.integer) and not isinstance(item, bool):
        return None if item is None else int(item)
    if isinstance(item, slice):
        bounds = (item.start, item.stop, item.step)
        if not all(b is None or isinstance(b, int | np.integer) and not isinstance(b, bool)
                   for b in bounds):
            raise TypeError(f"slice bounds must be ints or None, got {item}")
        if item.step == 0:
            raise ValueError("slice step cannot be zero")
        return tuple(None if b is None else int(b) for b in bounds)  # type: ignore[return-value]
    raise TypeError(f"advanced indexing with {type(item).__name__} is not supported; index with "
                    "ints, slices, None and ..., or use gx.take(x, indices, axis), "
                    "gx.take_along_axis or gx.where")


def normalize_index(index: Any, ndim: int) -> tuple[IndexEntry, ...]:
    """One entry per axis (``...`` expanded, trailing axes filled) plus ``None``s."""
    items = index if isinstance(index, tuple) else (index,)
    if sum(item is Ellipsis for item in items) > 1:
        raise ValueError("an index can only have a single ellipsis ('...')")
    entries = [None if item is Ellipsis else _index_entry(item) for item in items]
    used = sum(e is not None for e, item in zip(entries, items, strict=True)
               if item is not Ellipsis)
    if used > ndim:
        raise ValueError(f"too many indices ({used}) for {ndim} dims")
    fill = [(None, None, None)] * (ndim - used)
    if Ellipsis in items:
        at = next(k for k, item in enumerate(items) if item is Ellipsis)
        return tuple(entries[:at] + fill + entries[at + 1:])
    return tuple(entries + fill)


def getitem(x: Any, index: Any) -> Tensor:
    """``x[index]`` with NumPy basic indexing: ints, slices (any step), ``None`` and ``...``.

    An int out of range of a static dim is a build-time error; on a symbolic dim it is
    checked at run time. Slices of symbolic dims follow the module docstring. Arrays,
    lists and tensors as indices (advanced indexing) are refused: use ``gx.take``,
    ``gx.take_along_axis`` or ``gx.where``.
    """
    x = as_tensor(x)
    with checked_arguments("getitem", x):
        entries = normalize_index(index, x.ndim)
        out_shape = index_result_shape(x.shape, entries)
    if all(e == (None, None, None) or e == (None, None, 1) for e in entries):
        return x
    return _getitem(x, index=entries, out_shape=out_shape)


# -- gathering ---------------------------------------------------------------------------------


def _check_indices(indices: TensorType) -> None:
    if indices.dtype not in INT_DTYPES:
        raise TypeError(f"indices must be integers, got {indices.dtype}")


class Take(Op):
    """``np.take(x, indices, axis)``: the result has ``indices``' shape in place of ``axis``."""

    name = "take"

    def infer(self, inputs, *, axis):
        x, indices = inputs
        _check_indices(indices)
        return TensorType(x.shape[:axis] + indices.shape + x.shape[axis + 1:], x.dtype)

    def vjp(self, node, g):
        x, indices = node.inputs
        return (_take_scatter_add(g, indices, x, axis=node.attr["axis"]), None)

    def impl(self, x, indices, *, axis):
        return np.take(x, indices, axis=axis)


class TakeScatterAdd(Op):
    """Zeros of ``like``'s shape plus ``g`` added at ``indices`` along ``axis``
    (``np.add.at``: repeated indices accumulate): the adjoint of ``take``."""

    name = "take_scatter_add"

    def infer(self, inputs, *, axis):
        g, indices, like = inputs
        _check_indices(indices)
        return TensorType(like.shape, g.dtype)

    def vjp(self, node, g):
        _, indices, _ = node.inputs
        return (_take(g, indices, axis=node.attr["axis"]), None, None)

    def impl(self, g, indices, like, *, axis):
        out = np.zeros(np.shape(like), np.asarray(g).dtype)
        np.add.at(out, (slice(None),) * axis + (indices,), g)
        return out


class TakeAlongAxis(Op):
    """``np.take_along_axis(x, indices, axis)``: other axes broadcast against each other."""

    name = "take_along_axis"

    def infer(self, inputs, *, axis):
        x, indices = inputs
        _check_indices(indices)
        if x.ndim != indices.ndim:
            raise ValueError(f"indices need as many dims as x ({x.ndim}), got {indices.ndim}")
        return TensorType(_along_axis_shape(x.shape, indices.shape, axis, indices.shape[axis]),
                          x.dtype)

    def vjp(self, node, g):
        x, indices = node.inputs
        return (_take_along_axis_scatter_add(g, indices, x, axis=node.attr["axis"]), None)

    def impl(self, x, indices, *, axis):
        return np.take_along_axis(x, indices, axis=axis)


class TakeAlongAxisScatterAdd(Op):
    """``g`` added into zeros at ``indices`` along ``axis``: the adjoint of
    ``take_along_axis``. The result has ``g``'s shape with ``like``'s size along ``axis``
    (the autodiff driver sums it down where ``x`` was broadcast)."""

    name = "take_along_axis_scatter_add"

    def infer(self, inputs, *, axis):
        g, indices, like = inputs
        _check_indices(indices)
        return TensorType(_along_axis_shape(g.shape, indices.shape, axis, like.shape[axis]),
                          g.dtype)

    def vjp(self, node, g):
        _, indices, _ = node.inputs
        return (_take_along_axis(g, indices, axis=node.attr["axis"]), None, None)

    def impl(self, g, indices, like, *, axis):
        g = np.asarray(g)
        out = np.zeros(g.shape[:axis] + np.shape(like)[axis:axis + 1] + g.shape[axis + 1:],
                       g.dtype)
        where = list(np.indices(g.shape, sparse=True))
        where[axis] = np.broadcast_to(indices, g.shape)
        np.add.at(out, tuple(where), g)
        return out


def _along_axis_shape(x: Shape, indices: Shape, axis: int, size: Dim) -> Shape:
    others = broadcast_shapes(x[:axis] + (1,) + x[axis + 1:],
                              indices[:axis] + (1,) + indices[axis + 1:])
    return others[:axis] + (size,) + others[axis + 1:]


_take, _take_scatter_add = Take(), TakeScatterAdd()
_take_along_axis, _take_along_axis_scatter_add = TakeAlongAxis(), TakeAlongAxisScatterAdd()


def _as_indices(indices: Any) -> Tensor:
    indices = as_tensor(indices if isinstance(indices, Tensor) else np.asarray(indices))
    return indices


def _check_static_range(op: str, x: Tensor, indices: Tensor, axis: int) -> None:
    """Constant indices into a static axis are checked now rather than at run time."""
    n = x.shape[axis]
    if indices.op.name != "constant" or not isinstance(n, int) or indices.dtype not in INT_DTYPES:
        return
    values = indices.attr["value"].array
    if values.size and not (-n <= values.min() and values.max() < n):
        raise GraphcTypeError(op, f"indices {values.min()}..{values.max()} are out of range for "
                              f"axis {axis} of size {n}", (x.type, indices.type), user_location())


def take(x: Any, indices: Any, axis: int | None = None) -> Tensor:
    """Elements of ``x`` at integer ``indices`` along ``axis``, like ``np.take``.

    Parameters
    ----------
    x : Tensor
    indices : Tensor or array-like of ints
        Any shape; negative indices count from the end.
    axis : int, optional
        The axis to index; ``None`` indexes the flattened ``x``.

    Returns
    -------
    Tensor
        ``x.shape[:axis] + indices.shape + x.shape[axis+1:]``. Its gradient adds each
        cotangent back at its index (``np.add.at``), so repeated indices accumulate.
    """
    x, indices = as_tensor(x), _as_indices(indices)
    if axis is None:
        # the method, as graphc.ops.shape (which imports this module) cannot be imported here
        x, axis = x.reshape(-1), 0
    with checked_arguments("take", x, indices):
        axis = normalize_axis(axis, x.ndim)
    _check_static_range("take", x, indices, axis)
    return _take(x, indices, axis=axis)


def take_along_axis(x: Any, indices: Any, axis: int | None) -> Tensor:
    """``np.take_along_axis``: pick ``x[..., indices[..., j, ...], ...]`` along ``axis``.

    ``indices`` has ``x``'s number of dims; the other axes broadcast. With ``axis=None``
    ``x`` is flattened and ``indices`` must be 1-D. The usual use: the logit of each
    example's label, ``take_along_axis(logits, expand_dims(labels, -1), -1)``.
    """
    x, indices = as_tensor(x), _as_indices(indices)
    if axis is None:
        x, axis = x.reshape(-1), 0
    with checked_arguments("take_along_axis", x, indices):
        axis = normalize_axis(axis, x.ndim)
    _check_static_range("take_along_axis", x, indices, axis)
    return _take_along_axis(x, indices, axis=axis)


class OneHot(Op):
    name = "one_hot"
    differentiable = False

    def infer(self, inputs, *, depth, dtype):
        (labels,) = inputs
        _check_indices(labels)
        return TensorType(labels.shape + (depth,), dtype)

    def impl(self, labels, *, depth, dtype):
        return (np.expand_dims(labels, -1) == np.arange(depth)).astype(dtype)


_one_hot = OneHot()


def one_hot(labels: Any, depth: int, dtype: Any = "float32") -> Tensor:
    """``labels[..., None] == arange(depth)`` as ``dtype``: a row of zeros with a one at
    each label. A label outside ``[0, depth)`` (e.g. an ignored ``-100``) gives a row of
    zeros, as ``jax.nn.one_hot``."""
    labels = _as_indices(labels)
    with checked_arguments("one_hot", labels):
        if not isinstance(depth, int | np.integer) or depth < 0:
            raise ValueError(f"depth must be a non-negative int, got {depth!r}")
        dtype = as_dtype(dtype)
    return _one_hot(labels, depth=int(depth), dtype=dtype)


__all__ = ["getitem", "take", "take_along_axis", "one_hot"]
