"""Shape ops: reshape, transpose, broadcasting, joining, splitting and padding.

Attributes named ``shape`` may hold symbolic dims; backends resolve them from the
sizes bound when the compiled function checks its arguments. Padding a symbolic
dim derives a dim (``"n+2"``), as slicing does (see ``graphc.ops._dims``).
Concatenation needs static sizes along the joined axis; other axes may be symbolic.
Indexing (``x[...]``, ``take``, ``one_hot``) lives in ``graphc.ops.indexing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.ops._dims import (
    BindsDims,
    as_result_shape,
    check_result_shape,
    checked_arguments,
    offset_dim,
)
from graphc.ops.base import Op
from graphc.ops.indexing import getitem, take
from graphc.tensor import Tensor, as_tensor
from graphc.types import (
    Shape,
    TensorType,
    broadcast_shapes,
    format_shape,
    normalize_axes,
    normalize_axis,
    promote_types,
    shape_size,
)

# -- reshape, transpose, broadcast -------------------------------------------------------------


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
        return (transpose(g, tuple(int(a) for a in np.argsort(node.attr["axes"]))),)

    def impl(self, x, *, axes):
        return np.transpose(x, axes)


class BroadcastTo(Op):
    name = "broadcast_to"

    def infer(self, inputs, *, shape):
        (x,) = inputs
        if len(shape) < x.ndim or broadcast_shapes(x.shape, shape) != tuple(shape):
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
        raise ValueError(f"at most one -1 in {shape}")
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
    """Reshape to ``shape``; one dim may be ``-1``, and symbolic dims are allowed.

    Parameters
    ----------
    x : Tensor or array-like
    shape : int, str or sequence of them
        The new shape, of the same number of elements (``"batch*4"`` and ``"batch", 4``
        have the same size).
    """
    x = as_tensor(x)
    with checked_arguments("reshape", x):
        shape = tuple(shape) if not isinstance(shape, int | str) else (shape,)
        shape = as_result_shape(_resolve_minus_one(shape, x.shape))
    return x if shape == x.shape else _reshape(x, shape=shape)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (``axes[i]`` is the input axis that becomes axis ``i``); reverse them
    when ``axes`` is None."""
    x = as_tensor(x)
    with checked_arguments("transpose", x):
        if axes is None:
            axes = tuple(range(x.ndim))[::-1]
        else:
            axes = tuple(normalize_axis(int(a), x.ndim) for a in axes)
            if sorted(axes) != list(range(x.ndim)):
                raise ValueError(f"axes {axes} are not a permutation of {x.ndim} dims")
    return x if axes == tuple(range(x.ndim)) else _transpose(x, axes=axes)


def permute(x: Any, *axes: int | Sequence[int]) -> Tensor:
    """``transpose`` as torch spells it: ``permute(x, 2, 0, 1)`` or ``permute(x, (2, 0, 1))``."""
    if len(axes) == 1 and not isinstance(axes[0], int | np.integer):
        axes = tuple(axes[0])  # type: ignore[arg-type]
    return transpose(x, axes)


def broadcast_to(x: Any, shape: Any) -> Tensor:
    """Broadcast to ``shape`` (NumPy rules; symbolic dims allowed)."""
    x = as_tensor(x)
    with checked_arguments("broadcast_to", x):
        shape = as_result_shape(shape)
    return x if shape == x.shape else _broadcast_to(x, shape=shape)


def expand_dims(x: Any, axis: int | tuple[int, ...]) -> Tensor:
    """Insert size-1 axes at the positions ``axis`` of the result."""
    x = as_tensor(x)
    with checked_arguments("expand_dims", x):
        count = 1 if isinstance(axis, int | np.integer) else len(axis)
        axes = normalize_axes(axis, x.ndim + count)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, tuple(shape))


def squeeze(x: Any, axis: int | tuple[int, ...] | None = None) -> Tensor:
    """Remove size-1 axes: those in ``axis``, or every static 1 when ``axis`` is None.

    A symbolic dim is never squeezed (it is not known to be 1); naming it, or any
    axis whose size is not 1, is an error.
    """
    x = as_tensor(x)
    with checked_arguments("squeeze", x):
        if axis is None:
            axes = tuple(a for a, d in enumerate(x.shape) if d == 1)
        else:
            axes = normalize_axes(axis, x.ndim)
            bad = [a for a in axes if x.shape[a] != 1]
            if bad:
                raise ValueError(f"cannot squeeze axis {bad[0]} of shape "
                                 f"{format_shape(x.shape)}: its size is {x.shape[bad[0]]}, not 1")
    return reshape(x, tuple(d for a, d in enumerate(x.shape) if a not in axes))


# -- joining and splitting ---------------------------------------------------------------------


class Concatenate(Op):
    name = "concatenate"

    def infer(self, inputs, *, axis):
        if not inputs:
            raise ValueError("needs at least one tensor")
        first = inputs[0].shape
        if any(t.ndim != len(first) for t in inputs) or not 0 <= axis < len(first):
            raise ValueError(f"axis {axis} does not fit the shapes "
                             f"{', '.join(format_shape(t.shape) for t in inputs)}")
        for t in inputs:
            if any(d != e for a, (d, e) in enumerate(zip(t.shape, first, strict=True))
                   if a != axis):
                raise ValueError(f"shapes {format_shape(first)} and {format_shape(t.shape)} "
                                 f"differ off the joined axis {axis}")
            if not isinstance(t.shape[axis], int):
                raise ValueError(f"the joined axis {axis} must be static, got the symbolic "
                                 f"dim {t.shape[axis]!r}")
        size = sum(t.shape[axis] for t in inputs)
        shape = first[:axis] + (size,) + first[axis + 1:]
        return TensorType(shape, promote_types(*(t.dtype for t in inputs)))

    def vjp(self, node, g):
        axis, start, pieces = node.attr["axis"], 0, []
        for x in node.inputs:
            pieces.append(_slice_axis(g, axis, start, start + x.shape[axis]))
            start += x.shape[axis]
        return tuple(pieces)

    def impl(self, *xs, axis):
        return np.concatenate(xs, axis=axis)


_concatenate = Concatenate()


def _slice_axis(x: Tensor, axis: int, start: int | None, stop: int | None) -> Tensor:
    return getitem(x, (slice(None),) * axis + (slice(start, stop),))


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing ``axis`` (static there; other dims must match,
    symbolic ones by name). Dtypes promote as in NumPy."""
    tensors = [as_tensor(t) for t in tensors]
    if len(tensors) == 1:
        return tensors[0]
    with checked_arguments("concatenate", *tensors):
        if not tensors:
            raise ValueError("needs at least one tensor")
        axis = normalize_axis(axis, tensors[0].ndim)
    return _concatenate(*tensors, axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new ``axis``."""
    tensors = [as_tensor(t) for t in tensors]
    with checked_arguments("stack", *tensors):
        if not tensors:
            raise ValueError("needs at least one tensor")
        if any(t.shape != tensors[0].shape for t in tensors):
            raise ValueError("needs tensors of one shape")
        axis = normalize_axis(axis, tensors[0].ndim + 1)
    return concatenate([expand_dims(t, axis) for t in tensors], axis)


def split(x: Any, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Split along ``axis`` like ``numpy.split``: into ``n`` equal sections, or at the
    given indices. Each piece is a slice, so a piece no one uses gets zero gradient.

    A symbolic axis can be split at indices (the last piece gets a derived dim),
    not into sections.
    """
    x = as_tensor(x)
    with checked_arguments("split", x):
        axis = normalize_axis(axis, x.ndim)
        n = x.shape[axis]
        if isinstance(indices_or_sections, int | np.integer):
            sections = int(indices_or_sections)
            if not isinstance(n, int):
                raise ValueError(f"cannot split the symbolic axis {axis} ({n!r}) into "
                                 "sections; give split indices")
            if sections <= 0 or n % sections:
                raise ValueError(f"axis {axis} of size {n} does not split into {sections} "
                                 "equal sections")
            bounds = [k * (n // sections) for k in range(1, sections)]
        else:
            bounds = [int(i) for i in indices_or_sections]
    starts, stops = [None, *bounds], [*bounds, None]
    return [_slice_axis(x, axis, a, b) for a, b in zip(starts, stops, strict=True)]


# -- padding -----------------------------------------------------------------------------------


class Pad(BindsDims):
    """Constant padding: ``pad_width[axis] = (before, after)``."""

    name = "pad"

    def infer(self, inputs, *, pad_width, value, out_shape):
        (x,) = inputs
        shape = padded_shape(x.shape, pad_width)
        if shape != out_shape:
            raise ValueError(f"padded shape {format_shape(shape)} is not the declared "
                             f"{format_shape(out_shape)}")
        return TensorType(shape, x.dtype)

    def vjp(self, node, g):
        return (getitem(g, tuple(slice(b, -a if a else None) for b, a in node.attr["pad_width"])),)

    def impl(self, x, *, pad_width, value, out_shape, dims=None):
        out = np.pad(x, pad_width, mode="constant", constant_values=value)
        return check_result_shape(out, out_shape, dims)


_pad = Pad()


def padded_shape(shape: Shape, pad_width: tuple[tuple[int, int], ...]) -> Shape:
    return tuple(offset_dim(n, b + a) for n, (b, a) in zip(shape, pad_width, strict=True))


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: float = 0) -> Tensor:
    """Pad like ``np.pad``: ``pad_width`` is an int, a ``(before, after)`` pair, or one
    pair per axis.

    ``mode="constant"`` fills with ``constant_values`` (symbolic dims allowed); its
    gradient is the slice of the padded region's interior. ``"edge"``, ``"reflect"``,
    ``"symmetric"`` and ``"wrap"`` need static sizes on the padded axes: they gather
    along each axis with NumPy's own index pattern, so the gradient adds the copies back.
    """
    x = as_tensor(x)
    with checked_arguments("pad", x):
        widths = np.broadcast_to(np.asarray(pad_width), (x.ndim, 2))
        if widths.dtype.kind not in "iu" or (widths < 0).any():
            raise ValueError(f"pad widths must be non-negative ints, got {pad_width!r}")
        widths = tuple((int(b), int(a)) for b, a in widths)
        if mode not in _PAD_MODES:
            raise ValueError(f"mode must be one of {', '.join(_PAD_MODES)}, got {mode!r}")
        if mode != "constant":
            return _pad_by_gathering(x, widths, mode)
    if not any(b or a for b, a in widths):
        return x
    return _pad(x, pad_width=widths, value=float(constant_values),
                out_shape=padded_shape(x.shape, widths))


def _pad_by_gathering(x: Tensor, widths: tuple[tuple[int, int], ...], mode: str) -> Tensor:
    """Non-constant modes: along each padded axis, ``take`` with the indices NumPy's pad
    would copy from (``np.pad(arange(n), width, mode)``)."""
    for axis, (b, a) in enumerate(widths):
        if not (b or a):
            continue
        n = x.shape[axis]
        if not isinstance(n, int):
            raise ValueError(f"mode {mode!r} needs a static size on axis {axis}, got {n!r}")
        source = np.pad(np.arange(n), (b, a), mode=mode)  # type: ignore[call-overload]
        x = take(x, source, axis=axis)
    return x


__all__ = [
    "reshape", "transpose", "permute", "broadcast_to", "expand_dims", "squeeze",
    "concatenate", "stack", "split", "pad",
]
