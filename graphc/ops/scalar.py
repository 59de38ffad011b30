"""The scalar-expression IR: what every elementwise op means, one scalar at a time.

A ``Program`` is straight-line SSA code: instructions ``(dest, op, args)`` whose
args are earlier destinations, formula variables (inputs such as ``x``, attribute
params such as ``alpha``, the forward value ``out``), or float constants. Scalar
op names are the names of graphc's primitive elementwise ops, so a program can be

* evaluated on NumPy arrays (``evaluate``): the reference implementation, and
* rebuilt as graph nodes (``build``): how derivatives become graph, so that
  grad of grad works and the optimizer sees ordinary nodes.

The programs themselves come from sympy formulas (``graphc/ops/formulas.py``),
turned into this IR by ``graphc/ops/generate.py`` ahead of time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Arg = str | float
Instr = tuple[str, str, tuple[Arg, ...]]


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # scipy loads only when an erf is evaluated

    return erf(x)


def _sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(x) = 1/(1 + e^−x) in four in-place passes: e^−x = inf gives 0, never nan, and the
    relative accuracy holds down to where e^−x overflows (x ≈ −88 in float32)."""
    with np.errstate(over="ignore"):
        if out is None:
            return np.divide(1, np.add(1, np.exp(np.negative(x))))
        np.negative(x, out=out)
        np.exp(out, out=out)
        np.add(out, 1, out=out)
        return np.divide(1, out, out=out)


def _reciprocal(x: np.ndarray) -> np.ndarray:
    return np.divide(1, x)


def _trunc_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer division toward zero (C, ONNX Div); x/0 is 0, as NumPy's floor_divide."""
    q = np.floor_divide(x, y)
    inexact = (np.remainder(x, y) != 0) & ((x < 0) ^ (y < 0))
    return q + inexact.astype(q.dtype)


#: The NumPy meaning of each scalar primitive.
NUMPY_PRIMITIVES: dict[str, Callable[..., Any]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "pow": np.power, "neg": np.negative, "abs": np.abs, "sign": np.sign, "floor": np.floor,
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1,
    "sqrt": np.sqrt, "square": np.square, "reciprocal": _reciprocal,
    "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "erf": _erf, "atan": np.arctan,
    "sigmoid": _sigmoid,
    "round": np.round, "fmod": np.fmod, "mod": np.mod,
    "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
    "bitwise_not": np.invert, "left_shift": np.left_shift, "right_shift": np.right_shift,
    "trunc_div": _trunc_div,
    "maximum": np.maximum, "minimum": np.minimum, "where": np.where,
    "less": np.less, "less_equal": np.less_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "equal": np.equal, "not_equal": np.not_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor, "logical_not": np.logical_not,
}


@dataclass(frozen=True)
class Program:
    """Straight-line scalar code computing ``result``."""

    instrs: tuple[Instr, ...]
    result: Arg

    def evaluate(self, env: Mapping[str, Any], dtype: str) -> np.ndarray:
        """Run on NumPy arrays. Constants and attribute params (Python numbers in ``env``)
        take ``dtype`` when it is a float type, so a float32 op computes in float32."""
        values = dict(env)
        cast = np.dtype(dtype).type if np.dtype(dtype).kind == "f" else (lambda v: v)

        def read(arg: Arg) -> Any:
            value = arg if isinstance(arg, float) else values[arg]
            # constants and attribute params are typed like the op, never weak floats
            return cast(value) if isinstance(value, float | int) else value

        with np.errstate(all="ignore"):
            for dest, op, args in self.instrs:
                values[dest] = NUMPY_PRIMITIVES[op](*(read(a) for a in args))
            return read(self.result)

    def build(self, env: Mapping[str, Any], dtype: str) -> Any:
        """Rebuild as graph nodes from ``env`` (names to tensors or numbers); numbers
        become constants of ``dtype``."""
        from graphc.ops import elementwise
        from graphc.tensor import constant

        values = dict(env)

        def read(arg: Arg) -> Any:
            value = arg if isinstance(arg, float) else values[arg]
            return constant(value, dtype) if isinstance(value, float | int) else value

        for dest, op, args in self.instrs:
            values[dest] = elementwise.ELEMENTWISE[op](*(read(a) for a in args))
        return read(self.result)

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(op for _, op, _ in self.instrs)


@dataclass(frozen=True)
class Formula:
    """An elementwise op's scalar meaning and its partial derivatives.

    ``derivatives[i]`` is ∂out/∂inputs[i] as a program over the inputs, the params
    and ``out`` (so σ' can be written s·(1−s), sharing the forward value), or
    ``None`` where that input carries no gradient (a condition, a comparison).
    ``result`` says the output dtype: ``"float"`` (ints promote to float64),
    ``"same"`` (NumPy promotion of the inputs, ints stay ints), ``"int"`` (as ``"same"``,
    for integer and bool inputs only: bitwise ops, shifts) or ``"bool"``.
    """

    name: str
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    value: Program
    derivatives: tuple[Program | None, ...]
    result: str = "float"
