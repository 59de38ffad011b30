"""Neural-network ops: softmax, maxout, convolution, pooling, normalization, dropout.

Primitives where a closed-form derivative is cleaner or stabler than the chain of
its parts (softmax, log_softmax, maxout, conv2d, pooling), composites elsewhere
(batch and layer norm, dropout). Images are NCHW, convolution weights OIHW.

Convolution and pooling share one geometry: ``im2col`` lays each sliding window
out along a new axis, ``(N, C, H, W) -> (N, C, kh·kw, OH, OW)``, and ``col2im``
is its transpose (it sums each window back onto the pixels it came from). The
derivatives of conv2d and of both poolings are written with these two ops and
``einsum``, all differentiable, so gradients of gradients work throughout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.errors import GraphcTypeError, user_location
from graphc.ops import elementwise as ew
from graphc.ops import linalg, reduce
from graphc.ops import random as rand
from graphc.ops import shape as shape_ops
from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor, constant
from graphc.types import (
    FLOAT_DTYPES,
    TensorType,
    format_shape,
    normalize_axes,
    normalize_axis,
    promote_types,
)

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]


def _float_dtype(dtype: str) -> str:
    """Softmax and friends compute in the input's float type; integers go to float64."""
    return dtype if dtype in FLOAT_DTYPES else "float64"


def _type_error(op: str, error: Exception, *tensors: Tensor) -> GraphcTypeError:
    return GraphcTypeError(op, str(error), tuple(t.type for t in tensors), user_location())


# -- softmax -----------------------------------------------------------------------------------


class Softmax(Op):
    """exp(x) / Σ exp(x) over ``axis``; ḡ = y · (g − Σ g·y)."""

    name = "softmax"

    def infer(self, inputs, *, axis):
        (x,) = inputs
        return TensorType(x.shape, _float_dtype(x.dtype))

    def vjp(self, node, g):
        axis = node.attr["axis"]
        dot = reduce.sum(ew.mul(g, node), axis, keepdims=True)
        return (ew.mul(node, ew.sub(g, dot)),)

    def impl(self, x, *, axis):
        shifted = _shift_by_max(x, axis)  # exp never overflows: the largest term is e^0 = 1
        e = np.exp(shifted)
        return e / np.sum(e, axis=axis, keepdims=True)


class LogSoftmax(Op):
    """x − logsumexp(x) over ``axis``; ḡ = g − softmax(x) · Σ g."""

    name = "log_softmax"

    def infer(self, inputs, *, axis):
        (x,) = inputs
        return TensorType(x.shape, _float_dtype(x.dtype))

    def vjp(self, node, g):
        (x,) = node.inputs
        axis = node.attr["axis"]
        total = reduce.sum(g, axis, keepdims=True)
        return (ew.sub(g, ew.mul(_softmax(x, axis=axis), total)),)

    def impl(self, x, *, axis):
        shifted = _shift_by_max(x, axis)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _shift_by_max(x: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    x = np.asarray(x)
    x = x.astype(_float_dtype(x.dtype.name), copy=False)
    return x - np.max(x, axis=axis, keepdims=True)


_softmax, _log_softmax = Softmax(), LogSoftmax()


def softmax(x: Any, axis: int | tuple[int, ...] = -1) -> Tensor:
    """exp(x) / Σ exp(x) over ``axis`` (one axis or several), computed stably.

    Parameters
    ----------
    x : Tensor or array-like
    axis : int or tuple of int
        The axis (axes) the probabilities sum to one over; the last by default.
    """
    x = as_tensor(x)
    try:
        axes = normalize_axes(axis, x.ndim)
    except ValueError as e:
        raise _type_error("softmax", e, x) from None
    return _softmax(x, axis=axes)


def log_softmax(x: Any, axis: int | tuple[int, ...] = -1) -> Tensor:
    """x − log Σ exp(x) over ``axis``, computed stably (never forms the probabilities)."""
    x = as_tensor(x)
    try:
        axes = normalize_axes(axis, x.ndim)
    except ValueError as e:
        raise _type_error("log_softmax", e, x) from None
    return _log_softmax(x, axis=axes)


# -- maxout ------------------------------------------------------------------------------------


class Maxout(Op):
    """The maximum along one ``axis``; the gradient goes to the first maximum (as torch)."""

    name = "maxout"

    def infer(self, inputs, *, axis):
        (x,) = inputs
        if x.shape[axis] == 0:
            raise ValueError(f"no pieces to take the maximum of along axis {axis}")
        return TensorType(x.shape[:axis] + x.shape[axis + 1:], x.dtype)

    def vjp(self, node, g):
        (x,) = node.inputs
        axis = node.attr["axis"]
        return (ew.mul(shape_ops.expand_dims(g, axis), _first_max_mask(x, axis=axis)),)

    def impl(self, x, *, axis):
        return np.max(x, axis=axis)


class FirstMaxMask(Op):
    """1 at the first maximum along ``axis`` of each lane, 0 elsewhere (x's dtype)."""

    name = "first_max_mask"
    differentiable = False

    def infer(self, inputs, *, axis):
        (x,) = inputs
        return TensorType(x.shape, x.dtype)

    def impl(self, x, *, axis):
        x = np.asarray(x)
        mask = np.zeros_like(x)
        np.put_along_axis(mask, np.argmax(x, axis=axis, keepdims=True), 1, axis=axis)
        return mask


_maxout, _first_max_mask = Maxout(), FirstMaxMask()


def maxout(x: Any, pieces: int | None = None, axis: int = -1) -> Tensor:
    """Maxout (Goodfellow et al., 2013): each unit is the max of ``pieces`` linear pieces.

    Compute the pieces with an ordinary linear layer (``x @ W + b`` with
    ``units * pieces`` outputs), then take ``maxout(z, pieces)``.

    Parameters
    ----------
    x : Tensor
        The pieces' values.
    pieces : int, optional
        When given, ``x.shape[axis]`` must be ``units * pieces`` and holds the
        pieces of each unit next to each other: unit ``i`` is the max of features
        ``i*pieces, ..., (i+1)*pieces - 1``. The result has ``units`` there.
        When left out, ``axis`` is a separate pieces axis and is reduced away.
    axis : int
        The feature axis (with ``pieces``) or the pieces axis (without).

    Returns
    -------
    Tensor
        The maximum; its gradient flows to the first maximal piece.
    """
    x = as_tensor(x)
    try:
        axis = normalize_axis(axis, x.ndim)
        if pieces is None:
            return _maxout(x, axis=axis)
        size = x.shape[axis]
        if not isinstance(size, int) or pieces < 1 or size % pieces:
            raise ValueError(f"axis {axis} of shape {format_shape(x.shape)} is not a multiple "
                             f"of pieces={pieces}")
    except ValueError as e:
        raise _type_error("maxout", e, x) from None
    split = (*x.shape[:axis], size // pieces, pieces, *x.shape[axis + 1:])
    return _maxout(shape_ops.reshape(x, split), axis=axis + 1)


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
        raise _type_error("conv2d", e, x, weight) from None
    out = _conv2d(x, weight, stride=stride, padding=pads, dilation=dilation, groups=int(groups))
    if bias is None:
        return out
    bias = as_tensor(bias)
    if bias.shape != (out.shape[1],):
        raise _type_error("conv2d", ValueError(f"bias of shape {format_shape(bias.shape)} does "
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
        routed = ew.mul(shape_ops.expand_dims(g, 2), _first_max_mask(cols, axis=2))
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
        raise _type_error(op, e, x) from None
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


# -- normalization -----------------------------------------------------------------------------


def _moments(x: Tensor, axes: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Mean and biased variance over ``axes``, kept as size-1 dims (the variance's own mean
    is the same hash-consed node)."""
    return reduce.mean(x, axes, keepdims=True), reduce.var(x, axes, keepdims=True)


def _normalize(x: Tensor, mean: Tensor, var: Tensor, eps: float) -> Tensor:
    """(x − mean) / sqrt(var + eps)."""
    return ew.div(ew.sub(x, mean), ew.sqrt(ew.add(var, eps)))


def _affine(y: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple) -> Tensor:
    """y · weight + bias, with weight and bias reshaped to ``shape`` to broadcast."""
    if weight is not None:
        y = ew.mul(y, shape_ops.reshape(weight, shape))
    if bias is not None:
        y = ew.add(y, shape_ops.reshape(bias, shape))
    return y


def _check_per_channel(op: str, x: Tensor, shape: tuple, named: dict[str, Any]) -> dict:
    """Tensors for the optional per-channel arguments, each of ``shape``."""
    tensors = {k: None if v is None else as_tensor(v, x) for k, v in named.items()}
    for key, t in tensors.items():
        if t is not None and t.shape != shape:
            raise _type_error(op, ValueError(
                f"{key} of shape {format_shape(t.shape)} does not match {format_shape(shape)} "
                f"of input {format_shape(x.shape)}"), x, t)
    return tensors


def _channel_axes(x: Tensor) -> tuple[int, ...]:
    if x.ndim < 2:
        raise _type_error("batch_norm", ValueError(
            f"input must be (N, C, ...), got shape {format_shape(x.shape)}"), x)
    return (0, *range(2, x.ndim))


def batch_norm_stats(x: Any) -> tuple[Tensor, Tensor]:
    """The batch mean and biased variance of each channel (axis 1) of (N, C, ...) input.

    Returns
    -------
    (Tensor, Tensor)
        Mean and variance, each of shape (C,).
    """
    x = as_tensor(x)
    mean, var = _moments(x, _channel_axes(x))
    return (shape_ops.reshape(mean, (x.shape[1],)), shape_ops.reshape(var, (x.shape[1],)))


def batch_norm(x: Any, gamma: Any = None, beta: Any = None, running_mean: Any = None,
               running_var: Any = None, training: bool = True, eps: float = 1e-5,
               momentum: float = 0.1) -> Tensor | tuple[Tensor, Tensor, Tensor]:
    """Batch normalization (Ioffe & Szegedy, 2015) over channel axis 1 of (N, C) or (N, C, ...).

    Parameters
    ----------
    x : Tensor
        Input; every axis but 1 is a batch axis.
    gamma, beta : Tensor, optional
        Per-channel scale and shift, of shape (C,).
    running_mean, running_var : Tensor, optional
        Per-channel running statistics (C,), e.g. params. Needed when not training.
    training : bool
        Normalize with the batch's statistics (True) or the running ones (False).
    eps : float
        Added to the variance.
    momentum : float
        Weight of the batch in the new running statistics.

    Returns
    -------
    Tensor or (Tensor, Tensor, Tensor)
        The output, ``(x − μ) / sqrt(σ² + eps) · gamma + beta``. When training with
        running statistics, also the new running mean and variance,
        ``(1 − momentum) · running + momentum · batch`` (the batch variance unbiased,
        as torch), to use as param updates::

            y, mean, var = gx.batch_norm(x, g, b, rm, rv)
            step = gx.compile([x], loss, updates={rm: mean, rv: var, ...})
    """
    x = as_tensor(x)
    axes = _channel_axes(x)
    c = x.shape[1]
    args = _check_per_channel("batch_norm", x, (c,), {
        "gamma": gamma, "beta": beta, "running_mean": running_mean, "running_var": running_var})
    stats = (args["running_mean"], args["running_var"])
    if (stats[0] is None) != (stats[1] is None):
        raise _type_error("batch_norm", ValueError("give both running_mean and running_var, "
                                                   "or neither"), x)
    channel_shape = (1, c, *(1,) * (x.ndim - 2))
    if not training:
        if stats[0] is None:
            raise _type_error("batch_norm", ValueError("inference (training=False) needs "
                                                       "running_mean and running_var"), x)
        mean, var = (shape_ops.reshape(s, channel_shape) for s in stats)
        return _affine(_normalize(x, mean, var, eps), args["gamma"], args["beta"], channel_shape)
    count = reduce.size(x, axes, x.dtype)
    if isinstance(count, int) and count < 2:
        raise _type_error("batch_norm", ValueError(
            f"training needs more than one value per channel, input {format_shape(x.shape)}"), x)
    mean, var = _moments(x, axes)
    y = _affine(_normalize(x, mean, var, eps), args["gamma"], args["beta"], channel_shape)
    if stats[0] is None:
        return y
    unbiased = ew.mul(var, ew.div(count, ew.sub(count, 1.0)) if isinstance(count, Tensor)
                      else count / (count - 1))
    new_mean, new_var = (
        ew.add(ew.mul(running, 1.0 - momentum), ew.mul(shape_ops.reshape(batch, (c,)), momentum))
        for running, batch in zip(stats, (mean, unbiased), strict=True))
    return y, new_mean, new_var


def layer_norm(x: Any, normalized_shape: int | Sequence[int | str], weight: Any = None,
               bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization (Ba et al., 2016) over the last dims.

    Parameters
    ----------
    x : Tensor
        Input whose trailing dims are ``normalized_shape``.
    normalized_shape : int or tuple
        The trailing dims each example is normalized over.
    weight, bias : Tensor, optional
        Elementwise affine transform of shape ``normalized_shape``.
    eps : float
        Added to the variance.
    """
    x = as_tensor(x)
    shape = (normalized_shape,) if isinstance(normalized_shape, int | str) \
        else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or k > x.ndim or tuple(x.shape[x.ndim - k:]) != shape:
        raise _type_error("layer_norm", ValueError(
            f"normalized_shape {format_shape(shape)} is not the trailing dims of input "
            f"{format_shape(x.shape)}"), x)
    args = _check_per_channel("layer_norm", x, shape, {"weight": weight, "bias": bias})
    mean, var = _moments(x, tuple(range(x.ndim - k, x.ndim)))
    return _affine(_normalize(x, mean, var, eps), args["weight"], args["bias"], shape)


# -- dropout -----------------------------------------------------------------------------------


def dropout(x: Any, p: float = 0.5, training: bool = True, *, key: int | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1−p).

    Parameters
    ----------
    x : Tensor
    p : float
        Probability of dropping an element, in [0, 1].
    training : bool
        When False, dropout is the identity.
    key : int, optional
        The random key (see ``gx.bernoulli_like``): the same key draws the same mask,
        so two dropouts with one key are one node; left out, a fresh key is used. The
        mask is drawn once per call, so the gradient (mask / (1 − p)) uses the forward's.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p={p} is not a probability")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return ew.zeros_like(x)
    mask = rand.bernoulli_like(x, 1.0 - p, key=key)
    return ew.div(ew.mul(x, mask), 1.0 - p)


def dropconnect(weight: Any, p: float = 0.5, training: bool = True, *,
                key: int | None = None) -> Tensor:
    """DropConnect (Wan et al., 2013): inverted dropout of a layer's weights.

    Drops each weight with probability ``p`` and scales the kept ones by 1/(1−p), so
    ``x @ dropconnect(W, p)`` is a random sub-network of ``x @ W`` with the same mean.
    Identity when not training; ``key`` as in ``dropout``.
    """
    return dropout(weight, p, training, key=key)


__all__ = [
    "softmax", "log_softmax", "maxout", "conv2d", "max_pool2d", "avg_pool2d",
    "batch_norm", "batch_norm_stats", "layer_norm", "dropout", "dropconnect",
]
