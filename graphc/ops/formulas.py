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
    result: str = "float"  # "float" | "same" | "bool"
    #: inputs that carry no gradient (conditions)
    no_grad: tuple[sp.Symbol, ...] = ()


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
ACTIVATIONS: list[Spec] = []

SPECS = PRIMITIVES + PREDICATES + ACTIVATIONS
