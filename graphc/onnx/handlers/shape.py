"""ONNX shape, construction and indexing ops as graphc graph.

Shapes, axes, pads, repeats and counts must be known at import (``node.value``); the
data itself may be graph. Everything is composed of graphc ops (``reshape``,
``transpose``, ``getitem``, ``pad``, ``take``, ``take_along_axis``, ``where``), so it
runs on every backend and differentiates, except the scatters, which use
``gx.scatter_elements`` (``graphc.ops.scatter``). ``GatherND`` and ``ScatterND`` flatten
the indexed leading axes into one and go through ``take`` / ``scatter_elements``;
each index component is first passed through ``take(arange(n), i)``, which
normalizes negative indices and fails at run time on an out-of-range one (a flat
index alone could silently land on another element).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

import graphc as gx
from graphc.onnx import dtypes
from graphc.onnx.registry import handler
from graphc.tensor import Tensor
from graphc.types import normalize_axis

# -- helpers ------------------------------------------------------------------------------------


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _axes(axes: Sequence[int], ndim: int) -> list[int]:
    """``axes`` made non-negative, in their given order (they pair with other lists)."""
    out = [normalize_axis(int(a), ndim) for a in axes]
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {list(axes)}")
    return out


def _static(node, shape: Sequence, what: str) -> tuple[int, ...]:
    """``shape`` as ints, or an import error saying ``what`` needs static dims."""
    if not all(isinstance(n, int) for n in shape):
        raise node.unsupported(f"{what} with symbolic dims {tuple(shape)}")
    return tuple(shape)


def _axes_input_or_attr(node, since: int, index: int = 1) -> list[int] | None:
    """``axes``: an attribute before opset ``since``, an optional input from it on."""
    if node.opset < since:
        axes = node.attr("axes")
        return None if axes is None else list(axes)
    return _ints(node.value(index)) if node.has(index) else None


def _move_last_axis(y: Tensor, axis: int) -> Tensor:
    """The last axis of ``y`` moved to position ``axis`` (already normalized)."""
    perm = list(range(y.ndim - 1))
    perm.insert(axis, y.ndim - 1)
    return gx.transpose(y, perm) if axis != y.ndim - 1 else y


# -- reshaping ----------------------------------------------------------------------------------


def _reshape(node, shape: list[int]) -> Tensor:
    x = node.input(0)
    allowzero = node.attr("allowzero", 0)
    if allowzero and 0 in shape and -1 in shape:
        raise node.error("allowzero=1 with both 0 and -1 in the shape is invalid")
    target = [x.shape[i] if (d == 0 and not allowzero) else d for i, d in enumerate(shape)]
    return gx.reshape(x, tuple(target))


@handler("Reshape", since=1)
def reshape_v1(node):
    return _reshape(node, list(node.attr("shape", [])))


@handler("Reshape", since=5)
def reshape(node):
    return _reshape(node, _ints(node.value(1)))


@handler("Flatten", since=1)
def flatten(node):
    x = node.input(0)
    axis = node.attr("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        raise node.error(f"axis {node.attr('axis')} is out of range for rank {x.ndim}")
    head, tail = x.shape[:axis], x.shape[axis:]
    if all(isinstance(n, int) for n in head):
        return gx.reshape(x, (math.prod(head), -1))
    if all(isinstance(n, int) for n in tail):
        return gx.reshape(x, (-1, math.prod(tail)))
    raise node.unsupported(f"flattening symbolic dims on both sides of axis {axis}")


@handler("Squeeze", since=1)
def squeeze(node):
    axes = _axes_input_or_attr(node, 13)
    return gx.squeeze(node.input(0), None if axes is None else tuple(axes))


@handler("Unsqueeze", since=1)
def unsqueeze(node):
    axes = _axes_input_or_attr(node, 13)
    if axes is None:
        raise node.error("axes are required")
    return gx.expand_dims(node.input(0), tuple(axes))


@handler("Transpose", since=1)
def transpose(node):
    perm = node.attr("perm")
    return gx.transpose(node.input(0), None if perm is None else list(perm))


@handler("Concat", since=1)
def concat(node):
    tensors = [node.input(i) for i in range(len(node.inputs)) if node.has(i)]
    axis = node.attr("axis", 1 if node.opset < 4 else None)
    if axis is None:
        raise node.error("attribute axis is required")
    return gx.concatenate(tensors, axis=axis)


@handler("Split", since=1)
def split(node):
    x = node.input(0)
    axis = normalize_axis(node.attr("axis", 0), x.ndim)
    n = x.shape[axis]
    if node.opset >= 13 or (node.opset < 2 and node.has(1)):
        sizes = _ints(node.value(1)) if node.has(1) else None
    else:
        sizes = node.attr("split")
    if sizes is None:
        parts = node.attr("num_outputs") if node.opset >= 18 else None
        parts = parts or node.n_outputs
        if not isinstance(n, int):
            raise node.unsupported(f"splitting the symbolic axis {n!r} into equal parts")
        chunk = -(-n // parts)  # ceil: the last part is smaller when n does not divide
        sizes = [max(0, min(chunk, n - k * chunk)) for k in range(parts)]
    if len(sizes) != node.n_outputs:
        raise node.error(f"{len(sizes)} split sizes for {node.n_outputs} outputs")
    if isinstance(n, int) and sum(sizes) != n:
        raise node.error(f"split sizes {sizes} do not add up to the axis size {n}")
    bounds = np.cumsum(sizes)[:-1].tolist()
    return tuple(gx.split(x, bounds, axis=axis))


# -- slicing and padding ------------------------------------------------------------------------


def _onnx_slice(n, start: int, end: int, step: int) -> slice:
    """ONNX's clamped slice of an axis of ``n`` as a Python slice (for symbolic ``n``
    the bounds are Python's, which agree except for out-of-range negative-step starts)."""
    if not isinstance(n, int):
        return slice(start, end, step)
    start = start + n if start < 0 else start
    end = end + n if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), n), min(max(end, 0), n)
        return slice(start, end, step)
    start, end = min(max(start, 0), n - 1), min(max(end, -1), n - 1)
    return slice(start, None if end < 0 else end, step)


def _slice(node, x: Tensor, starts, ends, axes, steps) -> Tensor:
    axes = list(range(len(starts))) if axes is None else _axes(axes, x.ndim)
    steps = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise node.error("starts, ends, axes and steps must have one length")
    index = [slice(None)] * x.ndim
    for a, s, e, k in zip(axes, starts, ends, steps, strict=True):
        if k == 0:
            raise node.error("a step cannot be 0")
        index[a] = _onnx_slice(x.shape[a], int(s), int(e), int(k))
    return gx.getitem(x, tuple(index))


@handler("Slice", since=1)
def slice_v1(node):
    return _slice(node, node.input(0), node.attr("starts"), node.attr("ends"),
                  node.attr("axes"), None)


@handler("Slice", since=10)
def slice_(node):
    def optional(i):
        return _ints(node.value(i)) if node.has(i) else None
    return _slice(node, node.input(0), _ints(node.value(1)), _ints(node.value(2)),
                  optional(3), optional(4))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _pad(node, pads: list[int], mode: str, value, axes: list[int] | None) -> Tensor:
    x = node.input(0)
    if mode not in _PAD_MODES:
        raise node.unsupported(f"mode={mode!r}")
    axes = list(range(x.ndim)) if axes is None else _axes(axes, x.ndim)
    if len(pads) != 2 * len(axes):
        raise node.error(f"{len(pads)} pads for {len(axes)} axes")
    widths = [[0, 0] for _ in range(x.ndim)]
    for k, a in enumerate(axes):
        widths[a] = [pads[k], pads[k + len(axes)]]
    # negative pads crop first
    crop = tuple(slice(max(-b, 0), -max(-e, 0) or None) for b, e in widths)
    x = gx.getitem(x, crop)
    widths = [(max(b, 0), max(e, 0)) for b, e in widths]
    if mode != "constant":
        return gx.pad(x, widths, mode=_PAD_MODES[mode])
    value = 0 if value is None else np.asarray(value).reshape(-1)[0].item()
    return gx.pad(x, widths, constant_values=value)


@handler("Pad", since=1)
def pad_v1(node):
    pads = node.attr("pads" if node.opset >= 2 else "paddings")
    return _pad(node, list(pads), node.attr("mode", "constant"), node.attr("value", 0.0), None)


@handler("Pad", since=11)
def pad(node):
    value = node.value(2) if node.has(2) else None
    axes = _ints(node.value(3)) if node.has(3) else None
    return _pad(node, _ints(node.value(1)), node.attr("mode", "constant"), value, axes)


@handler("CenterCropPad", since=18)
def center_crop_pad(node):
    x = node.input(0)
    shape = _ints(node.value(1))
    axes = node.attr("axes")
    axes = list(range(x.ndim)) if axes is None else _axes(axes, x.ndim)
    index, widths = [slice(None)] * x.ndim, [(0, 0)] * x.ndim
    for a, size in zip(axes, shape, strict=True):
        n = _static(node, (x.shape[a],), "CenterCropPad")[0]
        if size < n:  # crop: the extra element (odd difference) comes off the end
            index[a] = slice((n - size) // 2, (n - size) // 2 + size)
        elif size > n:
            widths[a] = ((size - n) // 2, size - n - (size - n) // 2)
    return gx.pad(gx.getitem(x, tuple(index)), widths)


# -- broadcasting and repeating -----------------------------------------------------------------


@handler("Expand", since=8)
def expand(node):
    x = node.input(0)
    shape = _ints(node.value(1))
    rank = max(len(shape), x.ndim)
    dims = [1] * (rank - x.ndim) + list(x.shape)
    shape = [1] * (rank - len(shape)) + shape
    out = []
    for d, s in zip(dims, shape, strict=True):  # bidirectional: 1 on either side stretches
        if s == 1 or d == s:
            out.append(d)
        elif d == 1:
            out.append(s)
        else:
            raise node.error(f"shape {shape} does not broadcast with {tuple(x.shape)}")
    return gx.broadcast_to(x, tuple(out))


@handler("Tile", since=6)
def tile(node):
    x = node.input(0)
    repeats = _ints(node.value(1))
    if len(repeats) != x.ndim:
        raise node.error(f"{len(repeats)} repeats for rank {x.ndim}")
    if all(r == 1 for r in repeats):
        return x
    # (r0, d0, r1, d1, ...) broadcast, then merged pairwise: out[i*d + j] = x[j]
    inter = [v for n in x.shape for v in (1, n)]
    wide = [v for r, n in zip(repeats, x.shape, strict=True) for v in (r, n)]
    for r, n in zip(repeats, x.shape, strict=True):
        if r != 1 and not isinstance(n, int):
            raise node.unsupported(f"repeating the symbolic dim {n!r}")
    out = [n if r == 1 else r * n for r, n in zip(repeats, x.shape, strict=True)]
    return gx.reshape(gx.broadcast_to(gx.reshape(x, tuple(inter)), tuple(wide)), tuple(out))


# -- shapes and constants -----------------------------------------------------------------------


@handler("Shape", since=1)
def shape(node):
    x = node.input(0)
    start, end = node.attr("start", 0), node.attr("end", None)
    dims = list(x.shape)[slice(start, end)]
    if all(isinstance(n, int) for n in dims):
        return np.array(dims, dtype=np.int64)
    axes = list(range(x.ndim))[slice(start, end)]
    return gx.stack([gx.reshape(gx.size(x, a), ()) if isinstance(x.shape[a], str)
                     else gx.constant(np.int64(x.shape[a])) for a in axes])


@handler("Size", since=1)
def size(node):
    n = gx.size(node.input(0))
    return np.array(n, dtype=np.int64) if isinstance(n, int) else n


@handler("ConstantOfShape", since=9)
def constant_of_shape(node):
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    return np.full(tuple(_ints(node.value(0))), value.reshape(-1)[0], dtype=value.dtype)


_CONSTANT_FIELDS = {"value_float": np.float32, "value_floats": np.float32,
                    "value_int": np.int64, "value_ints": np.int64}


@handler("Constant", since=1)
def constant(node):
    for name in ("sparse_value", "value_string", "value_strings"):
        if name in node.attrs:
            raise node.unsupported(f"attribute {name}")
    if "value" in node.attrs:
        return np.asarray(node.attr("value"))
    for name, dtype in _CONSTANT_FIELDS.items():
        if name in node.attrs:
            return np.asarray(node.attr(name), dtype=dtype)
    raise node.error("no value attribute")


@handler("Range", since=11)
def range_(node):
    start, limit, delta = (node.value(i) for i in range(3))
    dtype = start.dtype
    stash = node.attr("stash_type")
    if stash is not None and dtype == np.float16:  # computed in float32/64, rounded after
        wide = dtypes.to_graphc(stash)
        return np.arange(start.astype(wide).item(), float(limit), float(delta),
                         dtype=wide).astype(dtype)
    return np.arange(start.item(), limit.item(), delta.item()).astype(dtype)


@handler("EyeLike", since=9)
def eye_like(node):
    n, m = _static(node, node.shape(0), "EyeLike")
    code = node.attr("dtype")
    dtype = node.dtype(0) if code is None else dtypes.to_graphc(code)
    return np.eye(n, m, node.attr("k", 0), dtype=dtype)


# -- gathering ----------------------------------------------------------------------------------


@handler("Gather", since=1)
def gather(node):
    return gx.take(node.input(0), node.input(1), axis=node.attr("axis", 0))


@handler("ArrayFeatureExtractor", since=1, domain="ai.onnx.ml")
def array_feature_extractor(node):
    """``x[..., indices]`` with the indices flattened; a vector gives one row (as
    onnxruntime)."""
    x, indices = node.input(0), gx.reshape(node.input(1), (-1,))
    picked = gx.take(x, indices, axis=-1)
    return gx.expand_dims(picked, 0) if x.ndim == 1 else picked


@handler("GatherElements", since=11)
def gather_elements(node):
    x, indices = node.input(0), node.input(1)
    axis = normalize_axis(node.attr("axis", 0), x.ndim)
    if indices.ndim != x.ndim:
        raise node.error(f"indices have rank {indices.ndim}, data {x.ndim}")
    # indices may be shorter than the data on the other axes (no broadcasting in ONNX)
    crop = tuple(slice(None) if d == axis or n == m else slice(0, m)
                 for d, (n, m) in enumerate(zip(x.shape, indices.shape, strict=True)))
    return gx.take_along_axis(gx.getitem(x, crop), indices, axis)


def _flat_index(node, indices: Tensor, dims: Sequence[int]) -> Tensor:
    """Row-major flat index (int64) of ``indices[..., :len(dims)]`` into ``dims``, each
    component normalized and bounds-checked by ``take(arange(n), i)``."""
    strides = np.cumprod([1, *dims[::-1]])[:-1][::-1]
    flat = None
    for j, (n, stride) in enumerate(zip(dims, strides, strict=True)):
        component = gx.getitem(indices, (Ellipsis, j))
        term = gx.take(gx.constant(np.arange(n, dtype=np.int64)), component) * int(stride)
        flat = term if flat is None else flat + term
    return flat


def _nd_parts(node, data: Tensor, indices: Tensor, batch: int):
    k = indices.shape[-1]
    if not isinstance(k, int) or k < 1 or batch + k > data.ndim:
        raise node.error(f"indices' last dim {k!r} does not fit data rank {data.ndim}")
    dims = _static(node, data.shape[batch:batch + k], node.op_type)
    return k, dims


@handler("GatherND", since=11)
def gather_nd(node):
    data, indices = node.input(0), node.input(1)
    batch = node.attr("batch_dims", 0)
    k, dims = _nd_parts(node, data, indices, batch)
    flat = _flat_index(node, indices, dims)  # (*batch, *q)
    rest = data.shape[batch + k:]
    if batch == 0:
        return gx.take(gx.reshape(data, (math.prod(dims), *rest)), flat, axis=0)
    batch_dims = _static(node, data.shape[:batch], "GatherND batch_dims")
    count = math.prod(batch_dims)
    q = indices.shape[batch:-1]
    # batch b's rows start at b * prod(dims) in data reshaped to (B * prod(dims), *rest)
    offsets = (np.arange(count, dtype=np.int64) * math.prod(dims)).reshape(
        batch_dims + (1,) * len(q))
    rows = gx.take(gx.reshape(data, (count * math.prod(dims), *rest)), flat + offsets, axis=0)
    return rows


# -- scattering ---------------------------------------------------------------------------------


@handler("Scatter", since=9)
def scatter(node):
    return gx.scatter_elements(node.input(0), node.input(1), node.input(2),
                               axis=node.attr("axis", 0))


@handler("ScatterElements", since=11)
def scatter_elements(node):
    return gx.scatter_elements(node.input(0), node.input(1), node.input(2),
                               axis=node.attr("axis", 0),
                               reduction=node.attr("reduction", "none"))


@handler("ScatterND", since=11)
def scatter_nd(node):
    data, indices, updates = node.input(0), node.input(1), node.input(2)
    reduction = node.attr("reduction", "none")
    k, dims = _nd_parts(node, data, indices, 0)
    flat = _flat_index(node, indices, dims)  # (*q)
    rest = _static(node, data.shape[k:], "ScatterND")
    q = _static(node, indices.shape[:-1], "ScatterND")
    width, count = math.prod(rest), math.prod(q)
    # data as (prod(dims), width) rows; each index writes a whole row
    rows = gx.broadcast_to(gx.reshape(flat, (count, 1)), (count, width))
    out = gx.scatter_elements(gx.reshape(data, (math.prod(dims), width)), rows,
                              gx.reshape(updates, (count, width)), axis=0, reduction=reduction)
    return gx.reshape(out, data.shape)


@handler("OneHot", since=9)
def one_hot(node):
    indices, values = node.input(0), node.input(2)
    depth = int(np.asarray(node.value(1)).reshape(-1)[0])
    if indices.dtype not in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                             "uint64"):
        indices = gx.cast(indices, "int64")  # ONNX casts float indices to int
    if indices.dtype[0] == "i":  # negative indices count from the end
        indices = gx.where(indices < 0, indices + depth, indices)
    hot = gx.one_hot(indices, depth, dtype="bool")
    off, on = gx.getitem(values, 0), gx.getitem(values, 1)
    axis = normalize_axis(node.attr("axis", -1), indices.ndim + 1)
    return _move_last_axis(gx.where(hot, on, off), axis)


# -- masks and rearrangements -------------------------------------------------------------------


@handler("Trilu", since=14)
def trilu(node):
    x = node.input(0)
    k = int(np.asarray(node.value(1)).reshape(-1)[0]) if node.has(1) else 0
    n, m = _static(node, x.shape[-2:], "Trilu")
    ones = np.ones((n, m), dtype=bool)
    keep = np.triu(ones, k) if node.attr("upper", 1) else np.tril(ones, k)
    return gx.where(gx.constant(keep), x, gx.zeros_like(x))


@handler("DepthToSpace", since=1)
def depth_to_space(node):
    x = node.input(0)
    bs = node.attr("blocksize")
    b, c, h, w = x.shape
    c, h, w = _static(node, (c, h, w), "DepthToSpace")
    mode = node.attr("mode", "DCR")
    if mode == "DCR":
        y = gx.transpose(gx.reshape(x, (b, bs, bs, c // (bs * bs), h, w)), (0, 3, 4, 1, 5, 2))
    elif mode == "CRD":
        y = gx.transpose(gx.reshape(x, (b, c // (bs * bs), bs, bs, h, w)), (0, 1, 4, 2, 5, 3))
    else:
        raise node.unsupported(f"mode={mode!r}")
    return gx.reshape(y, (b, c // (bs * bs), h * bs, w * bs))


@handler("SpaceToDepth", since=1)
def space_to_depth(node):
    x = node.input(0)
    bs = node.attr("blocksize")
    b, c, h, w = x.shape
    c, h, w = _static(node, (c, h, w), "SpaceToDepth")
    mode = node.attr("mode", "DCR")
    perm = {"DCR": (0, 3, 5, 1, 2, 4), "CRD": (0, 1, 3, 5, 2, 4)}.get(mode)
    if perm is None:
        raise node.unsupported(f"mode={mode!r}")
    y = gx.transpose(gx.reshape(x, (b, c, h // bs, bs, w // bs, bs)), perm)
    return gx.reshape(y, (b, c * bs * bs, h // bs, w // bs))


@handler("ReverseSequence", since=10)
def reverse_sequence(node):
    x, lengths = node.input(0), node.input(1)
    batch_axis, time_axis = node.attr("batch_axis", 1), node.attr("time_axis", 0)
    steps = _static(node, (x.shape[time_axis],), "ReverseSequence")[0]
    # source time of output time t in batch b: L_b - 1 - t while t < L_b, else t
    shape_t, shape_b = [1] * x.ndim, [1] * x.ndim
    shape_t[time_axis], shape_b[batch_axis] = steps, -1
    t = gx.constant(np.arange(steps, dtype=np.int64).reshape(shape_t))
    length = gx.reshape(gx.cast(lengths, "int64"), tuple(shape_b))
    source = gx.where(t < length, length - 1 - t, t)
    return gx.take_along_axis(x, source, time_axis)


# -- data-dependent selections (known at import) ----------------------------------------------


@handler("Compress", since=9)
def compress(node):
    x = node.input(0)
    keep = np.flatnonzero(np.asarray(node.value(1)).reshape(-1))
    axis = node.attr("axis")
    if axis is None:
        return gx.take(gx.reshape(x, (-1,)), keep, axis=0)
    return gx.take(x, keep, axis=axis)


@handler("NonZero", since=9)
def nonzero(node):
    return np.array(np.nonzero(node.value(0)), dtype=np.int64).reshape(
        np.ndim(node.value(0)), -1)


@handler("Dropout", since=1)
def dropout(node):
    x = node.input(0)
    ratio = node.attr("ratio", 0.5)
    if node.opset >= 12:
        ratio = float(np.asarray(node.value(1)).reshape(-1)[0]) if node.has(1) else 0.5
        training = bool(np.asarray(node.value(2)).reshape(-1)[0]) if node.has(2) else False
    else:
        training = node.opset < 7 and not node.attr("is_test", 0)
    if training and ratio != 0:
        raise node.unsupported("training-mode dropout (random; use gx.dropout in graphc)")
    if not node.wants_output(1):
        return x
    mask_dtype = "bool" if node.opset >= 10 else x.dtype
    return x, gx.full_like(x, 1, mask_dtype)
