"""ONNX elementwise ops as graphc graph: arithmetic, math, comparisons, logic, bitwise
ops, casts and activations.

ONNX gives both operands one dtype (graphc's NumPy promotion then changes nothing);
where it does not (Pow, BitShift counts), the handler casts as ONNX says. Activation
attributes map onto graphc's activation params, or the op is composed from primitives
(HardSigmoid, Shrink, ThresholdedRelu, Selu with its own constants).
"""

from __future__ import annotations

import math

import numpy as np

import graphc as gx
from graphc.onnx import dtypes
from graphc.onnx.registry import handler
from graphc.types import FLOAT_DTYPES


# -- legacy broadcasting (opset < 7) ---------------------------------------------------------
def _legacy_operands(node) -> tuple[gx.Tensor, gx.Tensor]:
    """Opsets before 7: shapes must match unless ``broadcast=1``, and then B lines up with
    A from ``axis`` (default: trailing axes, NumPy's rule) and is reshaped to say so."""
    a, b = node.input(0), node.input(1)
    if not node.attr("broadcast", 0):
        if tuple(a.shape) != tuple(b.shape):
            raise node.error(f"shapes {a.shape} and {b.shape} differ and broadcast=0")
        return a, b
    axis = node.attr("axis")
    if axis is None or b.ndim == 0:
        return a, b
    axis = axis + a.ndim if axis < 0 else axis
    if axis + b.ndim > a.ndim:
        raise node.error(f"B of shape {b.shape} does not fit A {a.shape} at axis {axis}")
    trailing = a.ndim - axis - b.ndim
    return a, gx.reshape(b, (*b.shape, *(1,) * trailing)) if trailing else b


def _register_binary(op_type: str, fn, legacy_since: int | None = 1) -> None:
    """``fn(node, a, b)`` with NumPy broadcasting from opset 7, and (for ops that existed
    then) the legacy ``broadcast``/``axis`` attributes before."""
    def modern(node):
        return fn(node, node.input(0), node.input(1))

    def legacy(node):
        return fn(node, *_legacy_operands(node))

    if legacy_since is not None:
        handler(op_type, since=legacy_since)(legacy)
    handler(op_type, since=7)(modern)


def _div(node, a, b):
    if a.dtype in FLOAT_DTYPES:
        return gx.div(a, b)
    return gx.trunc_div(a, b)  # ONNX Div on integers truncates toward zero


def _pow(node, a, b):
    """The result has the base's dtype: an integer base with a float exponent is
    computed in float64 (as NumPy would) and cast back."""
    if a.dtype in FLOAT_DTYPES or b.dtype not in FLOAT_DTYPES:
        return gx.pow(a, gx.cast(b, a.dtype))
    wide = gx.pow(gx.cast(a, "float64"), gx.cast(b, "float64"))
    return gx.cast(wide, a.dtype)


_register_binary("Add", lambda node, a, b: gx.add(a, b))
_register_binary("Sub", lambda node, a, b: gx.sub(a, b))
_register_binary("Mul", lambda node, a, b: gx.mul(a, b))
_register_binary("Div", _div)
_register_binary("Pow", _pow)
_register_binary("And", lambda node, a, b: gx.logical_and(a, b))
_register_binary("Or", lambda node, a, b: gx.logical_or(a, b))
_register_binary("Xor", lambda node, a, b: gx.logical_xor(a, b))
_register_binary("Equal", lambda node, a, b: gx.equal(a, b))
_register_binary("Greater", lambda node, a, b: gx.greater(a, b))
_register_binary("Less", lambda node, a, b: gx.less(a, b))
_register_binary("GreaterOrEqual", lambda node, a, b: gx.greater_equal(a, b), None)
_register_binary("LessOrEqual", lambda node, a, b: gx.less_equal(a, b), None)
_register_binary("BitwiseAnd", lambda node, a, b: gx.bitwise_and(a, b), None)
_register_binary("BitwiseOr", lambda node, a, b: gx.bitwise_or(a, b), None)
_register_binary("BitwiseXor", lambda node, a, b: gx.bitwise_xor(a, b), None)


@handler("BitShift", since=11)
def bit_shift(node):
    x, n = node.input(0), node.input(1)
    direction = node.attr("direction", b"")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("LEFT", "RIGHT"):
        raise node.error(f"direction must be LEFT or RIGHT, got {direction!r}")
    return (gx.left_shift if direction == "LEFT" else gx.right_shift)(x, n)


@handler("Mod", since=10)
def mod(node):
    a, b = node.input(0), node.input(1)
    # fmod=0 is floor modulo (the sign of b), also on floats as the reference computes it
    return (gx.fmod if node.attr("fmod", 0) else gx.mod)(a, b)


# -- unary math ---------------------------------------------------------------------------------
_UNARY = {
    "Abs": gx.abs, "Neg": gx.neg, "Exp": gx.exp, "Log": gx.log, "Sqrt": gx.sqrt,
    "Reciprocal": gx.reciprocal, "Floor": gx.floor, "Ceil": gx.ceil, "Sign": gx.sign,
    "Sin": gx.sin, "Cos": gx.cos, "Tan": gx.tan, "Tanh": gx.tanh, "Erf": gx.erf,
    "Sinh": gx.sinh, "Cosh": gx.cosh, "Asin": gx.asin, "Acos": gx.acos, "Atan": gx.atan,
    "Asinh": gx.asinh, "Acosh": gx.acosh, "Atanh": gx.atanh, "Round": gx.round,
    "Not": gx.logical_not, "BitwiseNot": gx.bitwise_not, "IsNaN": gx.isnan,
    "Sigmoid": gx.sigmoid, "Softsign": gx.softsign, "Mish": gx.mish, "HardSwish": gx.hardswish,
}


def _unary(fn):
    def convert(node):
        return fn(node.input(0))
    return convert


for _op, _fn in _UNARY.items():
    handler(_op, since=1)(_unary(_fn))


@handler("Identity", since=1)
def identity(node):
    return node.input(0)


@handler("Relu", since=1)
def relu(node):
    return gx.relu(node.input(0))


@handler("IsInf", since=10)
def is_inf(node):
    x = node.input(0)
    positive, negative = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    if x.dtype not in FLOAT_DTYPES:
        return gx.zeros_like(x, "bool")
    if positive and negative:
        return gx.isinf(x)
    if positive:
        return gx.equal(x, math.inf)
    if negative:
        return gx.equal(x, -math.inf)
    return gx.zeros_like(x, "bool")


# -- variadic -----------------------------------------------------------------------------------
def _variadic(node, combine):
    if not node.inputs:
        raise node.error("needs at least one input")
    acc = node.input(0)
    for i in range(1, len(node.inputs)):
        acc = combine(acc, node.input(i))
    return acc


def _check_legacy_variadic(node) -> None:
    """Before opset 8 the variadic ops did not broadcast: shapes must agree."""
    shapes = {tuple(node.shape(i)) for i in range(len(node.inputs))}
    if len(shapes) > 1:
        raise node.unsupported(f"inputs of different shapes {sorted(shapes)} before opset 8")


def _register_variadic(op_type: str, combine, finish=None) -> None:
    def modern(node):
        acc = _variadic(node, combine)
        return finish(node, acc) if finish else acc

    def old(node):
        _check_legacy_variadic(node)
        return modern(node)

    handler(op_type, since=1)(old)
    handler(op_type, since=8)(modern)


_register_variadic("Sum", gx.add)
_register_variadic("Max", gx.maximum)
_register_variadic("Min", gx.minimum)
_register_variadic("Mean", gx.add, lambda node, acc: acc / len(node.inputs))


# -- Clip, Where, Cast -------------------------------------------------------------------------
def _clamp(x: gx.Tensor, lo, hi) -> gx.Tensor:
    """max(x, lo) then min(·, hi) (so hi wins where lo > hi, as ONNX says); gx.clip (the
    gradient of torch.clamp) when both bounds are numbers in order."""
    scalar = all(b is None or isinstance(b, float | int) for b in (lo, hi))
    if scalar and x.dtype in FLOAT_DTYPES and (lo is None or hi is None or lo <= hi):
        return gx.clip(x, -math.inf if lo is None else lo, math.inf if hi is None else hi)
    if lo is not None:
        x = gx.maximum(x, lo if isinstance(lo, gx.Tensor) else gx.constant(
            np.asarray(lo, x.dtype)))
    if hi is not None:
        x = gx.minimum(x, hi if isinstance(hi, gx.Tensor) else gx.constant(
            np.asarray(hi, x.dtype)))
    return x


@handler("Clip", since=1)
def clip_attrs(node):
    x = node.input(0)
    lo, hi = node.attr("min"), node.attr("max")
    return _clamp(x, None if lo is None else float(lo), None if hi is None else float(hi))


@handler("Clip", since=11)
def clip_inputs(node):
    x = node.input(0)
    bounds = []
    for i in (1, 2):
        if not node.has(i):
            bounds.append(None)
        elif node.is_const(i):
            value = node.value(i)
            if value.size != 1:
                raise node.error(f"input {i} must be a scalar, got shape {value.shape}")
            v = value.reshape(()).item()
            bounds.append(float(v) if x.dtype in FLOAT_DTYPES else v)
        else:
            bounds.append(gx.cast(gx.reshape(node.input(i), ()), x.dtype))
    return _clamp(x, *bounds)


@handler("Where", since=9)
def where(node):
    return gx.where(gx.cast(node.input(0), "bool"), node.input(1), node.input(2))


def _cast_to(node, x: gx.Tensor, elem_type: int) -> gx.Tensor:
    try:
        dtype = dtypes.to_graphc(elem_type)
    except TypeError:
        raise node.unsupported(f"a cast to {dtypes.onnx_type_name(elem_type)}") from None
    return gx.cast(x, dtype)  # float → int truncates toward zero, as ONNX says


@handler("Cast", since=1)
def cast(node):
    to = node.attr("to")
    if isinstance(to, bytes | str):  # opset 1 named the type
        name = to.decode() if isinstance(to, bytes) else to
        to = getattr(dtypes.TensorProto, name.upper(), None)
        if to is None:
            raise node.unsupported(f"a cast to {name!r}")
    return _cast_to(node, node.input(0), int(to))


@handler("CastLike", since=15)
def cast_like(node):
    return gx.cast(node.input(0), node.dtype(1))


@handler("BitCast", since=26)
def bitcast(node):
    to = int(node.attr("to"))
    try:
        dtype = dtypes.to_graphc(to)
    except TypeError:
        raise node.unsupported(f"a bitcast to {dtypes.onnx_type_name(to)}") from None
    return gx.bitcast(node.input(0), dtype)


@handler("Binarizer", since=1, domain="ai.onnx.ml")
def binarizer(node):
    x = node.input(0)
    return gx.cast(gx.greater(x, gx.constant(node.attr("threshold", 0.0), x.dtype)), x.dtype)


# -- activations ---------------------------------------------------------------------------------
def _float(node, name: str, default: float) -> float:
    return float(node.attr(name, default))


@handler("LeakyRelu", since=1)
def leaky_relu(node):
    return gx.leaky_relu(node.input(0), _float(node, "alpha", 0.01))


@handler("Elu", since=1)
def elu(node):
    return gx.elu(node.input(0), _float(node, "alpha", 1.0))


@handler("Celu", since=12)
def celu(node):
    return gx.celu(node.input(0), _float(node, "alpha", 1.0))


@handler("Selu", since=1)
def selu(node):
    """γ·(x for x > 0, α(eˣ − 1) otherwise) = γ·elu_α(x)."""
    alpha = _float(node, "alpha", 1.67326319217681884765625)
    gamma = _float(node, "gamma", 1.05070102214813232421875)
    return gx.elu(node.input(0), alpha) * gamma


@handler("PRelu", since=1)
def prelu(node):
    x, slope = node.input(0), node.input(1)
    if node.opset < 7 and slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1]:
        # before opset 7 a vector slope is per channel (axis 1), not numpy-broadcast
        slope = gx.reshape(slope, (slope.shape[0],) + (1,) * (x.ndim - 2))
    if x.dtype not in FLOAT_DTYPES:  # integer PRelu (opset 16): x·slope below zero
        return gx.where(x < 0, x * gx.cast(slope, x.dtype), x)
    return gx.prelu(x, gx.cast(slope, x.dtype))


@handler("ThresholdedRelu", since=10)
def thresholded_relu(node):
    x = node.input(0)
    return gx.where(x > _float(node, "alpha", 1.0), x, 0.0)


@handler("HardSigmoid", since=1)
def hard_sigmoid(node):
    """max(0, min(1, αx + β))."""
    x = node.input(0)
    return gx.clip(x * _float(node, "alpha", 0.2) + _float(node, "beta", 0.5), 0.0, 1.0)


@handler("Softplus", since=1)
def softplus(node):
    return gx.softplus(node.input(0), 1.0, math.inf)  # log(1 + eˣ), no threshold


@handler("Shrink", since=9)
def shrink(node):
    """x − bias above λ, x + bias below −λ, 0 between."""
    x = node.input(0)
    lambd, bias = _float(node, "lambd", 0.5), _float(node, "bias", 0.0)

    def const(v: float) -> gx.Tensor:
        return gx.constant(np.asarray(v).astype(x.dtype))
    inner = gx.where(x < -lambd, x + const(bias), gx.zeros_like(x))
    return gx.where(x > lambd, x - const(bias), inner)


@handler("Gelu", since=20)
def gelu(node):
    approximate = node.attr("approximate", "none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    if approximate not in ("none", "tanh"):
        raise node.unsupported(f"attribute approximate={approximate!r}")
    return gx.gelu(node.input(0), approximate)


@handler("Swish", since=24)
def swish(node):
    return gx.swish(node.input(0), _float(node, "alpha", 1.0))
