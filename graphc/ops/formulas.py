"""The math of every elementwise op, written once as a sympy scalar formula.

This module is the single source of truth for elementwise semantics and is read
only by the generator (``python -m graphc.ops.generate``), never at import time:
sympy is too slow to run on ``import graphc``. The generator differentiates each
formula with ``sympy.diff`` and writes value and derivatives as scalar-IR programs
into ``graphc/ops/_generated.py``; a test regenerates it and fails if it is stale.

A formula may give a derivative in terms of its own output ``out`` (σ' = out·(1−out))
to share work with the forward value; the generator checks that form against
``sympy.diff`` numerically and refuses it if they disagree.

Kinks follow PyTorch: the derivative at a kink takes the value of the branch
chosen by the formula's ``Piecewise`` condition (ReLU'(0) = 0, hardtanh'(±1) = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

x, y, c = sp.symbols("x y c", real=True)
out = sp.Symbol("out", real=True)
lo, hi = sp.symbols("lo hi", real=True)


@dataclass(frozen=True)
class Spec:
    """One elementwise op: its variables, attribute params, formula, derivative hints."""

    name: str
    inputs: tuple[sp.Symbol, ...]
    value: sp.Expr
    params: tuple[sp.Symbol, ...] = ()
    #: derivative forms that share the output; checked equal to sympy.diff
    hints: dict[sp.Symbol, sp.Expr] = field(default_factory=dict)
    result: str = "float"  # "float" | "same" | "bool" | "int" (same, integers or bool only)
    #: inputs that carry no gradient (conditions)
    no_grad: tuple[sp.Symbol, ...] = ()


# -- sympy functions for primitives sympy lacks -------------------------------------------------
# Each evaluates on numbers (so the generator and the tests can check programs at points)
# and knows its derivative (``fdiff``); integer-only ones give NaN on non-integers.
def _trunc(z: sp.Expr) -> sp.Expr:
    """Rounding toward zero, written with floor (ceil(z) = −floor(−z) below zero)."""
    return sp.Piecewise((-sp.floor(-z), z < 0), (sp.floor(z), True))


def _logistic(z: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-z))


class Sigmoid(sp.Function):
    """The logistic σ(z) = 1/(1 + e^(−z)) as one primitive, so a backend may compute it
    in a single step (the LLVM backend's vector σ is far cheaper than exp, add and a
    division emitted apart). σ' = σ·(1 − σ)."""

    @classmethod
    def eval(cls, a):  # noqa: ANN001, ANN206 - sympy's protocol
        if a.is_Number:
            return _logistic(a)

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, a, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return _logistic(a)

    def _eval_evalf(self, prec):  # noqa: ANN001, ANN202
        return _logistic(self.args[0])._eval_evalf(prec)


class RoundEven(sp.Function):
    """Round half to even (``np.round``): a step function, derivative 0."""

    @classmethod
    def eval(cls, a):  # noqa: ANN001, ANN206 - sympy's protocol
        if a.is_Number:
            return sp.Integer(round(float(a))) if a.is_finite else a

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.Integer(0)


class Fmod(sp.Function):
    """C's fmod: x − trunc(x/y)·y, the sign of x (``np.fmod``)."""

    @classmethod
    def eval(cls, a, b):  # noqa: ANN001, ANN206
        if a.is_Number and b.is_Number:
            return sp.Float(math.fmod(float(a), float(b))) if b != 0 else sp.nan

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        a, b = self.args
        return sp.Integer(1) if argindex == 1 else -_trunc(a / b)


class FloorMod(sp.Function):
    """Floor modulo: x − floor(x/y)·y, the sign of y (``np.mod``, Python's %)."""

    @classmethod
    def eval(cls, a, b):  # noqa: ANN001, ANN206
        if a.is_Number and b.is_Number:
            return sp.Float(float(a) % float(b)) if b != 0 else sp.nan

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        a, b = self.args
        return sp.Integer(1) if argindex == 1 else -sp.floor(a / b)


def _integer_function(name: str, fn) -> type:  # noqa: ANN001
    """A sympy function of integers (NaN elsewhere): bitwise ops and shifts."""
    def eval(cls, *args):  # noqa: ANN001, ANN202
        if all(a.is_Number for a in args):
            if all(a.is_integer for a in args):
                return sp.Integer(fn(*(int(a) for a in args)))
            return sp.nan
        return None

    return type(name, (sp.Function,), {"eval": classmethod(eval)})


BitAnd = _integer_function("BitAnd", lambda a, b: a & b)
BitOr = _integer_function("BitOr", lambda a, b: a | b)
BitXor = _integer_function("BitXor", lambda a, b: a ^ b)
BitNot = _integer_function("BitNot", lambda a: ~a)
LeftShift = _integer_function("LeftShift", lambda a, b: a << b)
RightShift = _integer_function("RightShift", lambda a, b: a >> b)
TruncDiv = _integer_function("TruncDiv", lambda a, b: int(a / b) if b else 0)


# -- arithmetic and math primitives ------------------------------------------------------------
PRIMITIVES = [
    Spec("add", (x, y), x + y, result="same"),
    Spec("sub", (x, y), x - y, result="same"),
    Spec("mul", (x, y), x * y, result="same"),
    Spec("div", (x, y), x / y, hints={y: -out / y}),
    Spec("pow", (x, y), x**y, hints={x: y * x ** (y - 1), y: sp.log(x) * out}, result="same"),
    Spec("neg", (x,), -x, result="same"),
    Spec("abs", (x,), sp.Abs(x), hints={x: sp.sign(x)}, result="same"),
    Spec("sign", (x,), sp.sign(x), hints={x: sp.Integer(0)}, result="same"),
    # A step function: its derivative is 0 almost everywhere (torch.floor's gradient).
    Spec("floor", (x,), sp.floor(x), hints={x: sp.Integer(0)}, result="same"),
    Spec("exp", (x,), sp.exp(x), hints={x: out}),
    Spec("log", (x,), sp.log(x)),
    Spec("log1p", (x,), log1p(x)),
    Spec("expm1", (x,), expm1(x), hints={x: out + 1}),
    Spec("sqrt", (x,), sp.sqrt(x), hints={x: 1 / (2 * out)}),
    Spec("square", (x,), x**2, result="same"),
    Spec("reciprocal", (x,), 1 / x, hints={x: -(out**2)}),
    Spec("sin", (x,), sp.sin(x)),
    Spec("cos", (x,), sp.cos(x)),
    Spec("tanh", (x,), sp.tanh(x), hints={x: 1 - out**2}),
    Spec("erf", (x,), sp.erf(x)),
    Spec("atan", (x,), sp.atan(x)),
    # Half to even, as np.round and ONNX Round; derivative 0 almost everywhere.
    Spec("round", (x,), RoundEven(x), result="same"),
    # C fmod (sign of x) and floor modulo (sign of y), NumPy's fmod and mod, ints too.
    Spec("fmod", (x, y), Fmod(x, y), result="same"),
    Spec("mod", (x, y), FloorMod(x, y), result="same"),
    # Ties split the gradient evenly between both inputs, as PyTorch does.
    Spec("maximum", (x, y), sp.Max(x, y),
         hints={x: (1 + sp.sign(x - y)) / 2, y: (1 - sp.sign(x - y)) / 2}, result="same"),
    Spec("minimum", (x, y), sp.Min(x, y),
         hints={x: (1 - sp.sign(x - y)) / 2, y: (1 + sp.sign(x - y)) / 2}, result="same"),
    # clamp: gradient 1 on the closed interval [lo, hi], as torch.clamp.
    Spec("clip", (x,), sp.Piecewise((lo, x < lo), (hi, x > hi), (x, True)), params=(lo, hi),
         result="same"),
    Spec("where", (c, x, y), sp.Piecewise((x, sp.Ne(c, 0)), (y, True)), result="same",
         no_grad=(c,)),
]

# -- integer primitives: bitwise logic, shifts, truncating division; no gradient ---------------
# Shifts follow NumPy: a count past the width gives 0 (or −1 for negative signed values
# shifted right), so uint types give ONNX BitShift's meaning.
INTEGER = [
    Spec("bitwise_and", (x, y), BitAnd(x, y), result="int", no_grad=(x, y)),
    Spec("bitwise_or", (x, y), BitOr(x, y), result="int", no_grad=(x, y)),
    Spec("bitwise_xor", (x, y), BitXor(x, y), result="int", no_grad=(x, y)),
    Spec("bitwise_not", (x,), BitNot(x), result="int", no_grad=(x,)),
    Spec("left_shift", (x, y), LeftShift(x, y), result="int", no_grad=(x, y)),
    Spec("right_shift", (x, y), RightShift(x, y), result="int", no_grad=(x, y)),
    # C's integer division (toward zero), ONNX Div on integers; x/0 gives 0 (NumPy's
    # floor_divide by zero), never a trap.
    Spec("trunc_div", (x, y), TruncDiv(x, y), result="int", no_grad=(x, y)),
]

# -- comparisons and logic: scalar primitives with no gradient ---------------------------------
PREDICATES = [
    Spec("less", (x, y), sp.StrictLessThan(x, y), result="bool", no_grad=(x, y)),
    Spec("less_equal", (x, y), sp.LessThan(x, y), result="bool", no_grad=(x, y)),
    Spec("greater", (x, y), sp.StrictGreaterThan(x, y), result="bool", no_grad=(x, y)),
    Spec("greater_equal", (x, y), sp.GreaterThan(x, y), result="bool", no_grad=(x, y)),
    Spec("equal", (x, y), sp.Eq(x, y, evaluate=False), result="bool", no_grad=(x, y)),
    Spec("not_equal", (x, y), sp.Ne(x, y, evaluate=False), result="bool", no_grad=(x, y)),
    Spec("logical_and", (x, y), sp.And(sp.Ne(x, 0), sp.Ne(y, 0)), result="bool", no_grad=(x, y)),
    Spec("logical_or", (x, y), sp.Or(sp.Ne(x, 0), sp.Ne(y, 0)), result="bool", no_grad=(x, y)),
    Spec("logical_xor", (x, y), sp.Xor(sp.Ne(x, 0), sp.Ne(y, 0)), result="bool",
         no_grad=(x, y)),
    Spec("logical_not", (x,), sp.Eq(x, 0), result="bool", no_grad=(x,)),
]

# -- activations -------------------------------------------------------------------------------
# Attribute params of the activations (floats on the node; no gradient flows to them).
alpha, beta, lambd = sp.symbols("alpha beta lambd", real=True)
min_val, max_val = sp.symbols("min_val max_val", real=True)
at_zero, threshold, value = sp.symbols("at_zero threshold value", real=True)

#: PyTorch's SELU constants (Klambauer et al. 2017), to 30 digits.
SELU_ALPHA = sp.Float("1.6732632423543772848170429916717", 30)
SELU_SCALE = sp.Float("1.0507009873554804934193349852946", 30)
#: The tanh approximation of GELU: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
GELU_K = sp.Float(sp.sqrt(2 / sp.pi).evalf(30), 30)
GELU_KAPPA = sp.Float("0.044715", 30)
#: σ(2u) with 2u = x·(2k + 2kκ·x²): four operations, not torch's five.
_GELU_SIGMOID = Sigmoid(x * (2 * GELU_K + 2 * GELU_K * GELU_KAPPA * x**2))


def _sigmoid(z: sp.Expr) -> sp.Expr:
    """σ(z) as the primitive: each backend computes it stably in one step (never nan, and
    accurate for z ≪ 0)."""
    return Sigmoid(z)


def _leaky(z: sp.Expr, slope: sp.Expr) -> sp.Expr:
    """z for z > 0, slope·z otherwise: the slope's branch owns the kink (torch)."""
    return sp.Piecewise((z, z > 0), (slope * z, True))


def _softplus(z: sp.Expr) -> sp.Expr:
    """log(1 + e^z) = max(z, 0) + log1p(e^(−|z|)): no overflow, exact in both tails."""
    return sp.Max(z, 0) + log1p(sp.exp(-sp.Abs(z)))


def _over_six(e: sp.Expr) -> sp.Expr:
    """e/6 kept as one division (as torch computes it), not distributed over a sum."""
    return sp.Mul(e, sp.Rational(1, 6), evaluate=False)


# Kinks follow torch: the branch listed first wins on its boundary. Where sympy.diff
# gives a long or unstable derivative the hint gives a short, stable one, often in
# terms of ``out``; the generator checks every hint against sympy.diff.
ACTIVATIONS: list[Spec] = [
    Spec("identity", (x,), x, result="same"),
    # The step of the perceptron; H(0) is a parameter (0, ½ or 1).
    Spec("heaviside", (x,), sp.Piecewise((1, x > 0), (at_zero, sp.Eq(x, 0)), (0, True)),
         params=(at_zero,)),
    # torch.nn.functional.threshold: x above the threshold, else a constant.
    Spec("threshold", (x,), sp.Piecewise((x, x > threshold), (value, True)),
         params=(threshold, value)),
    Spec("sigmoid", (x,), _sigmoid(x), hints={x: out * (1 - out)}),
    Spec("sigmoid_c", (x,), _sigmoid(c * x), params=(c,), hints={x: c * out * (1 - out)}),
    # log σ(x) = min(x, 0) − log1p(e^(−|x|)); its derivative σ(−x) = −expm1(log σ(x)).
    Spec("logsigmoid", (x,), sp.Min(x, 0) - log1p(sp.exp(-sp.Abs(x))),
         hints={x: -expm1(out)}),
    # relu' = [out > 0], read from the output: then a dense layer's pre-activation has
    # relu as its only consumer, and the optimizer fuses relu into the dense node.
    Spec("relu", (x,), _leaky(x, 0), result="same",
         hints={x: sp.Piecewise((1, out > 0), (0, True))}),
    Spec("relu6", (x,), sp.Piecewise((0, x <= 0), (6, x >= 6), (x, True)), result="same"),
    Spec("leaky_relu", (x,), _leaky(x, alpha), params=(alpha,)),
    # PReLU: the slope is a second (learnable, broadcast) input.
    Spec("prelu", (x, alpha), _leaky(x, alpha)),
    # elu'(x) = α·e^x = out + α on the exponential branch.
    Spec("elu", (x,), sp.Piecewise((x, x > 0), (alpha * expm1(x), True)), params=(alpha,),
         hints={x: sp.Piecewise((1, x > 0), (out + alpha, True))}),
    Spec("selu", (x,),
         sp.Piecewise((SELU_SCALE * x, x > 0), (SELU_SCALE * SELU_ALPHA * expm1(x), True)),
         hints={x: sp.Piecewise((SELU_SCALE, x > 0), (out + SELU_SCALE * SELU_ALPHA, True))}),
    Spec("celu", (x,), sp.Piecewise((x, x > 0), (alpha * expm1(x / alpha), True)),
         params=(alpha,), hints={x: sp.Piecewise((1, x > 0), (out / alpha + 1, True))}),
    # GELU x·Φ(x), exactly with erf and as torch's tanh approximation.
    Spec("gelu", (x,), x / 2 * (1 + sp.erf(x / sp.sqrt(2)))),
    # ½(1 + tanh u) = σ(2u): torch's formula without its cancellation for x ≪ 0;
    # gelu_tanh' = σ(2u) + out·(1 − σ(2u))·2u'.
    Spec("gelu_tanh", (x,), x * _GELU_SIGMOID,
         hints={x: _GELU_SIGMOID + out * (1 - _GELU_SIGMOID)
                * 2 * GELU_K * (1 + 3 * GELU_KAPPA * x**2)}),
    # silu'(x) = σ + x·σ·(1 − σ) = σ + out·(1 − σ); stable at ±∞, unlike sympy's form.
    Spec("silu", (x,), x * _sigmoid(x), hints={x: _sigmoid(x) + out * (1 - _sigmoid(x))}),
    Spec("swish", (x,), x * _sigmoid(beta * x), params=(beta,),
         hints={x: _sigmoid(beta * x) + beta * out * (1 - _sigmoid(beta * x))}),
    # mish'(x) = t + x·(1 − t²)·σ(x), t = tanh(softplus(x)); torch's softplus here has
    # no threshold, and e^x = inf still gives t = 1.
    Spec("mish", (x,), x * sp.tanh(log1p(sp.exp(x))),
         hints={x: sp.tanh(log1p(sp.exp(x)))
                + x * (1 - sp.tanh(log1p(sp.exp(x)))**2) * _sigmoid(x)}),
    # softplus_β(x) = log(1 + e^(βx))/β, and x itself where βx > threshold (torch);
    # its derivative σ(βx) = −expm1(−β·out) stays exact in both tails.
    Spec("softplus", (x,),
         sp.Piecewise((x, beta * x > threshold), (_softplus(beta * x) / beta, True)),
         params=(beta, threshold),
         hints={x: sp.Piecewise((1, beta * x > threshold), (-expm1(-beta * out), True))}),
    Spec("softsign", (x,), x / (1 + sp.Abs(x)), hints={x: 1 / (1 + sp.Abs(x))**2}),
    # Flat on the closed outer intervals: gradient 0 at min_val and max_val (torch).
    Spec("hardtanh", (x,),
         sp.Piecewise((min_val, x <= min_val), (max_val, x >= max_val), (x, True)),
         params=(min_val, max_val)),
    # relu6(x + 3)/6, gradient 0 at ±3 (torch).
    Spec("hardsigmoid", (x,),
         sp.Piecewise((0, x <= -3), (1, x >= 3), (_over_six(x + 3), True))),
    # x·relu6(x + 3)/6; gradient (2x + 3)/6 strictly inside, 0 at −3 and 1 at 3 (torch).
    Spec("hardswish", (x,),
         sp.Piecewise((0, x <= -3), (x, x >= 3), (_over_six(x * (x + 3)), True))),
    Spec("tanhshrink", (x,), x - sp.tanh(x)),
    Spec("softshrink", (x,),
         sp.Piecewise((x - lambd, x > lambd), (x + lambd, x < -lambd), (0, True)),
         params=(lambd,)),
    Spec("hardshrink", (x,), sp.Piecewise((x, x > lambd), (x, x < -lambd), (0, True)),
         params=(lambd,)),
    # The saturating linear unit: 0 up to lo, 1 from hi, the straight ramp between;
    # gradient 0 at lo and hi, as hardtanh.
    Spec("piecewise_linear", (x,),
         sp.Piecewise((0, x <= lo), (1, x >= hi), ((x - lo) / (hi - lo), True)),
         params=(lo, hi)),
]

# -- math built from the primitives -------------------------------------------------------------
_ONE_MINUS_SQ = (1 - x) * (1 + x)  # 1 − x², without cancellation near |x| = 1
#: past this |x|, √(1 + x²) = |x| in float64 and float32, and x² might overflow
_HUGE = sp.Integer(2**28)

DERIVED = [
    Spec("tan", (x,), sp.sin(x) / sp.cos(x), hints={x: 1 + out**2}),
    # sinh with expm1: no cancellation for small x; cosh needs none.
    Spec("sinh", (x,), (expm1(x) - expm1(-x)) / 2, hints={x: (sp.exp(x) + sp.exp(-x)) / 2}),
    Spec("cosh", (x,), (sp.exp(x) + sp.exp(-x)) / 2, hints={x: (expm1(x) - expm1(-x)) / 2}),
    # asin x = atan(x/√(1−x²)); acos x = 2 atan(√((1−x)/(1+x))), accurate near x = 1.
    Spec("asin", (x,), sp.atan(x / sp.sqrt(_ONE_MINUS_SQ)), hints={x: 1 / sp.sqrt(_ONE_MINUS_SQ)}),
    Spec("acos", (x,), 2 * sp.atan(sp.sqrt((1 - x) / (1 + x))),
         hints={x: -1 / sp.sqrt(_ONE_MINUS_SQ)}),
    # asinh|x| = log1p(|x| + x²/(1 + √(1 + x²))), log|x| + log 2 where x² may overflow.
    Spec("asinh", (x,), sp.sign(x) * sp.Piecewise(
        (sp.log(sp.Abs(x)) + sp.log(2), sp.Abs(x) > _HUGE),
        (log1p(sp.Abs(x) + x**2 / (1 + sp.sqrt(1 + x**2))), True)),
        hints={x: 1 / sp.sqrt(1 + x**2)}),
    # acosh x = log1p(t + √t·√(t+2)), t = x − 1: exact near 1, NaN below 1 (√t).
    Spec("acosh", (x,), sp.Piecewise(
        (sp.log(x) + sp.log(2), x > _HUGE),
        (log1p((x - 1) + sp.sqrt(x - 1) * sp.sqrt(x + 1)), True)),
        hints={x: 1 / (sp.sqrt(x - 1) * sp.sqrt(x + 1))}),
    Spec("atanh", (x,), log1p(2 * x / (1 - x)) / 2, hints={x: 1 / _ONE_MINUS_SQ}),
    Spec("ceil", (x,), -sp.floor(-x), hints={x: sp.Integer(0)}, result="same"),
    Spec("trunc", (x,), _trunc(x), hints={x: sp.Integer(0)}, result="same"),
    Spec("isnan", (x,), sp.Ne(x, x, evaluate=False), result="bool", no_grad=(x,)),
    Spec("isinf", (x,), sp.Eq(sp.Abs(x), sp.oo, evaluate=False), result="bool", no_grad=(x,)),
]

SPECS = PRIMITIVES + INTEGER + PREDICATES + ACTIVATIONS + DERIVED
