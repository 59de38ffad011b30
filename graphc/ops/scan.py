"""Scans and sorting along one axis: ``cumsum``, ``cumprod``, ``sort``, ``argsort``, ``topk``.

``cumsum`` and ``cumprod`` take ``exclusive`` (element i sees the elements before it,
not itself: the first result is the identity, 0 or 1) and ``reverse`` (scan from the
end). Both widen bools and small ints as ``np.cumsum`` does. Their derivatives are
scans themselves: the transpose of a scan is the scan in the other direction.

``argsort`` is the one sorting primitive: stable (equal keys keep the lower index
first, which ONNX TopK requires), NaN sorted as the largest value, as NumPy does (last
ascending, first descending). ``sort`` and ``topk`` are written with it and
``take_along_axis``, so their values carry gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ops import elementwise as ew
from graphc.ops._dims import checked_arguments
from graphc.ops.base import Op
from graphc.ops.indexing import getitem, take_along_axis
from graphc.tensor import Tensor, as_tensor
from graphc.types import TensorType, normalize_axis


def _widened(dtype: str) -> str:
    return np.cumsum(np.zeros(1, dtype)).dtype.name  # NumPy widens bool and small ints


def _flip(a: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
    return np.flip(a, axis) if reverse else a


def _scan_impl(ufunc: np.ufunc, x: np.ndarray, axis: int, exclusive: bool, reverse: bool,
               dtype: str) -> np.ndarray:
    """``ufunc.accumulate`` along ``axis`` in scan order, shifted by one when exclusive."""
    x = _flip(np.asarray(x).astype(dtype, copy=False), axis, reverse)
    out = ufunc.accumulate(x, axis=axis, dtype=dtype) if x.size else x.copy()
    if exclusive:  # shift by one along the axis, the identity first
        shifted = np.moveaxis(np.full_like(out, ufunc.identity), axis, 0)
        shifted[1:] = np.moveaxis(out, axis, 0)[:-1]
        out = np.moveaxis(shifted, 0, axis)
    return np.ascontiguousarray(_flip(out, axis, reverse))


class Scan(Op):
    """Shared type rule: the input's shape, NumPy's widened dtype."""

    def infer(self, inputs: tuple[TensorType, ...], *, axis: int, exclusive: bool,
              reverse: bool) -> TensorType:
        (x,) = inputs
        return TensorType(x.shape, _widened(x.dtype))


class CumSum(Scan):
    """y_i = Σ_{j ≤ i} x_j in scan order (j < i when exclusive)."""

    name = "cumsum"

    def vjp(self, node, g):
        # x_k reaches every y_i whose window holds it: the same scan, run the other way
        a = node.attr
        return (_cumsum(g, axis=a["axis"], exclusive=a["exclusive"], reverse=not a["reverse"]),)

    def impl(self, x, *, axis, exclusive, reverse):
        return _scan_impl(np.add, x, axis, exclusive, reverse, _widened(np.asarray(x).dtype.name))


class CumProd(Scan):
    """y_i = ∏_{j ≤ i} x_j in scan order (j < i when exclusive).

    The derivative ∂y_i/∂x_k = ∏_{j in window i, j≠k} x_j is computed without dividing
    by zero, as ``prod``'s: with x̃ = x where nonzero and 1 at zeros, ỹ = cumprod(x̃),
    z_i the number of zeros in window i and Z_i their sum (0 in value, but a factor
    that carries the derivative of the zero it stands for):

    * x_k ≠ 0: the product is ỹ_i/x̃_k times 1 (z_i = 0), Z_i (z_i = 1) or 0;
    * x_k = 0: it is ỹ_i times 1 (z_i = 1: x_k is the only zero), Z_i − x_k (z_i = 2:
      the other zero) or 0.

    Summing over the windows holding k is the reverse scan (``cumsum`` other way), so
    the rule is O(n) and exact at zeros, second derivatives included.
    """

    name = "cumprod"

    def vjp(self, node, g):
        x = node.inputs[0]
        a = node.attr
        flags = {"axis": a["axis"], "exclusive": a["exclusive"], "reverse": a["reverse"]}

        def scan(t: Tensor) -> Tensor:  # Σ over the windows that hold each position
            return _cumsum(t, axis=a["axis"], exclusive=a["exclusive"], reverse=not a["reverse"])

        is_zero = ew.equal(x, 0)
        safe = ew.where(is_zero, 1, x)
        partial = ew.mul(g, _cumprod(safe, **flags))
        zeros = _cumsum(ew.cast(is_zero, x.dtype), **flags)
        zero_sum = _cumsum(ew.where(is_zero, x, 0), **flags)
        none, one, two = (ew.equal(zeros, n) for n in (0, 1, 2))
        nonzero_factor = ew.where(none, 1, ew.where(one, zero_sum, 0))
        at_nonzero = ew.div(scan(ew.mul(partial, nonzero_factor)), safe)
        at_two = ew.where(two, partial, 0)
        at_zero = ew.add(scan(ew.where(one, partial, 0)),
                         ew.sub(scan(ew.mul(at_two, zero_sum)), ew.mul(x, scan(at_two))))
        return (ew.where(is_zero, at_zero, at_nonzero),)

    def impl(self, x, *, axis, exclusive, reverse):
        return _scan_impl(np.multiply, x, axis, exclusive, reverse,
                          _widened(np.asarray(x).dtype.name))


class ArgSort(Op):
    """Indices (int64) that sort ``x`` along ``axis``: stable, NaN as the largest value."""

    name = "argsort"
    differentiable = False

    def infer(self, inputs, *, axis, descending):
        (x,) = inputs
        return TensorType(x.shape, "int64")

    def impl(self, x, *, axis, descending):
        x = np.asarray(x)
        if not descending:
            return np.argsort(x, axis=axis, kind="stable").astype(np.int64)
        # ascending stable order of the flipped keys, read backwards: largest first, and
        # among equal keys (NaNs too) the lower original index first
        n = x.shape[axis]
        order = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
        return np.ascontiguousarray(np.flip(n - 1 - order, axis)).astype(np.int64)


_cumsum, _cumprod, _argsort = CumSum(), CumProd(), ArgSort()


def _axis(op: str, x: Tensor, axis: Any) -> int:
    with checked_arguments(op, x):
        if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
            raise TypeError(f"axis must be an int, got {axis!r}")
        return normalize_axis(int(axis), x.ndim)


def cumsum(x: Any, axis: int, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Running sum along ``axis``, as ``np.cumsum`` (bools and small ints widen).

    ``exclusive``: element i sums the elements before it (the first is 0); ``reverse``:
    sums run from the end of the axis. The gradient is the scan run the other way.
    """
    x = as_tensor(x)
    return _cumsum(x, axis=_axis("cumsum", x, axis), exclusive=bool(exclusive),
                   reverse=bool(reverse))


def cumprod(x: Any, axis: int, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Running product along ``axis``, as ``np.cumprod`` (bools and small ints widen).

    ``exclusive``: element i multiplies the elements before it (the first is 1);
    ``reverse``: products run from the end. The gradient (and its gradient) is exact and
    finite when ``x`` holds zeros: no division by an element that is zero.
    """
    x = as_tensor(x)
    return _cumprod(x, axis=_axis("cumprod", x, axis), exclusive=bool(exclusive),
                    reverse=bool(reverse))


def argsort(x: Any, axis: int = -1, descending: bool = False) -> Tensor:
    """Indices (int64) sorting ``x`` along ``axis``, stable: equal values keep their
    order (the lower index first, also when ``descending``). NaN counts as the largest
    value: last ascending (as ``np.argsort``), first descending. No gradient."""
    x = as_tensor(x)
    return _argsort(x, axis=_axis("argsort", x, axis), descending=bool(descending))


def sort(x: Any, axis: int = -1, descending: bool = False) -> Tensor:
    """``x`` sorted along ``axis`` (ascending unless ``descending``; NaN as the largest).

    Written as ``take_along_axis(x, argsort(x))``, so the gradient of each sorted value
    goes back to the element it came from.
    """
    x = as_tensor(x)
    axis = _axis("sort", x, axis)
    return take_along_axis(x, argsort(x, axis, descending), axis)


def topk(x: Any, k: int, axis: int = -1, largest: bool = True,
         sorted: bool = True) -> tuple[Tensor, Tensor]:  # noqa: A002
    """The ``k`` largest (``largest=False``: smallest) elements along ``axis``.

    Returns ``(values, indices)``, indices int64; ordered largest first (smallest first),
    equal values by lower index first (as ONNX TopK). ``sorted=False`` allows any order;
    this gives the sorted one. ``values`` is ``take_along_axis(x, indices)`` and carries
    gradients back to the chosen elements.
    """
    x = as_tensor(x)
    axis = _axis("topk", x, axis)
    with checked_arguments("topk", x):
        n = x.shape[axis]
        if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 0:
            raise ValueError(f"k must be a non-negative int, got {k!r}")
        if isinstance(n, int) and k > n:
            raise ValueError(f"k={k} is larger than axis {axis} of size {n}")
    order = argsort(x, axis, descending=bool(largest))
    index = (slice(None),) * axis + (slice(0, int(k)),)
    indices = getitem(order, index)
    return take_along_axis(x, indices, axis), indices


__all__ = ["cumsum", "cumprod", "argsort", "sort", "topk"]
