"""ONNX quantization ops (linear (de)quantization, integer matmul and conv) as graphc graph.

ONNX quantizes with ``saturate(round_half_even(x / scale) + zero_point)``. Integer
products are computed in float64, which is exact here: 8- and 16-bit operands give
products below 2**32, and sums of fewer than 2**20 of them stay below 2**53.
"""

from __future__ import annotations

import numpy as np

import graphc as gx
from graphc.onnx import dtypes
from graphc.onnx.registry import handler

#: the integer types ONNX quantizes to, with their saturation ranges
_RANGES = {name: (int(np.iinfo(name).min), int(np.iinfo(name).max))
           for name in ("int8", "uint8", "int16", "uint16", "int32")}


def round_half_even(x: gx.Tensor) -> gx.Tensor:
    """``np.rint`` composed of floor: round to nearest, ties to the even neighbour.

    ``r = floor(x + 1/2)`` rounds ties up; where ``x`` was a tie (``x + 1/2 == r``)
    and ``r`` is odd (``r - 2 floor(r/2) == 1``), step down to the even ``r - 1``.
    """
    r = gx.floor(x + 0.5)
    odd = gx.equal(r - 2.0 * gx.floor(r * 0.5), 1.0)
    tie = gx.equal(x + 0.5, r)
    return gx.where(gx.logical_and(tie, odd), r - 1.0, r)


def _f64(x: gx.Tensor) -> gx.Tensor:
    return gx.cast(x, "float64")


def _saturate(x: gx.Tensor, dtype: str) -> gx.Tensor:
    lo, hi = _RANGES[dtype]
    return gx.cast(gx.clip(_f64(x), lo, hi), dtype)


def _broadcast_param(node, p: gx.Tensor, shape: tuple, axis: int, block: int) -> gx.Tensor:
    """A scale or zero point shaped to broadcast against ``shape``: per tensor (scalar),
    per ``axis`` (a vector), or blocked (``block`` consecutive entries share one value)."""
    if p.ndim == 0 or (p.ndim == 1 and p.shape[0] == 1 and not block):
        return gx.reshape(p, ())
    axis %= len(shape)
    if not block:
        if p.ndim != 1:
            raise node.error(f"a per-axis scale must be 1-D, got shape {p.shape}")
        dims = [1] * len(shape)
        dims[axis] = p.shape[0]
        return gx.reshape(p, tuple(dims))
    index = np.arange(shape[axis]) // block
    return gx.take(p, gx.constant(index.astype(np.int64)), axis=axis)


def _quant_dtype(node, zp_index: int) -> str:
    if node.has(zp_index):
        dtype = node.dtype(zp_index)
    else:
        try:
            dtype = dtypes.to_graphc(node.attr("output_dtype", 0) or 2)  # 2: UINT8
        except TypeError as e:
            raise node.unsupported(f"output_dtype: {e}") from None
    if dtype not in _RANGES:
        raise node.unsupported(f"quantized type {dtype}")
    return dtype


@handler("QuantizeLinear", since=10)
def quantize_linear(node):
    x = node.input(0)
    dtype = _quant_dtype(node, 2)
    axis, block = node.attr("axis", 1), node.attr("block_size", 0)
    precision = node.attr("precision", 0)
    if precision:
        x = gx.cast(x, dtypes.to_graphc(precision))
    scale = gx.cast(_broadcast_param(node, node.input(1), x.shape, axis, block), x.dtype)
    q = _f64(round_half_even(x / scale))
    if node.has(2):
        q = q + _f64(_broadcast_param(node, node.input(2), x.shape, axis, block))
    return _saturate(q, dtype)


@handler("DequantizeLinear", since=10)
def dequantize_linear(node):
    x = node.input(0)
    if x.dtype not in _RANGES:
        raise node.unsupported(f"quantized type {x.dtype}")
    axis, block = node.attr("axis", 1), node.attr("block_size", 0)
    scale = node.input(1)
    out = scale.dtype
    if node.attr("output_dtype", 0):
        out = dtypes.to_graphc(node.attr("output_dtype"))
    work = "float64" if x.dtype == "int32" else "float32"
    dx = gx.cast(x, work)
    if node.has(2):
        dx = dx - gx.cast(_broadcast_param(node, node.input(2), x.shape, axis, block), work)
    y = dx * gx.cast(_broadcast_param(node, scale, x.shape, axis, block), work)
    return gx.cast(y, out)


@handler("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(node):
    """uint8 quantization with the scale and zero point that map [min(x, 0), max(x, 0)]
    onto [0, 255]."""
    x = node.input(0)
    hi = gx.maximum(gx.max(x), 0.0)
    lo = gx.minimum(gx.min(x), 0.0)
    scale = gx.where(gx.equal(hi, lo), gx.ones_like(hi), hi - lo) / 255.0
    zero = round_half_even(gx.clip(0.0 - lo / scale, 0.0, 255.0))
    y = round_half_even(x / scale) + zero
    return _saturate(y, "uint8"), scale, gx.cast(zero, "uint8")


def _centered(node, i: int, zp: int | None, shape_for_zp=None) -> gx.Tensor:
    """Input ``i`` minus its zero point (input ``zp``), in float64 (exact for integers)."""
    v = _f64(node.input(i))
    if zp is not None and node.has(zp):
        z = _f64(node.input(zp))
        if shape_for_zp is not None and z.ndim == 1 and z.shape[0] != 1:
            z = gx.reshape(z, shape_for_zp(z.shape[0]))
        elif z.ndim == 1:
            z = gx.reshape(z, ()) if z.shape[0] == 1 else z
        v = v - z
    return v


@handler("MatMulInteger", since=10)
def matmul_integer(node):
    a = _centered(node, 0, 2, lambda n: (n, 1))  # a's zero point may be per row
    b = _centered(node, 1, 3)
    return gx.cast(gx.matmul(a, b), "int32")


@handler("QLinearMatMul", since=10)
def qlinear_matmul(node):
    a = _centered(node, 0, 2, lambda n: (n, 1))
    b = _centered(node, 3, 5)
    dtype = node.dtype(7) if node.has(7) else node.dtype(0)
    if dtype not in _RANGES:
        raise node.unsupported(f"quantized type {dtype}")
    # the requantization factor in the scales' own precision, as ONNX computes it
    factor = _f64(node.input(1) * node.input(4) / node.input(6))
    y = gx.matmul(a, b) * factor
    if node.has(7):
        y = y + _f64(node.input(7))
    return _saturate(round_half_even(y), dtype)


def _conv2d(node, x: gx.Tensor, w: gx.Tensor) -> gx.Tensor:
    """ONNX Conv attributes (2-D) applied with ``gx.conv2d``."""
    if x.ndim != 4:
        raise node.unsupported(f"a {x.ndim - 2}-D convolution")
    kernel = tuple(w.shape[2:])
    strides = tuple(node.attr("strides", [1, 1]))
    dilations = tuple(node.attr("dilations", [1, 1]))
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        p = node.attr("pads", [0, 0, 0, 0])
        pads = ((p[0], p[2]), (p[1], p[3]))
    elif auto_pad == "VALID":
        pads = ((0, 0), (0, 0))
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pairs = []
        for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations, strict=True):
            total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            pairs.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        pads = tuple(pairs)
    else:
        raise node.unsupported(f"attribute auto_pad={auto_pad!r}")
    return gx.conv2d(x, w, stride=strides, padding=pads, dilation=dilations,
                     groups=node.attr("group", 1))


def _per_channel(n: int) -> tuple[int, ...]:
    return (n, 1, 1, 1)


@handler("ConvInteger", since=10)
def conv_integer(node):
    x = _centered(node, 0, 2)
    w = _centered(node, 1, 3, _per_channel)
    return gx.cast(_conv2d(node, x, w), "int32")


@handler("QLinearConv", since=10)
def qlinear_conv(node):
    x = _centered(node, 0, 2)
    w = _centered(node, 3, 5, _per_channel)
    acc = _conv2d(node, x, w)
    if node.has(8):
        acc = acc + gx.reshape(_f64(node.input(8)), (1, -1, 1, 1))
    w_scale = node.input(4)
    if w_scale.ndim == 1 and w_scale.shape[0] != 1:
        w_scale = gx.reshape(w_scale, (1, -1, 1, 1))
    factor = _f64(node.input(1) * w_scale / node.input(6))
    y = acc * factor
    dtype = node.dtype(7) if node.has(7) else node.dtype(0)
    if dtype not in ("int8", "uint8"):
        raise node.unsupported(f"quantized type {dtype}")
    if node.has(7):
        y = y + _f64(node.input(7))
    return _saturate(round_half_even(y), dtype)
