"""ONNX nn ops as graphc graph: convolution, pooling, normalization, Gemm/MatMul/Einsum.

Convolutions and pools of any rank share one window helper: the input is padded, and
each kernel offset contributes one strided slice (``x_p[..., o·d : o·d + (n−1)·s + 1 : s]``),
so a window's K = Πk elements lie along a new axis 2 of shape (N, C, K, *out). Max / sum
/ contraction over that axis is the pool or the convolution. 1-D and 2-D convolutions go
through ``gx.conv2d`` (1-D on a unit height). Everything that depends only on shapes and
attributes (pads, output sizes, average divisors, argmax index tables) is NumPy at import.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

import graphc as gx
from graphc.onnx.registry import handler
from graphc.tensor import Tensor

# -- geometry ----------------------------------------------------------------------------------


def _static_spatial(node, i: int = 0) -> tuple[int, ...]:
    shape = node.shape(i)
    if len(shape) < 3:
        raise node.error(f"input {i} must be (N, C, *spatial), got shape {shape}")
    spatial = shape[2:]
    if not all(isinstance(d, int) for d in spatial):
        raise node.unsupported(f"symbolic spatial sizes {spatial}")
    return tuple(spatial)


def _ints(node, name: str, default: Sequence[int]) -> list[int]:
    value = node.attr(name)
    return [int(v) for v in value] if value is not None else list(default)


def _window_geometry(node, spatial: Sequence[int], kernel: Sequence[int],
                     ceil_mode: bool = False) -> tuple[list, list, list, list, list]:
    """(strides, dilations, pads_begin, pads_end, out) for a conv/pool node.

    NOTSET: out = ⌊(n + b + e − ((k−1)·d + 1)) / s⌋ + 1 (⌈·⌉ with ceil_mode, minus one
    when the last window would start in the end padding). VALID: no pads. SAME_*:
    out = ⌈n / s⌉ and the total pad (out−1)·s + (k−1)·d + 1 − n split with the odd
    pixel at the end (UPPER) or the beginning (LOWER).
    """
    nd = len(spatial)
    strides = _ints(node, "strides", [1] * nd)
    dilations = _ints(node, "dilations", [1] * nd)
    auto_pad = node.attr("auto_pad", "NOTSET") or "NOTSET"
    if len(strides) != nd or len(dilations) != nd or len(kernel) != nd:
        raise node.error(f"strides {strides}, dilations {dilations} and kernel {list(kernel)} "
                         f"must have one entry per spatial axis ({nd})")
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    if auto_pad == "NOTSET":
        pads = _ints(node, "pads", [0] * 2 * nd)
        if len(pads) != 2 * nd:
            raise node.error(f"pads {pads} must have 2 entries per spatial axis")
        begin, end = pads[:nd], pads[nd:]
        out = []
        for n, b, e, span, s in zip(spatial, begin, end, spans, strides, strict=True):
            extent = n + b + e - span
            o = (-(-extent // s) if ceil_mode else extent // s) + 1
            if ceil_mode and (o - 1) * s >= n + b:
                o -= 1
            out.append(o)
    elif auto_pad == "VALID":
        begin, end = [0] * nd, [0] * nd
        out = [(n - span) // s + 1 for n, span, s in zip(spatial, spans, strides, strict=True)]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-n // s) for n, s in zip(spatial, strides, strict=True)]
        totals = [max((o - 1) * s + span - n, 0)
                  for o, s, span, n in zip(out, strides, spans, spatial, strict=True)]
        small = [t // 2 for t in totals]
        large = [t - t // 2 for t in totals]
        begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    else:
        raise node.unsupported(f"attribute auto_pad={auto_pad!r}")
    if any(o < 1 for o in out):
        raise node.error(f"the kernel {list(kernel)} does not fit the input {list(spatial)}")
    return strides, dilations, begin, end, out


def _offsets(kernel: Sequence[int]) -> list[tuple[int, ...]]:
    """Kernel offsets in row-major order (the order of the window axis)."""
    return list(itertools.product(*(range(k) for k in kernel)))


def _slices(offset, strides, dilations, out) -> tuple[slice, ...]:
    return tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                 for o, s, d, n in zip(offset, strides, dilations, out, strict=True))


def _trailing_pad(spatial, kernel, strides, dilations, begin, out) -> list[int]:
    """End padding every window needs (≥ 0; ceil_mode windows may reach past the pads)."""
    return [max((o - 1) * s + (k - 1) * d + 1 - n - b, 0)
            for n, k, s, d, b, o in zip(spatial, kernel, strides, dilations, begin, out,
                                        strict=True)]


def _windows(x: Tensor, spatial, kernel, strides, dilations, begin, out,
             pad_value: float = 0.0) -> Tensor:
    """(N, C, K, *out): the K elements of every window, padding reading ``pad_value``."""
    end = _trailing_pad(spatial, kernel, strides, dilations, begin, out)
    if any(begin) or any(end):
        x = gx.pad(x, [(0, 0), (0, 0), *zip(begin, end, strict=True)],
                   constant_values=pad_value)
    lead = (slice(None), slice(None))
    parts = [gx.getitem(x, lead + _slices(off, strides, dilations, out))
             for off in _offsets(kernel)]
    return gx.stack(parts, axis=2)


def _reduce_windows(x: Tensor, reduce, spatial, kernel, strides, dilations, begin, out,
                    pad_value: float = 0.0) -> Tensor:
    """(N, C, *out): ``reduce(stack, axis)`` of every window, one spatial axis at a time.

    Max and sum over a box are separable, so axis by axis the graph holds Σ kᵢ window
    slices instead of the Π kᵢ of ``_windows`` (a 60×80 kernel: 140 slices, not 4,800).
    """
    end = _trailing_pad(spatial, kernel, strides, dilations, begin, out)
    if any(begin) or any(end):
        x = gx.pad(x, [(0, 0), (0, 0), *zip(begin, end, strict=True)],
                   constant_values=pad_value)
    for axis, (k, s, d, n) in enumerate(zip(kernel, strides, dilations, out, strict=True)):
        before = (slice(None),) * (2 + axis)
        parts = [gx.getitem(x, (*before, slice(o * d, o * d + (n - 1) * s + 1, s)))
                 for o in range(k)]
        x = reduce(gx.stack(parts, axis=2), 2) if k > 1 else parts[0]
    return x


def _max(windows: Tensor, axis: int) -> Tensor:
    return gx.max(windows, axis=axis)


def _sum(windows: Tensor, axis: int) -> Tensor:
    return gx.sum(windows, axis=axis)


def _np_windows(a: np.ndarray, spatial, kernel, strides, dilations, begin, out,
                pad_value: float = 0.0) -> np.ndarray:
    """``_windows`` of a spatial-only NumPy array: (K, *out)."""
    end = _trailing_pad(spatial, kernel, strides, dilations, begin, out)
    a = np.pad(a, list(zip(begin, end, strict=True)), constant_values=pad_value)
    return np.stack([a[_slices(off, strides, dilations, out)] for off in _offsets(kernel)])


def _channel_shape(x: Tensor, v: Tensor) -> Tensor:
    """A per-channel vector (C,) shaped to broadcast against (N, C, *spatial)."""
    return gx.reshape(v, (1, -1) + (1,) * (x.ndim - 2))


# -- convolution -------------------------------------------------------------------------------


def _conv(x: Tensor, w: Tensor, strides, dilations, begin, end, groups: int) -> Tensor:
    """ONNX Conv without bias: NCHW-style input of any spatial rank, (M, C/g, *k) weight."""
    nd = x.ndim - 2
    if nd == 2:
        return gx.conv2d(x, w, stride=tuple(strides),
                         padding=tuple(zip(begin, end, strict=True)),
                         dilation=tuple(dilations), groups=groups)
    if nd == 1:  # a 2-D convolution over a unit height
        y = gx.conv2d(gx.expand_dims(x, 2), gx.expand_dims(w, 2), stride=(1, strides[0]),
                      padding=((0, 0), (begin[0], end[0])), dilation=(1, dilations[0]),
                      groups=groups)
        return gx.squeeze(y, 2)
    spatial = tuple(x.shape[2:])
    kernel = tuple(w.shape[2:])
    out = [(n + b + e - (k - 1) * d - 1) // s + 1
           for n, b, e, k, d, s in zip(spatial, begin, end, kernel, dilations, strides,
                                       strict=True)]
    cols = _windows(x, spatial, kernel, strides, dilations, begin, out)
    m, cg = w.shape[0], w.shape[1]
    k = math.prod(kernel)
    cols = gx.reshape(cols, (-1, groups, cg, k, *out))
    wg = gx.reshape(w, (groups, m // groups, cg, k))
    sp = "uvwxyz"[:nd]
    # y[n,g,m,·] = Σ_{c,k} cols[n,g,c,k,·] · w[g,m,c,k]
    y = gx.einsum(f"ngck{sp},gmck->ngm{sp}", cols, wg)
    return gx.reshape(y, (-1, m, *out))


def _kernel_shape(node, w_index: int = 1) -> list[int]:
    w_shape = node.shape(w_index)
    kernel = node.attr("kernel_shape")
    if kernel is not None and list(kernel) != list(w_shape[2:]):
        raise node.error(f"kernel_shape {list(kernel)} does not match the weight's shape "
                         f"{w_shape}")
    if not all(isinstance(d, int) for d in w_shape):
        raise node.unsupported(f"a weight of symbolic shape {w_shape}")
    return list(w_shape[2:])


@handler("Conv", since=1)
def conv(node):
    x, w = node.input(0), node.input(1)
    spatial = _static_spatial(node)
    kernel = _kernel_shape(node)
    strides, dilations, begin, end, _ = _window_geometry(node, spatial, kernel)
    y = _conv(x, w, strides, dilations, begin, end, int(node.attr("group", 1)))
    if node.has(2):
        y = gx.add(y, _channel_shape(y, node.input(2)))
    return y


def _pad_or_crop(x: Tensor, begin: Sequence[int], end: Sequence[int]) -> Tensor:
    """Pad (positive) or crop (negative) the spatial axes of (N, C, *spatial)."""
    widths = [(0, 0), (0, 0)] + [(max(b, 0), max(e, 0)) for b, e in zip(begin, end, strict=True)]
    if any(b or e for b, e in widths):
        x = gx.pad(x, widths)
    crops = [slice(-min(b, 0), (x.shape[2 + i] + min(e, 0)))
             for i, (b, e) in enumerate(zip(begin, end, strict=True))]
    if any(b < 0 or e < 0 for b, e in zip(begin, end, strict=True)):
        x = gx.getitem(x, (slice(None), slice(None), *crops))
    return x


def _dilate(x: Tensor, strides: Sequence[int]) -> Tensor:
    """Insert s−1 zeros between neighbours along each spatial axis (n → (n−1)·s + 1)."""
    for i, s in enumerate(strides):
        if s == 1:
            continue
        axis = 2 + i
        n = x.shape[axis]
        y = gx.expand_dims(x, axis + 1)
        widths = [(0, 0)] * y.ndim
        widths[axis + 1] = (0, s - 1)
        y = gx.pad(y, widths)
        shape = list(x.shape)
        shape[axis] = n * s
        y = gx.reshape(y, [-1 if j == 0 else d for j, d in enumerate(shape)])
        index = [slice(None)] * y.ndim
        index[axis] = slice(0, (n - 1) * s + 1)
        x = gx.getitem(y, tuple(index))
    return x


@handler("ConvTranspose", since=1)
def conv_transpose(node):
    """The transpose of Conv: y = Σ x[i] · w placed at i·s.

    As a stride-1 convolution of the input dilated by the strides (s−1 zeros between
    pixels), padded by (k−1)·d − pad on each side, with the kernel flipped and its
    in/out channels swapped (per group).
    """
    x, w = node.input(0), node.input(1)
    spatial = _static_spatial(node)
    kernel = _kernel_shape(node)
    nd = len(spatial)
    groups = int(node.attr("group", 1))
    strides = _ints(node, "strides", [1] * nd)
    dilations = _ints(node, "dilations", [1] * nd)
    out_pad = _ints(node, "output_padding", [0] * nd)
    auto_pad = node.attr("auto_pad", "NOTSET") or "NOTSET"
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    full = [s * (n - 1) + op + span
            for s, n, op, span in zip(strides, spatial, out_pad, spans, strict=True)]
    output_shape = node.attr("output_shape")
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        # crop the full output to the asked size (output_shape, else input size × stride);
        # the odd pixel is cropped at the end for SAME_UPPER, at the start otherwise
        targets = ([int(v) for v in output_shape][-nd:] if output_shape is not None
                   else [n * s for n, s in zip(spatial, strides, strict=True)])
        totals = [f - o for f, o in zip(full, targets, strict=True)]
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in totals]
        end = [t - b for t, b in zip(totals, begin, strict=True)]
    elif auto_pad in ("NOTSET", "VALID"):
        pads = _ints(node, "pads", [0] * 2 * nd) if auto_pad == "NOTSET" else [0] * 2 * nd
        begin, end = pads[:nd], pads[nd:]
    else:
        raise node.unsupported(f"attribute auto_pad={auto_pad!r}")
    c, mg = w.shape[0], w.shape[1]
    # (C, M/g, *k) → (M, C/g, *k), flipped along every spatial axis
    wt = gx.reshape(w, (groups, c // groups, mg, *kernel))
    wt = gx.transpose(wt, (0, 2, 1, *range(3, 3 + nd)))
    wt = gx.reshape(wt, (groups * mg, c // groups, *kernel))
    wt = gx.getitem(wt, (slice(None), slice(None)) + (slice(None, None, -1),) * nd)
    xd = _dilate(x, strides)
    lo = [span - 1 - b for span, b in zip(spans, begin, strict=True)]
    hi = [span - 1 - e + op for span, e, op in zip(spans, end, out_pad, strict=True)]
    xd = _pad_or_crop(xd, lo, hi)
    y = _conv(xd, wt, [1] * nd, dilations, [0] * nd, [0] * nd, groups)
    if node.has(2):
        y = gx.add(y, _channel_shape(y, node.input(2)))
    return y


# -- pooling -----------------------------------------------------------------------------------


def _pool_setup(node):
    spatial = _static_spatial(node)
    kernel = node.attr("kernel_shape")
    if kernel is None:
        raise node.error("attribute kernel_shape is required")
    kernel = [int(k) for k in kernel]
    ceil_mode = bool(node.attr("ceil_mode", 0))
    strides, dilations, begin, end, out = _window_geometry(node, spatial, kernel, ceil_mode)
    return spatial, kernel, strides, dilations, begin, end, out


def _lowest(dtype: str) -> float:
    return -math.inf if np.dtype(dtype).kind == "f" else int(np.iinfo(dtype).min)


@handler("MaxPool", since=1)
def max_pool(node):
    x = node.input(0)
    if node.attr("storage_order", 0) not in (0, 1):
        raise node.unsupported(f"storage_order={node.attr('storage_order')}")
    spatial, kernel, strides, dilations, begin, _, out = _pool_setup(node)
    if not node.wants_output(1):
        return _reduce_windows(x, _max, spatial, kernel, strides, dilations, begin, out,
                               _lowest(x.dtype))
    win = _windows(x, spatial, kernel, strides, dilations, begin, out, _lowest(x.dtype))
    y = gx.max(win, axis=2)
    # Indices: the flat input index of each window's first maximum, from an index table
    n, c = x.shape[:2]
    if not (isinstance(n, int) and isinstance(c, int)):
        raise node.unsupported("the Indices output for a symbolic batch or channel count")
    grid = np.indices(spatial)
    if node.attr("storage_order", 0) == 1:  # column-major over the spatial axes
        weights = np.cumprod([1, *spatial[:-1]])
    else:
        weights = np.cumprod([1, *spatial[::-1][:-1]])[::-1]
    flat = np.tensordot(weights, grid, axes=1).astype(np.int64)
    table = _np_windows(flat, spatial, kernel, strides, dilations, begin, out, -1)
    argmax = gx.argmax(win, axis=2, keepdims=True)
    table_b = gx.broadcast_to(gx.constant(table[None, None]), (n, c, *table.shape))
    spatial_index = gx.squeeze(gx.take_along_axis(table_b, argmax, axis=2), 2)
    base = (np.arange(n * c, dtype=np.int64) * math.prod(spatial)).reshape(
        (n, c) + (1,) * len(spatial))
    return y, gx.add(spatial_index, gx.constant(base))


def _pool_counts(spatial, kernel, strides, dilations, begin, end, out,
                 include_pad: bool) -> np.ndarray:
    """Elements each window averages: inside the input, or inside input + explicit pads."""
    inside = np.ones(spatial)
    if include_pad:
        inside = np.pad(inside, list(zip(begin, end, strict=True)), constant_values=1.0)
        begin = [0] * len(spatial)
        spatial = inside.shape
    return _np_windows(inside, spatial, kernel, strides, dilations, begin, out).sum(axis=0)


@handler("AveragePool", since=1)
def average_pool(node):
    x = node.input(0)
    spatial, kernel, strides, dilations, begin, end, out = _pool_setup(node)
    total = _reduce_windows(x, _sum, spatial, kernel, strides, dilations, begin, out)
    include = bool(node.attr("count_include_pad", 0))
    counts = _pool_counts(spatial, kernel, strides, dilations, begin, end, out, include)
    return gx.div(total, gx.constant(counts.astype(x.dtype)))


def _lp(node, x: Tensor, axis) -> Tensor:
    """(Σ |x|^p)^(1/p) over ``axis``."""
    p = node.attr("p", 2)
    if p == 2:
        return gx.sqrt(gx.sum(gx.square(x), axis=axis))
    powered = gx.sum(gx.pow(gx.abs(x), float(p)), axis=axis)
    return gx.pow(powered, 1.0 / float(p))


@handler("LpPool", since=1)
def lp_pool(node):
    x = node.input(0)
    spatial, kernel, strides, dilations, begin, _, out = _pool_setup(node)
    p = node.attr("p", 2)
    # (Σ |x|^p)^(1/p): the power sum over a box is separable, the root comes last
    powered = gx.square(x) if p == 2 else gx.pow(gx.abs(x), float(p))
    total = _reduce_windows(powered, _sum, spatial, kernel, strides, dilations, begin, out)
    return gx.sqrt(total) if p == 2 else gx.pow(total, 1.0 / float(p))


def _spatial_axes(x: Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


@handler("GlobalAveragePool", since=1)
def global_average_pool(node):
    x = node.input(0)
    return gx.mean(x, axis=_spatial_axes(x), keepdims=True)


@handler("GlobalMaxPool", since=1)
def global_max_pool(node):
    x = node.input(0)
    return gx.max(x, axis=_spatial_axes(x), keepdims=True)


@handler("GlobalLpPool", since=1)
def global_lp_pool(node):
    x = node.input(0)
    return gx.expand_dims(_lp(node, x, _spatial_axes(x)),
                          _spatial_axes(x))


@handler("MaxUnpool", since=9)
def max_unpool(node):
    """Scatter X into zeros at the flat indices I: out = Σ_j x_j · onehot(I_j)."""
    x = node.input(0)
    spatial = _static_spatial(node)
    kernel = [int(k) for k in node.attr("kernel_shape")]
    nd = len(spatial)
    strides = _ints(node, "strides", [1] * nd)
    pads = _ints(node, "pads", [0] * 2 * nd)
    n, c = x.shape[:2]
    if not (isinstance(n, int) and isinstance(c, int)):
        raise node.unsupported("a symbolic batch or channel count")
    inferred = [n, c] + [(m - 1) * s + k - b - e for m, s, k, b, e in
                         zip(spatial, strides, kernel, pads[:nd], pads[nd:], strict=True)]
    size = math.prod(inferred)
    indices = gx.reshape(node.input(1), (-1,))
    values = gx.reshape(x, (-1, 1))
    hot = gx.one_hot(indices, size, dtype=x.dtype)
    y = gx.reshape(gx.sum(gx.mul(hot, values), axis=0), tuple(inferred))
    if node.has(2):  # as the reference: indices address the inferred shape, zero-extended
        out_shape = [int(v) for v in node.value(2)]
        if len(out_shape) != len(inferred) or any(
                o < i for o, i in zip(out_shape, inferred, strict=True)):
            raise node.unsupported(f"output_shape {out_shape} smaller than the inferred "
                                   f"{inferred}")
        y = gx.pad(y, [(0, o - i) for o, i in zip(out_shape, inferred, strict=True)])
    return y


@handler("Col2Im", since=18)
def col2im(node):
    """Sum every block column back onto its image positions: the transpose of the
    window extraction (each kernel offset's slice, dilated by the strides, shifted)."""
    cols = node.input(0)
    image = [int(v) for v in node.value(1)]
    block = [int(v) for v in node.value(2)]
    nd = len(image)
    strides = _ints(node, "strides", [1] * nd)
    dilations = _ints(node, "dilations", [1] * nd)
    pads = _ints(node, "pads", [0] * 2 * nd)
    begin, end = pads[:nd], pads[nd:]
    out = [(n + b + e - (k - 1) * d - 1) // s + 1 for n, b, e, k, d, s in
           zip(image, begin, end, block, dilations, strides, strict=True)]
    k = math.prod(block)
    n, ck, _ = cols.shape
    if not isinstance(ck, int) or ck % k:
        raise node.error(f"input of shape {cols.shape} has no C·{k} channel axis")
    cols = gx.reshape(cols, (-1, ck // k, k, *out))
    padded = [n + b + e for n, b, e in zip(image, begin, end, strict=True)]
    total = None
    for j, off in enumerate(_offsets(block)):
        part = _dilate(gx.getitem(cols, (slice(None), slice(None), j)), strides)
        lo = [o * d for o, d in zip(off, dilations, strict=True)]
        hi = [p - lo_ - part.shape[2 + i] for i, (p, lo_) in enumerate(zip(padded, lo,
                                                                          strict=True))]
        part = _pad_or_crop(part, lo, hi)
        total = part if total is None else gx.add(total, part)
    return _pad_or_crop(total, [-b for b in begin], [-e for e in end])


# -- normalization -----------------------------------------------------------------------------


def _normalize(x: Tensor, mean: Tensor, var: Tensor, eps: float) -> Tensor:
    return gx.div(gx.sub(x, mean), gx.sqrt(gx.add(var, eps)))


def _bn_inference(node, x, scale, bias, mean, var, eps):
    y = _normalize(x, _channel_shape(x, mean), _channel_shape(x, var), eps)
    return gx.add(gx.mul(y, _channel_shape(x, scale)), _channel_shape(x, bias))


def _extra_outputs(node) -> bool:
    return any(node.wants_output(i) for i in range(1, node.n_outputs))


@handler("BatchNormalization", since=1)
def batch_norm_1(node):
    """Opsets 1–6: ``is_test=0`` (the default) normalizes with the batch statistics;
    its statistics outputs and ``spatial=0`` (per-element statistics) are refused."""
    if node.attr("spatial", 1) != 1:
        raise node.unsupported(f"attribute spatial={node.attr('spatial')}")
    if _extra_outputs(node):
        raise node.unsupported("training-mode outputs (mean, var, saved statistics)")
    if node.attr("is_test", 0):
        return batch_norm(node)
    x = node.input(0)
    axes = (0, *range(2, x.ndim))
    return _bn_inference(node, x, node.input(1), node.input(2), gx.mean(x, axis=axes),
                         gx.var(x, axis=axes), float(node.attr("epsilon", 1e-5)))


@handler("BatchNormalization", since=7)
def batch_norm_7(node):
    """Opsets 7–8: ``spatial=0`` and the training statistics outputs are refused."""
    if node.attr("spatial", 1) != 1:
        raise node.unsupported(f"attribute spatial={node.attr('spatial')}")
    return batch_norm(node)


@handler("BatchNormalization", since=9)
def batch_norm(node):
    x = node.input(0)
    eps = float(node.attr("epsilon", 1e-5))
    scale, bias, mean, var = (node.input(i) for i in range(1, 5))
    if _extra_outputs(node):
        raise node.unsupported("training-mode outputs (mean, var, saved statistics)")
    return _bn_inference(node, x, scale, bias, mean, var, eps)


@handler("BatchNormalization", since=14)
def batch_norm_14(node):
    """training_mode=1: normalize with the batch statistics (population variance) and
    output running stats r·momentum + batch·(1 − momentum)."""
    x = node.input(0)
    eps = float(node.attr("epsilon", 1e-5))
    scale, bias, mean, var = (node.input(i) for i in range(1, 5))
    if not node.attr("training_mode", 0):
        return batch_norm(node)
    momentum = float(node.attr("momentum", 0.9))
    axes = (0, *range(2, x.ndim))
    batch_mean = gx.mean(x, axis=axes)
    batch_var = gx.var(x, axis=axes)
    y = _bn_inference(node, x, scale, bias, batch_mean, batch_var, eps)
    mean_out = gx.add(gx.mul(mean, momentum), gx.mul(batch_mean, 1.0 - momentum))
    var_out = gx.add(gx.mul(var, momentum), gx.mul(batch_var, 1.0 - momentum))
    return (y, mean_out if node.wants_output(1) else None,
            var_out if node.wants_output(2) else None)


@handler("InstanceNormalization", since=1)
def instance_norm(node):
    x = node.input(0)
    eps = float(node.attr("epsilon", 1e-5))
    axes = _spatial_axes(x)
    y = _normalize(x, gx.mean(x, axis=axes, keepdims=True),
                   gx.var(x, axis=axes, keepdims=True), eps)
    return gx.add(gx.mul(y, _channel_shape(x, node.input(1))),
                  _channel_shape(x, node.input(2)))


def _stash(node, x: Tensor) -> Tensor:
    """x in the stash type (float32 by default) for the statistics."""
    stash = int(node.attr("stash_type", 1))
    dtypes = {1: "float32", 10: "float16", 11: "float64"}
    if stash not in dtypes:
        raise node.unsupported(f"stash_type={stash}")
    return gx.cast(x, dtypes[stash]) if x.dtype != dtypes[stash] else x


@handler("LayerNormalization", since=17)
def layer_norm(node):
    """Normalize over axes [axis, rank): Y = (x − μ)·σ⁻¹·scale + B, with μ and
    σ⁻¹ = 1/√(var + ε) computed in the stash type and output with unit reduced axes."""
    x = node.input(0)
    axis = int(node.attr("axis", -1)) % x.ndim
    eps = float(node.attr("epsilon", 1e-5))
    axes = tuple(range(axis, x.ndim))
    xs = _stash(node, x)
    mean = gx.mean(xs, axis=axes, keepdims=True)
    centered = gx.sub(xs, mean)
    inv_std = gx.reciprocal(gx.sqrt(gx.add(gx.mean(gx.square(centered), axis=axes,
                                                   keepdims=True), eps)))
    y = gx.cast(gx.mul(centered, inv_std), x.dtype)
    y = gx.mul(y, node.input(1))
    if node.has(2):
        y = gx.add(y, node.input(2))
    return (y, mean if node.wants_output(1) else None,
            inv_std if node.wants_output(2) else None)


@handler("RMSNormalization", since=23)
def rms_norm(node):
    """Y = x / √(mean(x²) + ε) · scale over axes [axis, rank), in the stash type."""
    x = node.input(0)
    axis = int(node.attr("axis", -1)) % x.ndim
    eps = float(node.attr("epsilon", 1e-5))
    axes = tuple(range(axis, x.ndim))
    xs = _stash(node, x)
    rms = gx.sqrt(gx.add(gx.mean(gx.square(xs), axis=axes, keepdims=True), eps))
    return gx.mul(gx.cast(gx.div(xs, rms), x.dtype), node.input(1))


def _group_norm(node, per_channel: bool):
    x = node.input(0)
    groups = int(node.attr("num_groups"))
    eps = float(node.attr("epsilon", 1e-5))
    n, c = x.shape[:2]
    if not isinstance(c, int) or c % groups:
        raise node.error(f"num_groups={groups} must divide the channel count {c}")
    spatial = tuple(x.shape[2:])
    xs = _stash(node, x)
    grouped = gx.reshape(xs, (-1, groups, c // groups, *spatial))
    axes = tuple(range(2, grouped.ndim))
    y = _normalize(grouped, gx.mean(grouped, axis=axes, keepdims=True),
                   gx.var(grouped, axis=axes, keepdims=True), eps)
    y = gx.cast(gx.reshape(y, (-1, c, *spatial)), x.dtype)
    scale, bias = node.input(1), node.input(2)
    if not per_channel:  # opset 18: one scale/bias per group, repeated over its channels
        repeat = np.repeat(np.arange(groups), c // groups)
        scale, bias = gx.take(scale, gx.constant(repeat)), gx.take(bias, gx.constant(repeat))
    return gx.add(gx.mul(y, _channel_shape(y, scale)), _channel_shape(y, bias))


@handler("GroupNormalization", since=18)
def group_norm_18(node):
    return _group_norm(node, per_channel=False)


@handler("GroupNormalization", since=21)
def group_norm_21(node):
    return _group_norm(node, per_channel=True)


@handler("LRN", since=1)
def lrn(node):
    """y = x / (bias + α/size · Σ_{c' ∈ [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉]} x²)^β."""
    x = node.input(0)
    size = int(node.attr("size"))
    alpha = float(node.attr("alpha", 1e-4))
    beta = float(node.attr("beta", 0.75))
    bias = float(node.attr("bias", 1.0))
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = gx.pad(gx.square(x), [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    total = None
    for j in range(size):
        part = gx.getitem(sq, (slice(None), slice(j, j + c)))
        total = part if total is None else gx.add(total, part)
    return gx.div(x, gx.pow(gx.add(gx.mul(total, alpha / size), bias), beta))


# -- dense algebra -----------------------------------------------------------------------------


@handler("Gemm", since=1)
def gemm(node):
    """Y = α·A'·B' + β·C (A' = Aᵀ if transA, B' likewise); C broadcasts."""
    if node.opset < 7 and node.has(2) and not node.attr("broadcast", 0):
        c_shape = node.shape(2)
        if len(c_shape) != 2:
            raise node.unsupported("a non-broadcast C of rank other than 2")
    a, b = node.input(0), node.input(1)
    if node.attr("transA", 0):
        a = gx.transpose(a)
    if node.attr("transB", 0):
        b = gx.transpose(b)
    alpha = float(node.attr("alpha", 1.0))
    beta = float(node.attr("beta", 1.0))
    y = gx.matmul(a, b)
    if alpha != 1.0:
        y = gx.mul(y, alpha)
    if node.has(2):
        c = node.input(2)
        y = gx.add(y, gx.mul(c, beta) if beta != 1.0 else c)
    return y


@handler("MatMul", since=1)
def matmul(node):
    return gx.matmul(node.input(0), node.input(1))


@handler("Einsum", since=12)
def einsum(node):
    equation = str(node.attr("equation")).replace(" ", "")
    return gx.einsum(equation, *(node.input(i) for i in range(len(node.inputs))))



@handler("DeformConv", since=19)
def deform_conv(node):
    """2-D deformable convolution: each kernel tap k of output pixel o samples the input
    bilinearly at o·s − pad + k·d + offset (zero outside the input), times the mask;
    the samples are then contracted with the weight as in Conv."""
    x, w, offset = node.input(0), node.input(1), node.input(2)
    spatial = _static_spatial(node)
    if len(spatial) != 2:
        raise node.unsupported(f"{len(spatial)}-D deformable convolution (only 2-D)")
    kernel = _kernel_shape(node)
    n, c = x.shape[:2]
    if not isinstance(c, int):
        raise node.unsupported("a symbolic channel count")
    groups, og = int(node.attr("group", 1)), int(node.attr("offset_group", 1))
    strides, dilations, begin, _, out = _window_geometry(node, spatial, kernel)
    (h, width), k = spatial, math.prod(kernel)
    if tuple(offset.shape[2:]) != tuple(out):
        raise node.error(f"offset of shape {offset.shape} does not match the output {out}")
    dt = x.dtype
    # base sampling positions (K, oh, ow) per axis, known at import
    taps = np.array(_offsets(kernel)).T  # (2, K)
    base = [(np.arange(o) * s - b)[None, :] + (taps[i] * d)[:, None]
            for i, (o, s, b, d) in enumerate(zip(out, strides, begin, dilations, strict=True))]
    base_h = base[0][:, :, None].astype(dt)  # (K, oh, 1)
    base_w = base[1][:, None, :].astype(dt)  # (K, 1, ow)
    off = gx.reshape(offset, (-1, og, k, 2, *out))
    ph = gx.add(gx.getitem(off, (slice(None), slice(None), slice(None), 0)),
                gx.constant(base_h))  # (N, og, K, oh, ow)
    pw = gx.add(gx.getitem(off, (slice(None), slice(None), slice(None), 1)),
                gx.constant(base_w))
    h0, w0 = gx.floor(ph), gx.floor(pw)
    lh, lw = gx.sub(ph, h0), gx.sub(pw, w0)
    flat_x = gx.reshape(x, (-1, og, c // og, h * width))
    sampled = None
    for dh, dw in ((0, 0), (0, 1), (1, 0), (1, 1)):
        hh, ww = gx.add(h0, float(dh)), gx.add(w0, float(dw))
        weight = gx.mul(lh if dh else gx.sub(1.0, lh), lw if dw else gx.sub(1.0, lw))
        valid = gx.logical_and(gx.logical_and(hh >= 0.0, hh <= float(h - 1)),
                               gx.logical_and(ww >= 0.0, ww <= float(width - 1)))
        weight = gx.where(valid, weight, gx.zeros_like(weight))
        index = gx.cast(gx.add(gx.mul(gx.clip(hh, 0.0, float(h - 1)), float(width)),
                               gx.clip(ww, 0.0, float(width - 1))), "int64")
        index = gx.reshape(index, (-1, og, 1, k * out[0] * out[1]))
        index = gx.broadcast_to(index, (n, og, c // og, k * out[0] * out[1]))
        values = gx.reshape(gx.take_along_axis(flat_x, index, axis=3),
                            (-1, og, c // og, k, *out))
        term = gx.mul(values, gx.expand_dims(weight, 2))
        sampled = term if sampled is None else gx.add(sampled, term)
    if node.has(4):
        mask = gx.reshape(node.input(4), (-1, og, 1, k, *out))
        sampled = gx.mul(sampled, mask)
    cols = gx.reshape(sampled, (-1, groups, c // groups, k, *out))
    m = w.shape[0]
    wg = gx.reshape(w, (groups, m // groups, c // groups, k))
    y = gx.reshape(gx.einsum("ngckuv,gmck->ngmuv", cols, wg), (-1, m, *out))
    if node.has(3):
        y = gx.add(y, _channel_shape(y, node.input(3)))
    return y
