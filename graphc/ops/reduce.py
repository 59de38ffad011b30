"""Reductions over axes, with ``keepdims``.

Every reduction takes ``axis`` as an int, a tuple of ints (negative ones count from
the end) or ``None`` for all axes, and ``keepdims`` as in NumPy. Primitives (``sum``,
``prod``, ``max``, ``min``, ``argmax``, ``argmin``, ``logsumexp`` and the 2-norm) are
ops with their own derivative; ``mean``, ``var``, ``std`` and the other norms are
written with them. Divisors of symbolic dims are counted at run time by ``size``, so
no symbolic size is ever baked into a graph as a number.

Kinks follow PyTorch: ``max``/``min`` split the gradient evenly among ties (as
``torch.amax``), the 2-norm's gradient at 0 is 0, and ``prod``'s gradient is exact
with zeros in the input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from graphc.ops import elementwise as ew
from graphc.ops import shape as shape_ops
from graphc.ops._dims import checked_arguments
from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor
from graphc.types import FLOAT_DTYPES, TensorType, as_dtype, normalize_axes, normalize_axis

Axis = int | tuple[int, ...] | None


def reduced_shape(shape: tuple, axes: tuple[int, ...], keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


class Reduction(Op):
    """Shared type rule: ``axis`` is a sorted tuple of non-negative axes."""

    def infer(self, inputs: tuple[TensorType, ...], *, axis: tuple[int, ...],
              keepdims: bool) -> TensorType:
        (x,) = inputs
        return TensorType(reduced_shape(x.shape, axis, keepdims), self.result_dtype(x.dtype))

    def result_dtype(self, dtype: str) -> str:
        return dtype


def _keep(t: Tensor, axis: tuple[int, ...], keepdims: bool) -> Tensor:
    """A reduction's result (or cotangent) with the reduced axes back as size 1."""
    return t if keepdims else shape_ops.expand_dims(t, axis)


def _expand_back(g: Tensor, x: Tensor, axis: tuple[int, ...], keepdims: bool) -> Tensor:
    """Undo a reduction's shape: reinsert reduced axes, broadcast to ``x``'s shape."""
    return shape_ops.broadcast_to(_keep(g, axis, keepdims), x.shape)


def _axes(op: str, x: Tensor, axis: Axis) -> tuple[int, ...]:
    with checked_arguments(op, x):
        return normalize_axes(axis, x.ndim)


def _float(x: Tensor) -> Tensor:
    """``x``, with bools and ints cast to float64 (NumPy's result type for means and norms)."""
    return x if x.dtype in FLOAT_DTYPES else ew.cast(x, "float64")


def _widened(dtype: str) -> str:
    return np.sum(np.zeros(0, dtype)).dtype.name  # NumPy widens bool and small ints


# -- sum and prod ------------------------------------------------------------------------------


class Sum(Reduction):
    name = "sum"

    def result_dtype(self, dtype: str) -> str:
        return _widened(dtype)

    def vjp(self, node, g):
        return (_expand_back(g, node.inputs[0], **node.attr),)

    def impl(self, x, *, axis, keepdims):
        return np.sum(x, axis=axis, keepdims=keepdims)


class Prod(Reduction):
    """∏ over ``axis``; ∂/∂x_i = ∏_{k≠i} x_k, computed without dividing by zero."""

    name = "prod"

    def result_dtype(self, dtype: str) -> str:
        return _widened(dtype)

    def vjp(self, node, g):
        x, axis, keepdims = node.inputs[0], node.attr["axis"], node.attr["keepdims"]
        return (ew.mul(_keep(g, axis, keepdims), _product_of_others(x, axis)),)

    def impl(self, x, *, axis, keepdims):
        return np.prod(x, axis=axis, keepdims=keepdims)


def _product_of_others(x: Tensor, axis: tuple[int, ...]) -> Tensor:
    """∏_{k≠i} x_k along ``axis`` for every i, exact when x holds zeros.

    With x̃ = x where nonzero and 1 at zeros, P = ∏ x̃, and z_i the number of zeros
    other than x_i: ∏_{k≠i} x_k = P/x̃_i · (1 if z_i = 0; the other zero if z_i = 1;
    0 if z_i ≥ 2). "The other zero" is 0 in value but kept as a factor, so the second
    derivative through it (∏ of the rest) is right too.
    """
    is_zero = ew.equal(x, 0)
    safe = ew.where(is_zero, 1, x)
    product = prod(safe, axis, keepdims=True)
    zeros_here = ew.cast(is_zero, x.dtype)
    zeros_elsewhere = ew.sub(sum(zeros_here, axis, keepdims=True), zeros_here)
    zero_here = ew.where(is_zero, x, 0)
    zero_elsewhere = ew.sub(sum(zero_here, axis, keepdims=True), zero_here)
    factor = ew.where(ew.equal(zeros_elsewhere, 0), 1,
                      ew.where(ew.equal(zeros_elsewhere, 1), zero_elsewhere, 0))
    return ew.mul(ew.div(product, safe), factor)


_sum, _prod = Sum(), Prod()


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all axes when ``None``); bools and small ints widen as in NumPy."""
    x = as_tensor(x)
    return _sum(x, axis=_axes("sum", x, axis), keepdims=bool(keepdims))


def prod(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Product over ``axis``. The gradient is the product of the other elements, exact
    (and finite) with zeros in ``x``."""
    x = as_tensor(x)
    return _prod(x, axis=_axes("prod", x, axis), keepdims=bool(keepdims))


# -- max and min -------------------------------------------------------------------------------


class Extremum(Reduction):
    """max or min; the gradient goes to the elements equal to the result, split evenly
    among ties (``torch.amax``/``amin``)."""

    def vjp(self, node, g):
        x, axis, keepdims = node.inputs[0], node.attr["axis"], node.attr["keepdims"]
        hit = ew.cast(ew.equal(x, _keep(node, axis, keepdims)), g.dtype)
        ties = sum(hit, axis, keepdims=True)
        return (ew.mul(_keep(g, axis, keepdims), ew.div(hit, ties)),)

    def infer(self, inputs, *, axis, keepdims):
        (x,) = inputs
        empty = [a for a in axis if x.shape[a] == 0]
        if empty:
            raise ValueError(f"{self.name} over axis {empty[0]} of size 0 has no identity")
        return super().infer(inputs, axis=axis, keepdims=keepdims)


class Max(Extremum):
    name = "max"

    def impl(self, x, *, axis, keepdims):
        return np.max(x, axis=axis, keepdims=keepdims)


class Min(Extremum):
    name = "min"

    def impl(self, x, *, axis, keepdims):
        return np.min(x, axis=axis, keepdims=keepdims)


_max, _min = Max(), Min()


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Largest element over ``axis``; ties share the gradient evenly."""
    x = as_tensor(x)
    return _max(x, axis=_axes("max", x, axis), keepdims=bool(keepdims))


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Smallest element over ``axis``; ties share the gradient evenly."""
    x = as_tensor(x)
    return _min(x, axis=_axes("min", x, axis), keepdims=bool(keepdims))


class ArgExtremum(Op):
    """Index of the first max/min along one axis (``None``: of the flattened input)."""

    differentiable = False

    def infer(self, inputs, *, axis, keepdims):
        (x,) = inputs
        axes = tuple(range(x.ndim)) if axis is None else (axis,)
        if any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{self.name} of an empty axis")
        return TensorType(reduced_shape(x.shape, axes, keepdims), "int64")


class ArgMax(ArgExtremum):
    name = "argmax"

    def impl(self, x, *, axis, keepdims):
        return np.asarray(np.argmax(x, axis=axis, keepdims=keepdims), np.int64)


class ArgMin(ArgExtremum):
    name = "argmin"

    def impl(self, x, *, axis, keepdims):
        return np.asarray(np.argmin(x, axis=axis, keepdims=keepdims), np.int64)


_argmax, _argmin = ArgMax(), ArgMin()


def _arg_axis(op: str, x: Tensor, axis: int | None) -> int | None:
    with checked_arguments(op, x):
        if axis is None:
            return None
        if not isinstance(axis, int | np.integer):
            raise TypeError(f"axis must be an int or None, got {axis!r}")
        return normalize_axis(int(axis), x.ndim)


def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index (int64) of the first largest element along ``axis``; ``None`` flattens ``x``
    as NumPy does. Carries no gradient."""
    x = as_tensor(x)
    return _argmax(x, axis=_arg_axis("argmax", x, axis), keepdims=bool(keepdims))


def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index (int64) of the first smallest element along ``axis``; ``None`` flattens ``x``
    as NumPy does. Carries no gradient."""
    x = as_tensor(x)
    return _argmin(x, axis=_arg_axis("argmin", x, axis), keepdims=bool(keepdims))


# -- counts, means, moments --------------------------------------------------------------------


class AxisSize(Op):
    """The run-time number of elements over ``axis`` of the input, a scalar of ``dtype``."""

    name = "axis_size"
    differentiable = False

    def infer(self, inputs, *, axis, dtype):
        return TensorType((), dtype)

    def impl(self, x, *, axis, dtype):
        return np.asarray(math.prod(np.shape(x)[a] for a in axis), dtype)


_axis_size = AxisSize()


def size(x: Any, axis: Axis = None, dtype: Any = "int64") -> Tensor | int:
    """How many elements ``x`` has over ``axis`` (all axes when ``None``).

    A Python int when those dims are static; otherwise a scalar node of ``dtype``
    counted when the graph runs (the divisor of a mean over a symbolic batch).
    """
    x = as_tensor(x)
    axes = _axes("size", x, axis)
    dims = [x.shape[a] for a in axes]
    if all(isinstance(d, int) for d in dims):
        return math.prod(dims)
    return _axis_size(x, axis=axes, dtype=as_dtype(dtype))


def _divide_by_count(total: Tensor, x: Tensor, axes: tuple[int, ...], ddof: int = 0) -> Tensor:
    """``total / (n - ddof)`` with ``n`` the element count over ``axes`` of ``x``; a static
    count is a weakly typed Python number, so float32 stays float32."""
    dtype = total.dtype if total.dtype in FLOAT_DTYPES else "float64"
    count = size(x, axes, dtype)
    if isinstance(count, int):
        return ew.div(total, count - ddof)
    return ew.div(total, ew.sub(count, ddof) if ddof else count)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis``; ints and bools give float64, as in NumPy."""
    x = as_tensor(x)
    axes = _axes("mean", x, axis)
    return _divide_by_count(sum(x, axes, keepdims), x, axes)


def var(x: Any, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance over ``axis``: Σ(x − mean)² / (n − ddof), two-pass for accuracy.

    ``ddof=0`` (NumPy's default) is the biased estimate; ``ddof=1`` is torch's default
    ``correction=1``.
    """
    x = _float(as_tensor(x))
    axes = _axes("var", x, axis)
    centered = ew.sub(x, mean(x, axes, keepdims=True))
    return _divide_by_count(sum(ew.square(centered), axes, keepdims), x, axes, int(ddof))


def std(x: Any, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Standard deviation over ``axis``: ``sqrt(var(x, axis, keepdims, ddof))``."""
    return ew.sqrt(var(x, axis, keepdims, ddof))


# -- logsumexp and norms -----------------------------------------------------------------------


class LogSumExp(Reduction):
    """log Σ exp(x), computed as m + log Σ exp(x − m) with m the max, so it neither
    overflows nor underflows; its gradient is the softmax exp(x − out)."""

    name = "logsumexp"

    def vjp(self, node, g):
        x, axis, keepdims = node.inputs[0], node.attr["axis"], node.attr["keepdims"]
        softmax = ew.exp(ew.sub(x, _keep(node, axis, keepdims)))
        return (ew.mul(_keep(g, axis, keepdims), softmax),)

    def impl(self, x, *, axis, keepdims):
        peak = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
        peak = np.where(np.isfinite(peak), peak, 0)  # all -inf (or empty): any shift works
        with np.errstate(divide="ignore"):
            out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
        return out if keepdims else np.squeeze(out, axis=axis)


class L2Norm(Reduction):
    """sqrt(Σ x²); the gradient x / norm is taken as 0 where the norm is 0 (as torch)."""

    name = "l2_norm"

    def vjp(self, node, g):
        x, axis, keepdims = node.inputs[0], node.attr["axis"], node.attr["keepdims"]
        norm = _keep(node, axis, keepdims)
        safe = ew.where(ew.equal(norm, 0), 1, norm)  # x is all 0 there, so x / 1 = 0
        return (ew.mul(_keep(g, axis, keepdims), ew.div(x, safe)),)

    def impl(self, x, *, axis, keepdims):
        return np.sqrt(np.sum(np.square(x), axis=axis, keepdims=keepdims))


_logsumexp, _l2_norm = LogSumExp(), L2Norm()


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """``log(sum(exp(x), axis))``, stable for large and very negative inputs; its
    gradient is ``softmax(x, axis)``. Ints give float64."""
    x = _float(as_tensor(x))
    return _logsumexp(x, axis=_axes("logsumexp", x, axis), keepdims=bool(keepdims))


def norm(x: Any, ord: float | str = 2, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A002
    """Vector norm of ``x`` over ``axis`` (all axes when ``None``), as
    ``torch.linalg.vector_norm``.

    Parameters
    ----------
    x : Tensor
    ord : {2, 1, inf, -inf, 0, 'fro'} or float > 0
        2 (default): sqrt(Σx²), with gradient 0 at x = 0 (torch's subgradient);
        'fro' is the same number over the given axes; 1: Σ|x|; inf / -inf: max / min |x|
        (ties share the gradient); 0: the count of nonzeros; other p > 0: (Σ|x|^p)^(1/p).
        Matrix norms (spectral, nuclear) are not provided: over two axes this is the
        norm of their flattened elements, not ``np.linalg.norm``'s matrix 1- or inf-norm.
    axis : int, tuple of int or None
    keepdims : bool
    """
    x = _float(as_tensor(x))
    axes = _axes("norm", x, axis)
    keepdims = bool(keepdims)
    if ord in (2, "fro"):
        return _l2_norm(x, axis=axes, keepdims=keepdims)
    if ord == 1:
        return sum(ew.abs(x), axes, keepdims)
    if ord == math.inf:
        return max(ew.abs(x), axes, keepdims)
    if ord == -math.inf:
        return min(ew.abs(x), axes, keepdims)
    if ord == 0:
        return sum(ew.cast(ew.not_equal(x, 0), x.dtype), axes, keepdims)
    if isinstance(ord, int | float) and not isinstance(ord, bool) and ord > 0:
        return ew.pow(sum(ew.pow(ew.abs(x), float(ord)), axes, keepdims), 1.0 / ord)
    with checked_arguments("norm", x):
        raise ValueError(f"ord must be 2, 1, inf, -inf, 0, 'fro' or a positive number, "
                         f"got {ord!r}")


__all__ = [
    "sum", "prod", "max", "min", "argmax", "argmin", "size", "mean", "var", "std",
    "logsumexp", "norm",
]
