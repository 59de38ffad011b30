"""ONNX reductions, arg-extrema, softmax family, scans, TopK and normalizations as graphc
graph.

Reductions take ``axes`` as an attribute up to a version (ReduceSum 11, the others 13)
and as an optional input after it, where an absent or empty ``axes`` reduces everything
unless ``noop_with_empty_axes`` (then the node is the identity). Results keep the input's
dtype (graphc widens small ints as NumPy; the handler casts back, which wraps the same
way ONNX runtimes do). A reduction over an empty set gives the ONNX reference's identity:
0 for sums and norms, 1 for products, −inf for log-sums, and the dtype's lowest (highest)
value for max (min).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

import graphc as gx
from graphc.onnx.registry import handler
from graphc.ops.scan import cumprod, cumsum, topk
from graphc.tensor import Tensor
from graphc.types import normalize_axes, normalize_axis

# -- reductions ---------------------------------------------------------------------------------

Reducer = Callable[[Tensor, tuple[int, ...], bool], Tensor]


def _same_dtype(y: Tensor, dtype: str) -> Tensor:
    return y if y.dtype == dtype else gx.cast(y, dtype)


def _log_sum(x, axes, keepdims):
    return gx.log(gx.sum(x, axes, keepdims))


def _sum_square(x, axes, keepdims):
    return gx.sum(gx.square(x), axes, keepdims)


def _l1(x, axes, keepdims):
    return gx.sum(gx.abs(x), axes, keepdims)


def _l2(x, axes, keepdims):
    if x.dtype not in ("float16", "float32", "float64"):  # ints: sqrt of the exact sum
        return gx.sqrt(gx.cast(_sum_square(x, axes, keepdims), "float64"))
    return gx.norm(x, 2, axes, keepdims)


def _log_sum_exp(x, axes, keepdims):
    return gx.logsumexp(x, axes, keepdims)


#: ONNX op -> (graphc reduction, the value of an empty reduction: a number or "lowest" /
#: "highest" of the dtype)
REDUCTIONS: dict[str, tuple[Reducer, float | str]] = {
    "ReduceSum": (gx.sum, 0), "ReduceMean": (gx.mean, math.nan), "ReduceProd": (gx.prod, 1),
    "ReduceMax": (gx.max, "lowest"), "ReduceMin": (gx.min, "highest"),
    "ReduceL1": (_l1, 0), "ReduceL2": (_l2, 0), "ReduceLogSum": (_log_sum, -math.inf),
    "ReduceLogSumExp": (_log_sum_exp, -math.inf), "ReduceSumSquare": (_sum_square, 0),
}


def _empty_value(dtype: str, value: float | str) -> float | int | bool:
    kind = np.dtype(dtype).kind
    if isinstance(value, str):
        low = value == "lowest"
        if kind == "b":
            return not low
        if kind in "iu":
            info = np.iinfo(dtype)
            return int(info.min if low else info.max)
        return -math.inf if low else math.inf
    return value


def _reduce(node, axes: list[int] | None) -> Tensor:
    x = node.input(0)
    keepdims = bool(node.attr("keepdims", 1))
    if not axes:  # absent or empty: everything, or nothing with noop_with_empty_axes
        if node.attr("noop_with_empty_axes", 0):
            return x
        axes_t = tuple(range(x.ndim))
    else:
        axes_t = normalize_axes(tuple(int(a) for a in axes), x.ndim)
    reducer, empty = REDUCTIONS[node.op_type]
    if any(x.shape[a] == 0 for a in range(x.ndim)):
        # an empty input: every result (if any) reduces an empty set or is empty itself
        shape = tuple(1 if a in axes_t else d for a, d in enumerate(x.shape)) if keepdims \
            else tuple(d for a, d in enumerate(x.shape) if a not in axes_t)
        if all(isinstance(d, int) for d in shape):
            return np.full(shape, _empty_value(x.dtype, empty), x.dtype)
        raise node.unsupported("an empty input with symbolic dims")
    return _same_dtype(reducer(x, axes_t, keepdims), x.dtype)


def _axes_attr(node):
    axes = node.attr("axes")
    return None if axes is None else list(axes)


def _axes_input(node):
    if not node.has(1):
        return None
    return [int(a) for a in np.asarray(node.value(1)).ravel()]


for _op in REDUCTIONS:
    handler(_op, since=1)(lambda node: _reduce(node, _axes_attr(node)))
    handler(_op, since=13 if _op == "ReduceSum" else 18)(
        lambda node: _reduce(node, _axes_input(node)))


# -- argmax, argmin -----------------------------------------------------------------------------

@handler("ArgMax", "ArgMin", since=1)
def arg_extremum(node):
    x = node.input(0)
    axis = normalize_axis(int(node.attr("axis", 0)), x.ndim)
    keepdims = bool(node.attr("keepdims", 1))
    fn = gx.argmax if node.op_type == "ArgMax" else gx.argmin
    if x.shape[axis] == 0:
        raise node.error(f"{node.op_type} over an empty axis")
    if not node.attr("select_last_index", 0):
        return fn(x, axis, keepdims)
    # the last extremum: the first one of the reversed axis, counted from the end
    flipped = gx.getitem(x, (slice(None),) * axis + (slice(None, None, -1),))
    n = gx.size(x, axis, "int64")  # an int when static, else counted at run time
    first = fn(flipped, axis, keepdims)
    return gx.sub(n - 1, first) if isinstance(n, int) else gx.sub(gx.sub(n, 1), first)


# -- softmax, log-softmax, hardmax -------------------------------------------------------------

def _softmax_axes(node, x: Tensor) -> tuple[int, ...]:
    """Before opset 13 the input is read as 2-D, [:axis] by [axis:], and normalized over
    its second dim (axis default 1); from 13 over one axis (default −1)."""
    if node.opset < 13:
        axis = normalize_axis(int(node.attr("axis", 1)), x.ndim)
        return tuple(range(axis, x.ndim))
    return (normalize_axis(int(node.attr("axis", -1)), x.ndim),)


@handler("Softmax", since=1)
def softmax(node):
    x = node.input(0)
    return gx.softmax(x, _softmax_axes(node, x))


@handler("LogSoftmax", since=1)
def log_softmax(node):
    x = node.input(0)
    return gx.log_softmax(x, _softmax_axes(node, x))


@handler("Hardmax", since=1)
def hardmax(node):
    """1 at the first largest element of each row (over the softmax axes), 0 elsewhere."""
    x = node.input(0)
    axes = _softmax_axes(node, x)
    rows = x if len(axes) == 1 else gx.reshape(x, (*x.shape[:axes[0]], -1))
    axis = axes[0]
    n = rows.shape[axis]
    if not isinstance(n, int):
        raise node.unsupported("a symbolic size along the Hardmax axis")
    hot = gx.one_hot(gx.argmax(rows, axis), n, x.dtype)  # the one-hot axis comes last
    hot = gx.transpose(hot, (*range(axis), hot.ndim - 1, *range(axis, hot.ndim - 1)))
    return hot if len(axes) == 1 else gx.reshape(hot, x.shape)


# -- scans --------------------------------------------------------------------------------------

def _scan(node, fn) -> Tensor:
    x = node.input(0)
    axis = np.asarray(node.value(1)).ravel()
    if axis.size != 1:
        raise node.error(f"axis must hold one value, got {axis.size}")
    y = fn(x, normalize_axis(int(axis[0]), x.ndim), bool(node.attr("exclusive", 0)),
           bool(node.attr("reverse", 0)))
    return _same_dtype(y, x.dtype)


@handler("CumSum", since=11)
def cum_sum(node):
    return _scan(node, cumsum)


@handler("CumProd", since=26)
def cum_prod(node):
    return _scan(node, cumprod)


# -- TopK ---------------------------------------------------------------------------------------

def _top_k(node, k: int) -> tuple[Tensor, Tensor]:
    x = node.input(0)
    axis = normalize_axis(int(node.attr("axis", -1)), x.ndim)
    values, indices = topk(x, k, axis, largest=bool(node.attr("largest", 1)),
                           sorted=bool(node.attr("sorted", 1)))
    return values, indices


@handler("TopK", since=1)
def top_k_attr(node):
    return _top_k(node, int(node.attr("k")))


@handler("TopK", since=10)
def top_k_input(node):
    k = np.asarray(node.value(1)).ravel()
    if k.size != 1:
        raise node.error(f"k must hold one value, got {k.size}")
    return _top_k(node, int(k[0]))


# -- normalizations -----------------------------------------------------------------------------

@handler("LpNormalization", since=1)
def lp_normalization(node):
    """x / ‖x‖_p along ``axis`` (p 1 or 2), 0 where the norm is 0 (as the reference)."""
    x = node.input(0)
    p = int(node.attr("p", 2))
    if p not in (1, 2):
        raise node.unsupported(f"attribute p={p} (only 1 and 2)")
    axis = normalize_axis(int(node.attr("axis", -1)), x.ndim)
    norm = gx.norm(x, p, axis, keepdims=True)
    zero = gx.equal(norm, 0)
    return _same_dtype(gx.where(zero, 0, gx.div(x, gx.where(zero, 1, norm))), x.dtype)


@handler("MeanVarianceNormalization", since=9)
def mean_variance_normalization(node):
    """(x − mean) / (std + 1e-9) over ``axes`` (default [0, 2, 3]), the std biased."""
    x = node.input(0)
    axes = normalize_axes(tuple(int(a) for a in node.attr("axes", [0, 2, 3])), x.ndim)
    centered = gx.sub(x, gx.mean(x, axes, keepdims=True))
    return gx.div(centered, gx.add(gx.std(x, axes, keepdims=True), 1e-9))
