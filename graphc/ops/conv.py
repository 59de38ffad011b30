"""Convolution and pooling: conv2d, max_pool2d and avg_pool2d. Images are NCHW,
convolution weights OIHW.

All three share one geometry: ``im2col`` lays each sliding window out along a new
axis, ``(N, C, H, W) -> (N, C, kh·kw, OH, OW)``, and ``col2im`` is its transpose
(it sums each window back onto the pixels it came from). The derivatives of conv2d
and of both poolings are written with these two ops and ``einsum``, all
differentiable, so gradients of gradients work throughout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.ops import elementwise as ew
from graphc.ops import linalg
from graphc.ops import shape as shape_ops
from graphc.ops.base import Op
from graphc.ops.nn import first_max_mask, type_error
from graphc.tensor import Tensor, as_tensor, constant
from graphc.types import FLOAT_DTYPES, TensorType, format_shape, promote_types

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]


# -- sliding windows: im2col and its transpose ---------------------------------------------------


def _check_window(kernel: Pair, stride: Pair, padding: Padding, dilation: Pair) -> None:
    if min(*kernel, *stride, *dilation) < 1 or min(padding[0] + padding[1]) < 0:
        raise ValueError(f"kernel {kernel}, stride {stride}, dilation {dilation} must be "
                         f"positive and padding {padding} non-negative")


def _window_output(x: TensorType, kernel: Pair, stride: Pair, padding: Padding,
                   dilation: Pair) -> Pair:
    """(OH, OW) of sliding a (dilated) kernel over an NCHW input, with clear errors."""
    if x.ndim != 4:
        raise ValueError(f"input must be (N, C, H, W), got shape {format_shape(x.shape)}")
    if not all(isinstance(d, int) for d in x.shape[1:]):
        raise ValueError(f"channels and spatial dims must be static, got {format_shape(x.shape)}")
    _check_window(kernel, stride, padding, dilation)
    padded = [size + before + after for size, (before, after) in zip(x.shape[2:], padding,
                                                                       strict=True)]
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    if spans[0] > padded[0] or spans[1] > padded[1]:
        raise ValueError(f"kernel {kernel[0]}x{kernel[1]} (spanning {spans[0]}x{spans[1]} with "
                         f"dilation {dilation}) is larger than the padded input "
                         f"{padded[0]}x{padded[1]} of shape {format_shape(x.shape)}")
    oh, ow = ((p - s) // st + 1 for p, s, st in zip(padded, spans, stride, strict=True))
    return oh, ow


def _window_slices(kernel: Pair, stride: Pair, dilation: Pair, out: Pair):
    """For each kernel offset (row-major), the slices of the padded image it reads."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            top, left = i * dilation[0], j * dilation[1]
            yield (slice(top, top + stride[0] * (out[0] - 1) + 1, stride[0]),
                   slice(left, left + stride[1] * (out[1] - 1) + 1, stride[1]))


def _im2col_array(x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair,
                  pad_value: float) -> np.ndarray:
    x = np.asarray(x)
    (pt, pb), (pl, pr) = padding
    padded = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=pad_value)
    out = _window_output(TensorType(x.shape, x.dtype.name), kernel, stride, padding, dilation)
    cols = np.empty((*x.shape[:2], kernel[0] * kernel[1], *out), x.dtype)
    for k, (rows, columns) in enumerate(_window_slices(kernel, stride, dilation, out)):
        cols[:, :, k] = padded[:, :, rows, columns]
    return cols


def _col2im_array(cols: np.ndarray, image_size: Pair, kernel: Pair, stride: Pair,
                  padding: Padding, dilation: Pair) -> np.ndarray:
    cols = np.asarray(cols)
    (pt, pb), (pl, pr) = padding
    h, w = image_size
    padded = np.zeros((*cols.shape[:2], h + pt + pb, w + pl + pr), cols.dtype)
    for k, (rows, columns) in enumerate(_window_slices(kernel, stride, dilation,
                                                       cols.shape[3:])):
        padded[:, :, rows, columns] += cols[:, :, k]
    return padded[:, :, pt:pt + h, pl:pl + w]


class Im2Col(Op):
    """(N, C, H, W) -> (N, C, kh·kw, OH, OW): every sliding window, offsets row-major.
    Padding reads ``pad_value``."""

    name = "im2col"

    def infer(self, inputs, *, kernel, stride, padding, dilation, pad_value):
        (x,) = inputs
        oh, ow = _window_output(x, kernel, stride, padding, dilation)
        return TensorType((*x.shape[:2], kernel[0] * kernel[1], oh, ow), x.dtype)

    def vjp(self, node, g):
        attrs = node.attr
        del attrs["pad_value"]  # padding is constant: no gradient flows to it
        return (_col2im(g, image_size=node.inputs[0].shape[2:], **attrs),)

    def impl(self, x, *, kernel, stride, padding, dilation, pad_value):
        return _im2col_array(x, kernel, stride, padding, dilation, pad_value)


class Col2Im(Op):
    """The transpose of ``im2col``: sum each window back onto the pixels it covers."""

    name = "col2im"

    def infer(self, inputs, *, image_size, kernel, stride, padding, dilation):
        (cols,) = inputs
        if cols.ndim != 5:
            raise ValueError(f"windows must be (N, C, kh*kw, OH, OW), got shape "
                             f"{format_shape(cols.shape)}")
        image = TensorType((*cols.shape[:2], *image_size), cols.dtype)
        windows = (kernel[0] * kernel[1], *_window_output(image, kernel, stride, padding,
                                                          dilation))
        if tuple(cols.shape[2:]) != windows:
            raise ValueError(f"windows of shape {format_shape(cols.shape)} do not fit an image "
                             f"of size {image_size} (expected (N, C, *{windows}))")
        return image

    def vjp(self, node, g):
        attrs = node.attr
        del attrs["image_size"]
        return (_im2col(g, pad_value=0.0, **attrs),)

    def impl(self, cols, *, image_size, kernel, stride, padding, dilation):
        return _col2im_array(cols, image_size, kernel, stride, padding, dilation)


_im2col, _col2im = Im2Col(), Col2Im()


def _pair(value: int | Sequence[int], what: str) -> Pair:
    if isinstance(value, int | np.integer):
        return int(value), int(value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


def _padding(padding: Any, x: Tensor, kernel: Pair, stride: Pair, dilation: Pair) -> Padding:
    """Normalise padding: an int, (ph, pw), ((top, bottom), (left, right)), 'valid' or 'same'.

    'same' pads so that OH = ceil(H / stride) (for stride 1, the input's size), the
    extra pixel of an odd total going to the bottom/right, as torch and TensorFlow.
    """
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        if x.ndim != 4 or not all(isinstance(d, int) for d in x.shape[2:]):
            raise ValueError(f"padding='same' needs a static (N, C, H, W) input, got shape "
                             f"{format_shape(x.shape)}")
        return tuple(_same_padding(size, k, s, d) for size, k, s, d in  # type: ignore[return-value]
                     zip(x.shape[2:], kernel, stride, dilation, strict=True))
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    if isinstance(padding, int | np.integer) or all(isinstance(p, int | np.integer)
                                                    for p in padding):
        return tuple((p, p) for p in _pair(padding, "padding"))  # type: ignore[return-value]
    pads = tuple(_pair(p, "padding") for p in padding)
    if len(pads) != 2:
        raise ValueError(f"padding must be ((top, bottom), (left, right)), got {padding!r}")
    return pads  # type: ignore[return-value]


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> Pair:
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


# -- convolution -------------------------------------------------------------------------------


class Conv2d(Op):
    """2-D cross-correlation (as torch's conv2d) of an NCHW input with an OIHW weight."""

    name = "conv2d"

    def infer(self, inputs, *, stride, padding, dilation, groups):
        x, w = inputs
        if x.dtype not in FLOAT_DTYPES or w.dtype not in FLOAT_DTYPES:
            raise TypeError(f"needs float input and weight, got {x.dtype} and {w.dtype}")
        if w.ndim != 4 or not all(isinstance(d, int) for d in w.shape):
            raise ValueError(f"weight must be a static (O, C/groups, kh, kw), got shape "
                             f"{format_shape(w.shape)}")
        oh, ow = _window_output(x, w.shape[2:], stride, padding, dilation)
        channels, out_channels = x.shape[1], w.shape[0]
        if groups < 1 or channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide the {channels} input and "
                             f"{out_channels} output channels")
        if channels != w.shape[1] * groups:
            raise ValueError(f"input has {channels} channels, but the weight of shape "
                             f"{format_shape(w.shape)} with groups={groups} expects "
                             f"{w.shape[1] * groups}")
        return TensorType((x.shape[0], out_channels, oh, ow), promote_types(x.dtype, w.dtype))

    def vjp(self, node, g):
        x, w = node.inputs
        geometry = _conv_geometry(node)
        n, (c, h, width) = x.shape[0], x.shape[1:]
        groups = node.attr["groups"]
        k = w.shape[2] * w.shape[3]
        g_grouped = shape_ops.reshape(g, (n, groups, -1, *g.shape[2:]))
        w_grouped = shape_ops.reshape(w, (groups, w.shape[0] // groups, w.shape[1], k))
        # x̄ = col2im(Σ_o ḡ[n,o,·] w[o,c,k]): every window gets the weights times its output's ḡ
        g_cols = linalg.einsum("ngohw,gock->ngckhw", g_grouped, w_grouped)
        g_cols = shape_ops.reshape(g_cols, (n, c, k, *g.shape[2:]))
        g_x = _col2im(g_cols, image_size=(h, width), **geometry)
        # w̄[o,c,k] = Σ_{n,windows} ḡ[n,o,·] · cols[n,c,k,·]
        cols = _im2col(x, pad_value=0.0, **geometry)
        cols = shape_ops.reshape(cols, (n, groups, c // groups, k, *g.shape[2:]))
        g_w = linalg.einsum("ngohw,ngckhw->gock", g_grouped, cols)
        return g_x, shape_ops.reshape(g_w, w.shape)

    def impl(self, x, w, *, stride, padding, dilation, groups):
        cols = _im2col_array(x, w.shape[2:], stride, padding, dilation, 0.0)
        n, c, k, oh, ow = cols.shape
        cols = cols.reshape(n, groups, c // groups, k, oh, ow)
        w = np.asarray(w).reshape(groups, w.shape[0] // groups, w.shape[1], k)
        out = np.einsum("ngckhw,gock->ngohw", cols, w, optimize=True)
        return out.reshape(n, -1, oh, ow)


def _conv_geometry(node: Tensor) -> dict[str, Any]:
    attrs = node.attr
    return {"kernel": node.inputs[1].shape[2:], "stride": attrs["stride"],
            "padding": attrs["padding"], "dilation": attrs["dilation"]}


_conv2d = Conv2d()


def conv2d(x: Any, weight: Any, bias: Any = None, stride: int | Pair = 1,
           padding: int | Sequence[Any] | str = 0, dilation: int | Pair = 1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as torch.nn.functional.conv2d).

    Parameters
    ----------
    x : Tensor
        Input of shape (N, C, H, W); N may be symbolic.
    weight : Tensor
        Kernel of shape (O, C / groups, kh, kw).
    bias : Tensor, optional
        Of shape (O,), added to every output pixel of its channel.
    stride, dilation : int or (int, int)
    padding : int, (ph, pw), ((top, bottom), (left, right)), 'valid' or 'same'
        Zero padding. 'same' keeps H and W at stride 1 (OH = ceil(H / stride)).
    groups : int
        Split channels into groups convolved separately (``groups = C``: depthwise).

    Returns
    -------
    Tensor
        Of shape (N, O, OH, OW), OH = (H + pad - dilation·(kh − 1) − 1) // stride + 1.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    try:
        stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
        static = weight.ndim == 4 and all(isinstance(d, int) for d in weight.shape)
        kernel = weight.shape[2:] if static else (1, 1)  # the op's type rule names the error
        pads = _padding(padding, x, kernel, stride, dilation)
    except ValueError as e:
        raise type_error("conv2d", e, x, weight) from None
    out = _conv2d(x, weight, stride=stride, padding=pads, dilation=dilation, groups=int(groups))
    if bias is None:
        return out
    bias = as_tensor(bias)
    if bias.shape != (out.shape[1],):
        raise type_error("conv2d", ValueError(f"bias of shape {format_shape(bias.shape)} does "
                                               f"not match {out.shape[1]} output channels"),
                          x, weight, bias)
    return ew.add(out, shape_ops.reshape(bias, (1, -1, 1, 1)))


# -- pooling -----------------------------------------------------------------------------------


def _check_pool(x: TensorType, kernel: Pair, padding: Padding) -> None:
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"needs a float input, got {x.dtype}")
    for k, pads in zip(kernel, padding, strict=True):
        if max(pads) > k // 2:
            raise ValueError(f"padding {padding} must be at most half the kernel {kernel}")


class MaxPool2d(Op):
    """The maximum of each window; the gradient goes to the window's first maximum
    (row-major), as torch's max_pool2d."""

    name = "max_pool2d"

    def infer(self, inputs, *, kernel, stride, padding, dilation):
        (x,) = inputs
        oh, ow = _window_output(x, kernel, stride, padding, dilation)
        _check_pool(x, kernel, padding)
        return TensorType((*x.shape[:2], oh, ow), x.dtype)

    def vjp(self, node, g):
        (x,) = node.inputs
        cols = _im2col(x, pad_value=-math.inf, **node.attr)
        routed = ew.mul(shape_ops.expand_dims(g, 2), first_max_mask(cols, axis=2))
        return (_col2im(routed, image_size=x.shape[2:], **node.attr),)

    def impl(self, x, *, kernel, stride, padding, dilation):
        return _im2col_array(x, kernel, stride, padding, dilation, -np.inf).max(axis=2)


class AvgPool2d(Op):
    """The mean of each window; padded zeros count unless ``count_include_pad`` is False."""

    name = "avg_pool2d"

    def infer(self, inputs, *, kernel, stride, padding, count_include_pad):
        (x,) = inputs
        oh, ow = _window_output(x, kernel, stride, padding, (1, 1))
        _check_pool(x, kernel, padding)
        return TensorType((*x.shape[:2], oh, ow), x.dtype)

    def vjp(self, node, g):
        (x,) = node.inputs
        attrs = node.attr
        geometry = {"kernel": attrs["kernel"], "stride": attrs["stride"],
                    "padding": attrs["padding"], "dilation": (1, 1)}
        scaled = ew.mul(g, constant(1.0 / _avg_divisor(x.shape[2:], **attrs), g.dtype))
        k = attrs["kernel"][0] * attrs["kernel"][1]
        spread = shape_ops.broadcast_to(shape_ops.expand_dims(scaled, 2),
                                        (*g.shape[:2], k, *g.shape[2:]))
        return (_col2im(spread, image_size=x.shape[2:], **geometry),)

    def impl(self, x, *, kernel, stride, padding, count_include_pad):
        cols = _im2col_array(x, kernel, stride, padding, (1, 1), 0.0)
        divisor = _avg_divisor(np.shape(x)[2:], kernel, stride, padding, count_include_pad)
        return (cols.sum(axis=2) / divisor).astype(cols.dtype, copy=False)


def _avg_divisor(image_size: Pair, kernel: Pair, stride: Pair, padding: Padding,
                 count_include_pad: bool) -> np.ndarray:
    """How many elements each window averages: kh·kw, or only the unpadded ones."""
    if count_include_pad:
        return np.asarray(float(kernel[0] * kernel[1]))
    ones = np.ones((1, 1, *image_size))
    return _im2col_array(ones, kernel, stride, padding, (1, 1), 0.0).sum(axis=2)[0, 0]


_max_pool2d, _avg_pool2d = MaxPool2d(), AvgPool2d()


def _pool_geometry(op: str, x: Tensor, kernel: Any, stride: Any, padding: Any,
                   dilation: Any) -> dict[str, Any]:
    try:
        kernel = _pair(kernel, "kernel")
        stride = kernel if stride is None else _pair(stride, "stride")
        dilation = _pair(dilation, "dilation")
        pads = _padding(padding, x, kernel, stride, dilation)
    except ValueError as e:
        raise type_error(op, e, x) from None
    return {"kernel": kernel, "stride": stride, "padding": pads, "dilation": dilation}


def max_pool2d(x: Any, kernel: int | Pair, stride: int | Pair | None = None,
               padding: int | Sequence[Any] | str = 0, dilation: int | Pair = 1) -> Tensor:
    """Max pooling over (kh, kw) windows of an NCHW input.

    Parameters
    ----------
    x : Tensor
        Input of shape (N, C, H, W).
    kernel : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel`` (non-overlapping windows).
    padding : int, pair or 'same'/'valid'
        Implicit -inf padding, at most half the kernel on each side.
    dilation : int or (int, int)

    Returns
    -------
    Tensor
        (N, C, OH, OW). The gradient goes to the first maximum of each window in
        row-major order (as torch on ties).
    """
    x = as_tensor(x)
    return _max_pool2d(x, **_pool_geometry("max_pool2d", x, kernel, stride, padding, dilation))


def avg_pool2d(x: Any, kernel: int | Pair, stride: int | Pair | None = None,
               padding: int | Sequence[Any] | str = 0, count_include_pad: bool = True) -> Tensor:
    """Average pooling over (kh, kw) windows of an NCHW input.

    Parameters
    ----------
    x : Tensor
        Input of shape (N, C, H, W).
    kernel : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel``.
    padding : int, pair or 'same'/'valid'
        Implicit zero padding, at most half the kernel on each side.
    count_include_pad : bool
        Divide by kh·kw even where the window covers padding (torch's default);
        when False, by the number of input pixels in the window.
    """
    x = as_tensor(x)
    geometry = _pool_geometry("avg_pool2d", x, kernel, stride, padding, 1)
    del geometry["dilation"]
    return _avg_pool2d(x, **geometry, count_include_pad=bool(count_include_pad))


__all__ = ["conv2d", "max_pool2d", "avg_pool2d"]
