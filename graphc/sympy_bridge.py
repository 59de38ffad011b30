"""Scalar graphs as sympy expressions: ``to_sympy`` and ``latex``.

One more interpreter of the IR. Inputs and params become real sympy symbols named
after them, constants exact numbers, and every elementwise op is read off its own
scalar-IR formula (``op.formula.value``) by a sympy meaning of each scalar
primitive, so activations defined by a formula need no rule here. Shape-only ops
on one-element tensors (reshape, broadcast, a sum over a single element, a cast)
are the identity, which is what gradient graphs of scalar functions contain.

sympy is imported inside the functions: ``import graphc`` must not load it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.errors import GraphcTypeError
from graphc.graph import toposort
from graphc.ops.elementwise import Elementwise
from graphc.ops.scalar import Program
from graphc.tensor import Tensor
from graphc.types import FLOAT_DTYPES, INT_DTYPES, format_shape, shape_size

if TYPE_CHECKING:
    import sympy

#: Ops that only move, broadcast or reduce over one element: the identity on a scalar.
_ONE_ELEMENT_IDENTITIES = frozenset(
    ("reshape", "broadcast_to", "transpose", "sum", "mean", "max", "min", "prod"))


def to_sympy(tensor: Tensor, symbols: Mapping[Tensor, Any] | None = None) -> sympy.Expr:
    """The sympy expression a scalar graph computes.

    Parameters
    ----------
    tensor : Tensor
        A one-element tensor (usually shape ``()``) built from elementwise ops,
        activations, comparisons, ``where``, casts and shape-only ops on scalars.
    symbols : mapping of Tensor to sympy expression, optional
        What to use for given leaves (or any node) instead of the default: a real
        ``sympy.Symbol`` named after each input or param.

    Returns
    -------
    sympy.Expr
        Booleans (comparisons, logic) come out as sympy relationals and ``And``/``Or``.

    Raises
    ------
    GraphcTypeError
        For an op with no scalar meaning here (matmul, conv, random draws, ...) or a
        node of more than one element, naming the op and where it was built.
    """
    import sympy

    exprs: dict[Tensor, Any] = dict(symbols or {})
    names: dict[str, Tensor] = {}
    for node in toposort([tensor]):
        if node not in exprs:
            exprs[node] = _node_expr(sympy, node, exprs, names)
    return exprs[tensor]


def latex(tensor: Tensor, symbols: Mapping[Tensor, Any] | None = None, **options: Any) -> str:
    """LaTeX source of ``to_sympy(tensor)``; ``options`` go to ``sympy.latex``."""
    import sympy

    return sympy.latex(to_sympy(tensor, symbols), **options)


# -- one node ------------------------------------------------------------------------------------

def _node_expr(sp: Any, node: Tensor, exprs: dict[Tensor, Any], names: dict[str, Tensor]) -> Any:
    if shape_size(node.shape) != 1:
        _unsupported(node, f"to_sympy handles one-element tensors, this node has shape "
                           f"{format_shape(node.shape)}")
    op = node.op.name
    if op in ("input", "param"):
        return _symbol(sp, node, names)
    if op == "constant":
        return _number(sp, node.attr["value"].array.reshape(()).item())
    args = [exprs[i] for i in node.inputs]
    if isinstance(node.op, Elementwise):
        params = {k: _number(sp, v) for k, v in node.attrs}
        env = dict(zip(node.op.formula.inputs, args, strict=True)) | params
        return run_program(sp, node.op.formula.value, env)
    if op == "full_like":
        return _number(sp, node.attr["value"])
    if op == "cast":
        return _cast(sp, args[0], node.inputs[0].dtype, node.dtype)
    if op in _ONE_ELEMENT_IDENTITIES:
        return args[0]
    _unsupported(node, f"op {op!r} has no sympy translation (to_sympy handles elementwise ops, "
                       "activations, casts and shape-only ops on scalars)")


def _unsupported(node: Tensor, detail: str) -> None:
    raise GraphcTypeError(node.op.name, detail, tuple(i.type for i in node.inputs), node.location)


def _symbol(sp: Any, node: Tensor, names: dict[str, Tensor]) -> Any:
    """A real symbol named after the leaf; a second leaf of the same name gets ``name_2``..."""
    name = node.name
    suffix = 2
    while names.setdefault(name, node) is not node:
        name = f"{node.name}_{suffix}"
        suffix += 1
    return sp.Symbol(name, real=True)


def _number(sp: Any, value: Any) -> Any:
    """An exact sympy number: integers stay integers, floats their closed form (below),
    inf and nan their sympy forms."""
    if isinstance(value, bool | np.bool_):
        return sp.true if value else sp.false
    if isinstance(value, int | np.integer):
        return sp.Integer(int(value))
    value = float(value)
    if np.isnan(value):
        return sp.nan
    if np.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    if value.is_integer():
        return sp.Integer(int(value))
    return _closed_form(value)


@functools.lru_cache(maxsize=1024)
def _closed_form(value: float) -> Any:
    """The constant a float most likely spells: a closed form with radicals, π, e or logs
    when one rounds to exactly this float (0.7071067811865476 → √2/2, as GELU's 1/√2),
    else the rational its shortest repr spells (0.1 → 1/10)."""
    import sympy

    found = sympy.nsimplify(value, [sympy.pi])
    if not isinstance(found, sympy.Rational) and float(found) == value:
        return found
    return sympy.Rational(repr(value))


def _cast(sp: Any, x: Any, src: str, dst: str) -> Any:
    if dst == "bool":
        return _as_bool(sp, x)
    x = _as_number(sp, x)
    if dst in INT_DTYPES and src in FLOAT_DTYPES:  # C-style truncation toward zero
        return sp.Piecewise((sp.floor(x), x >= 0), (sp.ceiling(x), True))
    return x


# -- the scalar primitives, in sympy -------------------------------------------------------------

def _is_truth_value(sp: Any, x: Any) -> bool:
    """Relationals, ``And``/``Or``/..., ``true``/``false``; not symbols, which sympy
    also counts as ``Boolean``."""
    return isinstance(x, sp.logic.boolalg.Boolean) and not isinstance(x, sp.Expr)


def _as_bool(sp: Any, x: Any) -> Any:
    """A truth value: relationals and logic as they are, numbers as ``x ≠ 0``."""
    if _is_truth_value(sp, x):
        return x
    return sp.Ne(x, 0)


def _as_number(sp: Any, x: Any) -> Any:
    """A number: truth values become 1 or 0, as NumPy promotes bool."""
    if _is_truth_value(sp, x):
        return sp.Piecewise((sp.Integer(1), x), (sp.Integer(0), True))
    return x


def _compare(relation: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def rule(sp: Any, x: Any, y: Any) -> Any:
        return relation(_as_number(sp, x), _as_number(sp, y))
    return rule


def _equality(negated: bool) -> Callable[..., Any]:
    """``c == 0`` / ``c != 0`` on a truth value is its negation / itself (how ``where``
    and the derivative programs test conditions); otherwise a sympy ``Eq`` / ``Ne``."""
    def rule(sp: Any, x: Any, y: Any) -> Any:
        for a, b in ((x, y), (y, x)):
            if _is_truth_value(sp, a) and b == 0:
                return a if negated else sp.Not(a)
        x, y = _as_number(sp, x), _as_number(sp, y)
        return sp.Ne(x, y) if negated else sp.Eq(x, y)
    return rule


def _arithmetic(fn: Callable[..., Any]) -> Callable[..., Any]:
    def rule(sp: Any, *args: Any) -> Any:
        return fn(sp, *(_as_number(sp, a) for a in args))
    return rule


def _logic(fn: Callable[..., Any]) -> Callable[..., Any]:
    def rule(sp: Any, *args: Any) -> Any:
        return fn(sp, *(_as_bool(sp, a) for a in args))
    return rule


#: The sympy meaning of each scalar primitive of ``graphc.ops.scalar``.
SYMPY_PRIMITIVES: dict[str, Callable[..., Any]] = {
    "add": _arithmetic(lambda sp, x, y: x + y),
    "sub": _arithmetic(lambda sp, x, y: x - y),
    "mul": _arithmetic(lambda sp, x, y: x * y),
    "div": _arithmetic(lambda sp, x, y: x / y),
    "pow": _arithmetic(lambda sp, x, y: x**y),
    "neg": _arithmetic(lambda sp, x: -x),
    "abs": _arithmetic(lambda sp, x: sp.Abs(x)),
    "sign": _arithmetic(lambda sp, x: sp.sign(x)),
    "floor": _arithmetic(lambda sp, x: sp.floor(x)),
    "exp": _arithmetic(lambda sp, x: sp.exp(x)),
    "log": _arithmetic(lambda sp, x: sp.log(x)),
    "log1p": _arithmetic(lambda sp, x: sp.log(1 + x)),
    "expm1": _arithmetic(lambda sp, x: sp.exp(x) - 1),
    "sqrt": _arithmetic(lambda sp, x: sp.sqrt(x)),
    "square": _arithmetic(lambda sp, x: x**2),
    "reciprocal": _arithmetic(lambda sp, x: 1 / x),
    "sin": _arithmetic(lambda sp, x: sp.sin(x)),
    "cos": _arithmetic(lambda sp, x: sp.cos(x)),
    "tanh": _arithmetic(lambda sp, x: sp.tanh(x)),
    "erf": _arithmetic(lambda sp, x: sp.erf(x)),
    "atan": _arithmetic(lambda sp, x: sp.atan(x)),
    "sigmoid": _arithmetic(lambda sp, x: 1 / (1 + sp.exp(-x))),
    "mod": _arithmetic(lambda sp, x, y: sp.Mod(x, y)),  # floor modulo, the sign of y
    # C's fmod, the sign of x: x - y·trunc(x/y)
    "fmod": _arithmetic(lambda sp, x, y: x - y * sp.sign(x / y) * sp.floor(sp.Abs(x / y))),
    "maximum": _arithmetic(lambda sp, x, y: sp.Max(x, y)),
    "minimum": _arithmetic(lambda sp, x, y: sp.Min(x, y)),
    "where": lambda sp, c, x, y: sp.Piecewise(
        (_as_number(sp, x), _as_bool(sp, c)), (_as_number(sp, y), True)),
    "less": _compare(lambda x, y: x < y),
    "less_equal": _compare(lambda x, y: x <= y),
    "greater": _compare(lambda x, y: x > y),
    "greater_equal": _compare(lambda x, y: x >= y),
    "equal": _equality(negated=False),
    "not_equal": _equality(negated=True),
    "logical_and": _logic(lambda sp, x, y: sp.And(x, y)),
    "logical_or": _logic(lambda sp, x, y: sp.Or(x, y)),
    "logical_xor": _logic(lambda sp, x, y: sp.Xor(x, y)),
    "logical_not": _logic(lambda sp, x: sp.Not(x)),
}


def run_program(sp: Any, program: Program, env: Mapping[str, Any]) -> Any:
    """Interpret a scalar-IR program over sympy expressions (float constants exactly)."""
    values = dict(env)

    def read(arg: str | float) -> Any:
        return _number(sp, arg) if isinstance(arg, float) else values[arg]

    for dest, op, args in program.instrs:
        if op not in SYMPY_PRIMITIVES:
            raise NotImplementedError(f"scalar primitive {op!r} has no sympy meaning")
        values[dest] = SYMPY_PRIMITIVES[op](sp, *(read(a) for a in args))
    return read(program.result)


__all__ = ["to_sympy", "latex"]
