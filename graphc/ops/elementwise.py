"""Elementwise ops: each one a generated scalar formula, broadcast NumPy-style.

The math of every op here lives in ``formulas.py`` (sympy) and reaches this module
as scalar-IR programs in ``_generated.py``. One class, ``Elementwise``, turns a
formula into an op: broadcasting type rule, derivative rebuilt as graph from the
formula's derivative programs, reference implementation by evaluating the value
program on NumPy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ops._generated import FORMULAS
from graphc.ops.base import Op
from graphc.ops.scalar import Formula
from graphc.tensor import Tensor, as_tensor
from graphc.types import FLOAT_DTYPES, TensorType, as_dtype, broadcast_shapes, promote_types

#: integer ops NumPy would compute on bools in int8: refused instead
_NO_BOOL = frozenset({"fmod", "mod", "left_shift", "right_shift", "trunc_div"})


class Elementwise(Op):
    """An op defined by a scalar formula, applied elementwise with broadcasting."""

    def __init__(self, formula: Formula) -> None:
        self.name = formula.name  # type: ignore[misc]
        self.formula = formula
        self.differentiable = any(d is not None for d in formula.derivatives)  # type: ignore[misc]
        super().__init__()

    def infer(self, inputs: tuple[TensorType, ...], **attrs: Any) -> TensorType:
        f = self.formula
        if len(inputs) != len(f.inputs):
            raise TypeError(f"takes {len(f.inputs)} inputs, got {len(inputs)}")
        if set(attrs) != set(f.params):
            raise TypeError(f"needs attributes {f.params}, got {tuple(attrs)}")
        shape = broadcast_shapes(*(t.shape for t in inputs))
        return TensorType(shape, self._result_dtype(inputs))

    def _result_dtype(self, inputs: tuple[TensorType, ...]) -> str:
        if self.formula.result == "bool":
            return "bool"
        operands = inputs[1:] if self.name == "where" else inputs  # the condition is no operand
        dtype = promote_types(*(t.dtype for t in operands))
        if self.formula.result == "float" and dtype not in FLOAT_DTYPES:
            return "float64"
        if self.formula.result == "int" and dtype in FLOAT_DTYPES:
            raise TypeError(f"takes integer or bool inputs, got {dtype}")
        if self.name in _NO_BOOL and dtype == "bool":
            raise TypeError("takes numbers, not bool")
        return dtype

    def impl(self, *arrays: np.ndarray, **attrs: Any) -> np.ndarray:
        env = dict(zip(self.formula.inputs, arrays, strict=True)) | attrs
        dtype = self._result_dtype(tuple(TensorType(np.shape(a), np.asarray(a).dtype.name)
                                         for a in arrays))
        return np.asarray(self.formula.value.evaluate(env, dtype), dtype=dtype)

    def vjp(self, node: Tensor, g: Tensor) -> tuple[Tensor | None, ...]:
        env = dict(zip(self.formula.inputs, node.inputs, strict=True)) | node.attr | {"out": node}
        grads = []
        for inp, d in zip(node.inputs, self.formula.derivatives, strict=True):
            if d is None or inp.dtype not in FLOAT_DTYPES:
                grads.append(None)
            elif d.result == 1.0 and not d.instrs:
                grads.append(g)
            elif d.result == -1.0 and not d.instrs:
                grads.append(neg(g))
            elif d.result == 0.0 and not d.instrs:
                grads.append(zeros_like(g))
            else:
                grads.append(mul(g, d.build(env, g.dtype)))
        return tuple(grads)


ELEMENTWISE: dict[str, Elementwise] = {name: Elementwise(f) for name, f in FORMULAS.items()}

add = ELEMENTWISE["add"]
sub = ELEMENTWISE["sub"]
mul = ELEMENTWISE["mul"]
div = ELEMENTWISE["div"]
neg = ELEMENTWISE["neg"]
abs = ELEMENTWISE["abs"]  # noqa: A001 - the NumPy name
sign = ELEMENTWISE["sign"]
floor = ELEMENTWISE["floor"]
exp = ELEMENTWISE["exp"]
log = ELEMENTWISE["log"]
log1p = ELEMENTWISE["log1p"]
expm1 = ELEMENTWISE["expm1"]
sqrt = ELEMENTWISE["sqrt"]
square = ELEMENTWISE["square"]
reciprocal = ELEMENTWISE["reciprocal"]
sin = ELEMENTWISE["sin"]
cos = ELEMENTWISE["cos"]
tanh = ELEMENTWISE["tanh"]
erf = ELEMENTWISE["erf"]
maximum = ELEMENTWISE["maximum"]
minimum = ELEMENTWISE["minimum"]
less = ELEMENTWISE["less"]
less_equal = ELEMENTWISE["less_equal"]
greater = ELEMENTWISE["greater"]
greater_equal = ELEMENTWISE["greater_equal"]
equal = ELEMENTWISE["equal"]
not_equal = ELEMENTWISE["not_equal"]
logical_and = ELEMENTWISE["logical_and"]
logical_or = ELEMENTWISE["logical_or"]
logical_xor = ELEMENTWISE["logical_xor"]
logical_not = ELEMENTWISE["logical_not"]
atan = ELEMENTWISE["atan"]
round = ELEMENTWISE["round"]  # noqa: A001 - the NumPy name
fmod = ELEMENTWISE["fmod"]
mod = ELEMENTWISE["mod"]
bitwise_and = ELEMENTWISE["bitwise_and"]
bitwise_or = ELEMENTWISE["bitwise_or"]
bitwise_xor = ELEMENTWISE["bitwise_xor"]
bitwise_not = ELEMENTWISE["bitwise_not"]
left_shift = ELEMENTWISE["left_shift"]
right_shift = ELEMENTWISE["right_shift"]
trunc_div = ELEMENTWISE["trunc_div"]
tan = ELEMENTWISE["tan"]
sinh = ELEMENTWISE["sinh"]
cosh = ELEMENTWISE["cosh"]
asin = ELEMENTWISE["asin"]
acos = ELEMENTWISE["acos"]
asinh = ELEMENTWISE["asinh"]
acosh = ELEMENTWISE["acosh"]
atanh = ELEMENTWISE["atanh"]
ceil = ELEMENTWISE["ceil"]
trunc = ELEMENTWISE["trunc"]
isnan = ELEMENTWISE["isnan"]
isinf = ELEMENTWISE["isinf"]
_pow = ELEMENTWISE["pow"]
_clip = ELEMENTWISE["clip"]
_where = ELEMENTWISE["where"]


def pow(x: Any, y: Any) -> Tensor:  # noqa: A001 - the NumPy name
    """``x ** y``."""
    return _pow(x, y)


def clip(x: Any, lo: float, hi: float) -> Tensor:
    """Clamp ``x`` to ``[lo, hi]``; the gradient is 1 on the closed interval (as torch.clamp)."""
    if lo > hi:
        raise ValueError(f"clip: lo={lo} is greater than hi={hi}")
    return _clip(x, lo=float(lo), hi=float(hi))


def where(cond: Any, x: Any, y: Any) -> Tensor:
    """``x`` where ``cond`` holds, else ``y``; ``cond`` carries no gradient."""
    like = next((t for t in (x, y) if isinstance(t, Tensor)), None)
    return _where(as_tensor(cond), as_tensor(x, like), as_tensor(y, like))


class Cast(Op):
    """Convert to another dtype; the gradient flows back between float types only."""

    name = "cast"

    def infer(self, inputs, *, dtype):
        return TensorType(inputs[0].shape, as_dtype(dtype))

    def vjp(self, node, g):
        return (cast(g, node.inputs[0].dtype),)

    def impl(self, x, *, dtype):
        return np.asarray(x).astype(dtype)


class Bitcast(Op):
    """Reinterpret each element's bits as another dtype of the same size (``x.view``).
    No gradient: a float's bits are no differentiable function of it."""

    name = "bitcast"
    differentiable = False

    def infer(self, inputs, *, dtype):
        src, dst = inputs[0].dtype, as_dtype(dtype)
        sizes = np.dtype(src).itemsize, np.dtype(dst).itemsize
        if sizes[0] != sizes[1]:
            raise TypeError(f"needs dtypes of one size, got {src} ({sizes[0]} bytes) and "
                            f"{dst} ({sizes[1]} bytes)")
        if dst == "bool" and src != "bool":
            raise TypeError(f"{src} bits other than 0 and 1 are no bool; compare instead")
        return TensorType(inputs[0].shape, dst)

    def impl(self, x, *, dtype):
        return np.asarray(x, order="C").view(dtype)  # (ascontiguousarray makes 0-d 1-d)


class FullLike(Op):
    """``value`` at every element of the input's shape."""

    name = "full_like"
    differentiable = False

    def infer(self, inputs, *, value, dtype):
        return TensorType(inputs[0].shape, as_dtype(dtype))

    def impl(self, x, *, value, dtype):
        return np.full(np.shape(x), value, dtype)


_cast = Cast()
_bitcast = Bitcast()
_full_like = FullLike()


def cast(x: Tensor, dtype: Any) -> Tensor:
    """``x.astype(dtype)``; a no-op when the dtype already matches."""
    dtype = as_dtype(dtype)
    x = as_tensor(x)
    return x if x.dtype == dtype else _cast(x, dtype=dtype)


def bitcast(x: Tensor, dtype: Any) -> Tensor:
    """``x.view(dtype)``: the same bits read as ``dtype``, of the same item size."""
    dtype = as_dtype(dtype)
    x = as_tensor(x)
    return x if x.dtype == dtype else _bitcast(x, dtype=dtype)


def zeros_like(x: Tensor, dtype: Any = None) -> Tensor:
    """Zeros of ``x``'s shape (known at call time) and of ``dtype`` (default ``x``'s)."""
    return full_like(x, 0, dtype)


def ones_like(x: Tensor, dtype: Any = None) -> Tensor:
    """Ones of ``x``'s shape and of ``dtype`` (default ``x``'s)."""
    return full_like(x, 1, dtype)


def full_like(x: Tensor, value: float, dtype: Any = None) -> Tensor:
    """``value`` in the shape of ``x`` (known at call time), of ``dtype`` (default ``x``'s)."""
    x = as_tensor(x)
    return _full_like(x, value=value, dtype=as_dtype(dtype or x.dtype))


__all__ = [
    "add", "sub", "mul", "div", "pow", "neg", "abs", "sign", "floor", "exp", "log", "log1p",
    "expm1", "sqrt", "square", "reciprocal", "sin", "cos", "tanh", "erf", "maximum", "minimum",
    "clip", "where", "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not", "cast", "bitcast", "zeros_like",
    "ones_like", "full_like", "atan", "round", "fmod", "mod", "bitwise_and", "bitwise_or",
    "bitwise_xor", "bitwise_not", "left_shift", "right_shift", "trunc_div", "tan", "sinh",
    "cosh", "asin", "acos", "asinh", "acosh", "atanh", "ceil", "trunc", "isnan", "isinf",
]
