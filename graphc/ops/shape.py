"""Shape ops: reshape, transpose, broadcasting, indexing, joining, splitting and padding.

Attributes named ``shape`` may hold symbolic dims; backends resolve them from the
sizes bound when the compiled function checks its arguments.

Slicing and padding symbolic dims
---------------------------------
A slice of a symbolic dim ``n`` has a size that follows Python's slice rules at
run time. Its static type is chosen so that it is never silently wrong:

* a slice whose bounds do not depend on ``n`` (``x[1:3]``, ``x[:4]``, ``x[-2:]``,
  ``x[-1:-4:-1]``) gets the **static** size it has whenever ``n`` is large enough;
  the op checks at run time that it really produced that many elements and raises
  (naming the node) otherwise;
* the full slice (``x[:]``, ``x[::-1]``) keeps ``n``;
* a slice whose size grows with ``n`` gets a **derived** dim named after that size:
  ``n-k`` (``x[1:]``, ``x[:-1]`` both give ``"n-1"``, so ``x[1:] - x[:-1]``
  broadcasts), ``n/s`` or ``(n-k)/s`` for a step ``s`` (``/`` is ceiling division);
  padding adds the other way (``"n+2"``) and cancels (``pad`` of ``"n-2"`` by 2 is
  ``n`` again). A derived product such as ``"n*4"`` is written ``(n·4)`` inside
  such a name so that products still split on ``*``. Bounds of mixed sign with a
  negative start (``x[-5:3]``) get an opaque name spelling the slice (``"n[-5:3]"``).

The numpy backend binds a derived dim when the node that creates it runs (the op
is passed the call's ``dims``): its size is then known to every node downstream,
and a later node deriving the same name checks that it agrees. Concatenation
needs static sizes along the joined axis; other axes may be symbolic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.errors import GraphcTypeError, user_location
from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor
from graphc.types import (
    INT_DTYPES,
    Dim,
    Shape,
    TensorType,
    as_dtype,
    as_shape,
    broadcast_shapes,
    format_shape,
    normalize_axes,
    normalize_axis,
    promote_types,
    resolve_dim,
    shape_size,
)


class checked_arguments:  # noqa: N801 - used as a function: ``with checked_arguments(...)``
    """Report a ``ValueError``/``TypeError`` raised while normalising ``op``'s arguments
    (a bad axis, a bad index) as a ``GraphcTypeError`` naming the op and its input types.

    A class rather than ``contextlib.contextmanager``, so that the user's line is found
    by walking out of graphc's own frames.
    """

    def __init__(self, op: str, *inputs: Tensor) -> None:
        self.op, self.inputs = op, inputs

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, tb: Any) -> None:
        if isinstance(error, GraphcTypeError) or not isinstance(error, TypeError | ValueError):
            return
        raise GraphcTypeError(self.op, str(error), tuple(t.type for t in self.inputs),
                              user_location()) from None


def as_result_shape(shape: Any) -> Shape:
    """``types.as_shape``, also accepting the dims that slicing and padding derive at run
    time (``"n-1"``, ``"n/2"``), read off other tensors' shapes."""
    dims = (shape,) if isinstance(shape, int | str) else tuple(shape)
    runtime = {k for k, d in enumerate(dims) if isinstance(d, str) and _RUNTIME_DIM.search(d)}
    checked = list(as_shape(tuple("_" if k in runtime else d for k, d in enumerate(dims))))
    for k in runtime:
        checked[k] = dims[k]
    return tuple(checked)


# -- derived dims (see the module docstring) ---------------------------------------------------

_OFFSET = re.compile(r"(.+?)([+-]\d+)")
_RUNTIME_DIM = re.compile(r"[-+/()\[\]·]")  # characters only run-time derived dims hold
_WRAPPED_PRODUCT = re.compile(r"\(([^()]*·[^()]*)\)")


def _atom(dim: str) -> str:
    """``dim`` as one factor of a product: a derived product ``a*b`` becomes ``(a·b)``."""
    return f"({dim.replace('*', '·')})" if "*" in dim else dim


def _unatom(dim: str) -> str:
    product = _WRAPPED_PRODUCT.fullmatch(dim)
    return product[1].replace("·", "*") if product else dim


def offset_dim(dim: Dim, delta: int) -> Dim:
    """The size ``dim + delta``: an int, ``dim`` itself, or a derived name ``"n-1"``."""
    if isinstance(dim, int):
        return dim + delta
    match = _OFFSET.fullmatch(dim)
    base, offset = (match[1], int(match[2])) if match else (_atom(dim), 0)
    offset += delta
    return _unatom(base) if offset == 0 else f"{base}{offset:+d}"


def _ceil_div_dim(dim: Dim, step: int) -> Dim:
    """``ceil(dim / step)`` for a positive ``step``."""
    if step == 1:
        return dim
    if isinstance(dim, int):
        return -(-dim // step)
    return f"{dim}/{step}" if dim.isidentifier() else f"({dim.replace('*', '·')})/{step}"


def _endpoint(value: int | None, default: tuple[str, int]) -> tuple[str, int]:
    """A slice bound over a symbolic size ``n``: ``("abs", c)`` is ``c``, ``("end", c)`` is
    ``n - c``."""
    if value is None:
        return default
    return ("abs", value) if value >= 0 else ("end", -value)


def slice_length(n: Dim, start: int | None, stop: int | None, step: int | None) -> Dim:
    """How many elements ``range(n)[start:stop:step]`` has, for a static or symbolic ``n``."""
    if isinstance(n, int):
        return len(range(*slice(start, stop, step).indices(n)))
    step = 1 if step is None else step
    if step > 0:
        hi, lo = _endpoint(stop, ("end", 0)), _endpoint(start, ("abs", 0))
    else:  # counting down from start to just above stop; "abs -1" is "below index 0"
        hi, lo = _endpoint(start, ("end", 1)), _endpoint(stop, ("abs", -1))
    if hi[0] == lo[0]:  # n cancels: the size is static once n is large enough
        span = hi[1] - lo[1] if hi[0] == "abs" else lo[1] - hi[1]
        return max(0, -(-span // abs(step)))
    if hi[0] == "end":  # (n - c) - b
        return _ceil_div_dim(offset_dim(n, -(hi[1] + lo[1])), abs(step))
    spelled = ":".join("" if v is None else str(v) for v in (start, stop))
    return f"{_atom(n)}[{spelled}{'' if step == 1 else f':{step}'}]"


class BindsDims(Op):
    """An op whose result may hold a dim known only at run time (a slice or a padding of a
    symbolic dim). The numpy backend passes it the call's ``dims``: it checks the dims it
    promised and binds the derived ones for the nodes downstream."""

    def binds_dims(self, node: Tensor) -> tuple[str, ...]:
        """The symbolic dims of ``node``'s type that its inputs' types do not hold: known
        once it has run (the graph check counts them as bound from there on)."""
        known = {d for i in node.inputs for d in i.shape if isinstance(d, str)}
        return tuple(d for d in node.shape if isinstance(d, str) and d not in known)

    def emit(self, args: list[str], attrs: dict[str, str]) -> str:
        params = [*args, *(f"{k}={v}" for k, v in attrs.items()), "dims=dims"]
        return f"{self.name}({', '.join(params)})"


def _check_result_shape(out: np.ndarray, declared: Shape, dims: dict | None) -> np.ndarray:
    for axis, (want, got) in enumerate(zip(declared, out.shape, strict=True)):
        if isinstance(want, str) and dims is not None:
            try:
                want = resolve_dim(want, dims)
            except KeyError:  # a derived dim this node creates: bind it
                dims[want] = got
                continue
        if isinstance(want, int) and want != got:
            raise ValueError(f"the result has {got} elements along axis {axis} where the graph "
                             f"was built for {want} (a slice or padding of a symbolic dim that "
                             "is too small at run time)")
    return out


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
        return _check_result_shape(np.asarray(x[numpy_index(index)]), out_shape, dims)


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
        x, axis = reshape(x, (-1,)), 0
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
        x, axis = reshape(x, (-1,)), 0
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
        return _check_result_shape(out, out_shape, dims)


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
        x = _take(x, as_tensor(source), axis=axis)
    return x


__all__ = [
    "reshape", "transpose", "permute", "broadcast_to", "expand_dims", "squeeze",
    "concatenate", "stack", "split", "getitem", "take", "take_along_axis", "one_hot", "pad",
]
