"""Neural-network ops: softmax, maxout, normalization, dropout.

Primitives where a closed-form derivative is cleaner or stabler than the chain of
its parts (softmax, log_softmax, maxout), composites elsewhere (batch and layer
norm, dropout). Convolution and pooling live in ``graphc.ops.conv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.errors import GraphcTypeError, user_location
from graphc.ops import elementwise as ew
from graphc.ops import random as rand
from graphc.ops import reduce
from graphc.ops import shape as shape_ops
from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor
from graphc.types import (
    FLOAT_DTYPES,
    TensorType,
    format_shape,
    normalize_axes,
    normalize_axis,
)


def _float_dtype(dtype: str) -> str:
    """Softmax and friends compute in the input's float type; integers go to float64."""
    return dtype if dtype in FLOAT_DTYPES else "float64"


def type_error(op: str, error: Exception, *tensors: Tensor) -> GraphcTypeError:
    """``error``, raised while normalising ``op``'s arguments, as the ``GraphcTypeError``
    users see (also used by ``graphc.ops.conv``)."""
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
        raise type_error("softmax", e, x) from None
    return _softmax(x, axis=axes)


def log_softmax(x: Any, axis: int | tuple[int, ...] = -1) -> Tensor:
    """x − log Σ exp(x) over ``axis``, computed stably (never forms the probabilities)."""
    x = as_tensor(x)
    try:
        axes = normalize_axes(axis, x.ndim)
    except ValueError as e:
        raise type_error("log_softmax", e, x) from None
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
        return (ew.mul(shape_ops.expand_dims(g, axis), first_max_mask(x, axis=axis)),)

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


# first_max_mask also routes max_pool2d's gradient (graphc.ops.conv)
_maxout, first_max_mask = Maxout(), FirstMaxMask()


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
        raise type_error("maxout", e, x) from None
    split = (*x.shape[:axis], size // pieces, pieces, *x.shape[axis + 1:])
    return _maxout(shape_ops.reshape(x, split), axis=axis + 1)


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
            raise type_error(op, ValueError(
                f"{key} of shape {format_shape(t.shape)} does not match {format_shape(shape)} "
                f"of input {format_shape(x.shape)}"), x, t)
    return tensors


def _channel_axes(x: Tensor) -> tuple[int, ...]:
    if x.ndim < 2:
        raise type_error("batch_norm", ValueError(
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
        raise type_error("batch_norm", ValueError("give both running_mean and running_var, "
                                                   "or neither"), x)
    channel_shape = (1, c, *(1,) * (x.ndim - 2))
    if not training:
        if stats[0] is None:
            raise type_error("batch_norm", ValueError("inference (training=False) needs "
                                                       "running_mean and running_var"), x)
        mean, var = (shape_ops.reshape(s, channel_shape) for s in stats)
        return _affine(_normalize(x, mean, var, eps), args["gamma"], args["beta"], channel_shape)
    count = reduce.size(x, axes, x.dtype)
    if isinstance(count, int) and count < 2:
        raise type_error("batch_norm", ValueError(
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
        raise type_error("layer_norm", ValueError(
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
    "softmax", "log_softmax", "maxout",
    "batch_norm", "batch_norm_stats", "layer_norm", "dropout", "dropconnect",
]
