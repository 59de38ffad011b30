"""Turn the sympy formulas of ``formulas.py`` into scalar-IR programs.

Run ``python -m graphc.ops.generate`` (or ``make regen``) after editing a formula;
it rewrites ``graphc/ops/_generated.py``. ``tests/ops/test_generate.py`` fails if the
checked-in module differs from what this script produces.

For each formula: the value program (a primitive is its own single instruction),
and for each input its partial derivative from ``sympy.diff``, or the formula's
hint once checked numerically equal to it. Derivatives are rewritten in terms of
``out`` where that is cheaper, and identical subexpressions are emitted once.
"""

from __future__ import annotations

import pprint
import sys
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from graphc.ops import formulas
from graphc.ops.formulas import SPECS, Spec, out
from graphc.ops.scalar import NUMPY_PRIMITIVES, Arg, Formula, Program

TARGET = Path(__file__).with_name("_generated.py")

_UNARY = {sp.exp: "exp", sp.log: "log", log1p: "log1p", expm1: "expm1", sp.tanh: "tanh",
          sp.sin: "sin", sp.cos: "cos", sp.erf: "erf", sp.Abs: "abs", sp.sign: "sign",
          sp.floor: "floor", sp.atan: "atan"}
#: sympy functions of formulas.py that are graphc primitives, any arity
_FUNCTIONS = {formulas.RoundEven: "round", formulas.Fmod: "fmod", formulas.FloorMod: "mod",
              formulas.BitAnd: "bitwise_and", formulas.BitOr: "bitwise_or",
              formulas.BitXor: "bitwise_xor", formulas.BitNot: "bitwise_not",
              formulas.LeftShift: "left_shift", formulas.RightShift: "right_shift",
              formulas.TruncDiv: "trunc_div", formulas.Sigmoid: "sigmoid"}
_RELATIONS = {sp.StrictLessThan: "less", sp.LessThan: "less_equal",
              sp.StrictGreaterThan: "greater", sp.GreaterThan: "greater_equal",
              sp.Equality: "equal", sp.Unequality: "not_equal"}
_LOGIC = {sp.And: "logical_and", sp.Or: "logical_or", sp.Xor: "logical_xor"}


class _Emitter:
    """sympy expression → SSA instructions, one instruction per distinct subexpression."""

    def __init__(self) -> None:
        self.instrs: list[tuple[str, str, tuple[Arg, ...]]] = []
        self._memo: dict[tuple, str] = {}

    def op(self, name: str, *args: Arg) -> str:
        key = (name, args)
        if key not in self._memo:
            dest = f"t{len(self.instrs)}"
            self.instrs.append((dest, name, args))
            self._memo[key] = dest
        return self._memo[key]

    def chain(self, name: str, args: list[Arg]) -> Arg:
        acc = args[0]
        for a in args[1:]:
            acc = self.op(name, acc, a)
        return acc

    def walk(self, e: sp.Basic) -> Arg:  # noqa: C901 - one case per sympy node kind
        if e.is_Symbol:
            return e.name
        if e is sp.true:
            return 1.0
        if e is sp.false:
            return 0.0
        if e.is_Number or e.is_NumberSymbol or (e.is_number and e.is_real):
            return float(e)
        if isinstance(e, sp.Add):
            return self._add(e)
        if isinstance(e, sp.Mul):
            return self._mul(e)
        if isinstance(e, sp.Pow):
            return self._pow(e)
        if isinstance(e, sp.Piecewise):
            return self._piecewise(e)
        if isinstance(e, sp.Heaviside):
            arg, at_zero = e.args[0], (e.args[1] if len(e.args) > 1 else sp.Rational(1, 2))
            a = self.walk(arg)
            inner = self.op("where", self.op("equal", a, 0.0), float(at_zero), 0.0)
            return self.op("where", self.op("greater", a, 0.0), 1.0, inner)
        if isinstance(e, sp.DiracDelta):
            return 0.0  # the derivative of a step is zero almost everywhere
        if isinstance(e, sp.Max | sp.Min):
            name = "maximum" if isinstance(e, sp.Max) else "minimum"
            return self.chain(name, [self.walk(a) for a in e.args])
        if e.func in _FUNCTIONS:
            return self.op(_FUNCTIONS[e.func], *(self.walk(a) for a in e.args))
        if e.func in _UNARY:
            return self.op(_UNARY[e.func], self.walk(e.args[0]))
        if e.func in _RELATIONS:
            return self.op(_RELATIONS[e.func], self.walk(e.lhs), self.walk(e.rhs))
        if e.func in _LOGIC:
            return self.chain(_LOGIC[e.func], [self.walk(a) for a in e.args])
        if isinstance(e, sp.Not):
            return self.op("logical_not", self.walk(e.args[0]))
        raise NotImplementedError(f"no scalar-IR form for {e.func.__name__}: {e}")

    def _add(self, e: sp.Add) -> Arg:
        plus, minus = [], []
        for term in sp.Add.make_args(e):
            coeff, rest = term.as_coeff_Mul()
            (minus if coeff.is_negative else plus).append(-term if coeff.is_negative else term)
        if not plus:
            return self.op("neg", self._add_terms(minus))
        acc = self._add_terms(plus)
        for term in minus:
            acc = self.op("sub", acc, self.walk(term))
        return acc

    def _add_terms(self, terms: list[sp.Expr]) -> Arg:
        return self.chain("add", [self.walk(t) for t in terms])

    def _mul(self, e: sp.Mul) -> Arg:
        coeff, rest = e.as_coeff_Mul()
        if coeff.is_negative:
            return self.op("neg", self.walk(-e))
        number, numer, denom = sp.Integer(1), [], []
        for f in sp.Mul.make_args(e):
            if f.is_number:
                number *= f
            elif f.is_Pow and f.exp.is_number and f.exp.is_negative:
                denom.append(f.base ** (-f.exp))
            else:
                numer.append(f)
        # All numeric factors become one: a rational p/q multiplies by p and divides by
        # q (x/6 stays an exact division), any other number is one float constant.
        if number.is_Rational:
            numer = [sp.Integer(number.p)] * (number.p != 1) + numer
            denom = [sp.Integer(number.q)] * (number.q != 1) + denom
        else:
            numer = [number, *numer]
        top = self.chain("mul", [self.walk(f) for f in numer]) if numer else 1.0
        if not denom:
            return top
        bottom = self.chain("mul", [self.walk(f) for f in denom])
        if top == 1.0:
            return self.op("reciprocal", bottom)
        return self.op("div", top, bottom)

    def _pow(self, e: sp.Pow) -> Arg:
        base, exp = e.base, e.exp
        if base is sp.E:
            return self.op("exp", self.walk(exp))
        if exp == 2:
            return self.op("square", self.walk(base))
        if exp == sp.Rational(1, 2):
            return self.op("sqrt", self.walk(base))
        if exp == -1:
            return self.op("reciprocal", self.walk(base))
        if exp.is_number and exp.is_negative:
            return self.op("reciprocal", self.walk(base ** (-exp)))
        if exp == 3:
            b = self.walk(base)
            return self.op("mul", self.op("square", b), b)
        return self.op("pow", self.walk(base), self.walk(exp))

    def _piecewise(self, e: sp.Piecewise) -> Arg:
        *branches, (last, _) = e.args
        acc = self.walk(last)
        for value, cond in reversed(branches):
            acc = self.op("where", self.walk(cond), self.walk(value), acc)
        return acc


def to_program(expr: sp.Expr) -> Program:
    """Straight-line code for ``expr``."""
    em = _Emitter()
    result = em.walk(expr)
    return Program(tuple(em.instrs), result)


def _numeric_points(spec: Spec, n: int = 64) -> list[dict[sp.Symbol, float]]:
    rng = np.random.default_rng(0)
    params = {p: float(v) for p, v in zip(spec.params, (-0.7, 1.3, 2.1, 0.4), strict=False)}
    return [{**{v: float(rng.uniform(-3, 3)) for v in spec.inputs}, **params} for _ in range(n)]


def _agree(a: sp.Expr, b: sp.Expr, spec: Spec) -> bool:
    """Equal at random points where both are finite (sympy cannot always prove it)."""
    checked = 0
    for point in _numeric_points(spec):
        point = {**point, out: spec.value.subs(point)}
        try:
            va, vb = complex(a.subs(point).evalf()), complex(b.subs(point).evalf())
        except (TypeError, ValueError):
            continue
        if any(np.isnan([va.real, vb.real])) or abs(va.imag) + abs(vb.imag) > 0:
            continue
        checked += 1
        if not np.isclose(va.real, vb.real, rtol=1e-9, atol=1e-12):
            return False
    return checked >= 8


#: step functions: sympy leaves their derivative unevaluated; it is 0 almost everywhere
_STEPS = (sp.floor, formulas.RoundEven)


def sympy_derivative(expr: sp.Expr, var: sp.Symbol) -> sp.Expr:
    """``sympy.diff`` with the derivative of a step (``DiracDelta``, and the unevaluated
    derivative of ``floor``) taken as 0: the value almost everywhere, as torch does."""
    d = sp.diff(expr, var).replace(sp.DiracDelta, lambda *a: sp.Integer(0))
    d = d.replace(lambda e: isinstance(e, sp.Derivative) and isinstance(e.expr, _STEPS),
                  lambda e: sp.Integer(0))
    # the chain rule through a step leaves Subs(0, ξ, inner): evaluate those to 0
    return d.replace(lambda e: isinstance(e, sp.Subs), lambda e: e.doit())


def derivative(spec: Spec, var: sp.Symbol) -> sp.Expr:
    """∂value/∂var: the hint if it agrees with sympy.diff, else the cheaper of
    sympy.diff and sympy.diff rewritten in terms of ``out``."""
    d = sympy_derivative(spec.value, var)
    if var in spec.hints:
        hint = sp.sympify(spec.hints[var])
        if not _agree(hint, d, spec):
            raise ValueError(f"{spec.name}: hint d/d{var} = {hint} disagrees with {d}")
        return hint
    shared = d.subs(spec.value, out)
    return shared if sp.count_ops(shared) < sp.count_ops(d) else d


def build_formula(spec: Spec) -> Formula:
    names = tuple(v.name for v in spec.inputs)
    params = tuple(p.name for p in spec.params)
    if spec.name in NUMPY_PRIMITIVES:
        value = Program((("t0", spec.name, names),), "t0")
    else:
        value = to_program(spec.value)
    derivatives = tuple(None if v in spec.no_grad else to_program(derivative(spec, v))
                        for v in spec.inputs)
    return Formula(spec.name, names, params, value, derivatives, spec.result)


def render(formulas: list[Formula]) -> str:
    body = pprint.pformat({f.name: f for f in formulas}, width=100, sort_dicts=False)
    return (
        '"""Generated by ``python -m graphc.ops.generate`` from ``graphc/ops/formulas.py``.\n\n'
        'Do not edit: change the formula and regenerate."""\n\n'
        "from math import inf  # noqa: F401 - constants such as |x| = inf print as inf\n\n"
        "from graphc.ops.scalar import Formula, Program\n\n"
        f"FORMULAS = {body}\n"
    )


def generate() -> str:
    return render([build_formula(spec) for spec in SPECS])


def main() -> None:
    TARGET.write_text(generate())
    print(f"wrote {TARGET} ({len(SPECS)} formulas)", file=sys.stderr)


if __name__ == "__main__":
    main()
