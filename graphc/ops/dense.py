"""The dense (fully connected) layer as one op: ``act(x @ W + b)``.

``dense`` is what the optimizer's ``specialize`` phase makes of ``matmul(x, W) + b``
and of an activation applied to it: one node that a backend runs as one matrix
product with the bias and the activation applied to the product's own buffer, so
no intermediate array is allocated. Users may build it directly with ``dense``.

Shapes: ``x`` (..., k), ``W`` (k, n), ``b`` (n,) or (1, ..., 1, n), all of one float
dtype; the output is (..., n). ``activation`` names a one-input activation op
(``relu``, ``sigmoid``, ``tanh``, ``leaky_relu``, ...) or is ``None``; ``params`` holds
that op's attributes (``(("alpha", 0.01),)`` for ``leaky_relu``).

Its meaning is ``expand``: ``act(matmul(x, W) + b)`` in primitive ops. Its
derivative is written out rather than taken through the expansion, so that the
backward pass reads the forward output (σ' = out·(1 − out), relu' = [out > 0])
instead of computing ``x @ W`` a second time:

    z = x W + b,   y = act(z),   z̄ = ȳ · act'(z),
    x̄ = z̄ Wᵀ,   W̄ = Σ_rows xᵀ z̄,   b̄ = z̄ (summed back to b's shape by the driver).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from graphc.errors import GraphcTypeError
from graphc.ops import elementwise as ew
from graphc.ops import linalg
from graphc.ops import shape as shape_ops
from graphc.ops.activations import ACTIVATIONS
from graphc.ops.elementwise import ELEMENTWISE
from graphc.ops.fused import Composite
from graphc.ops.nn import type_error
from graphc.ops.scalar import NUMPY_PRIMITIVES, Program
from graphc.tensor import Tensor, as_tensor
from graphc.tensor import input as graph_input
from graphc.types import FLOAT_DTYPES, TensorType, format_shape

#: Ops the public activations build under a name of their own (``sigmoid(x, c=2)`` is a
#: ``sigmoid_c`` node, ``gelu(x, approximate="tanh")`` a ``gelu_tanh`` node).
_VARIANT_OPS = ("sigmoid_c", "gelu_tanh")

#: The activation ops a dense layer may end with: every one-input activation.
DENSE_ACTIVATIONS: frozenset[str] = frozenset(
    name for name, op in ELEMENTWISE.items()
    if len(op.formula.inputs) == 1 and (name in ACTIVATIONS or name in _VARIANT_OPS))

#: Activations whose derivative reads their input only through sign tests that the
#: output passes exactly when the input does, so ``act'`` may read ``out`` instead of
#: the pre-activation z (which the backward pass would otherwise recompute):
#: relu, leaky_relu (α ≥ 0), elu (α ≥ 0), selu and celu are > 0 exactly where z > 0
#: (z ≤ 0 gives 0, α·z ≤ 0 or α·expm1(·) ≤ 0); relu6 is ≤ 0 exactly where z ≤ 0 and
#: ≥ 6 exactly where z ≥ 6.
_DERIVATIVE_FROM_OUTPUT: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "relu": lambda p: True, "relu6": lambda p: True, "selu": lambda p: True,
    "celu": lambda p: True, "leaky_relu": lambda p: p["alpha"] >= 0,
    "elu": lambda p: p["alpha"] >= 0,
}

#: Scalar ops that may run in place on the output buffer (float in, float out, ufuncs).
_IN_PLACE_OPS = frozenset(("neg", "exp", "log", "log1p", "expm1", "tanh", "add", "sub", "mul",
                           "div", "reciprocal", "square", "sqrt", "abs", "sin", "cos",
                           "sigmoid"))


class Dense(Composite):
    """``act(x @ W + b)`` in one node (``b`` optional; ``activation`` may be ``None``)."""

    name = "dense"

    def infer(self, inputs: tuple[TensorType, ...], *, activation: str | None,
              params: tuple) -> TensorType:
        if len(inputs) not in (2, 3):
            raise TypeError(f"takes x, W and optionally b, got {len(inputs)} inputs")
        x, w = inputs[:2]
        if len({t.dtype for t in inputs}) != 1 or x.dtype not in FLOAT_DTYPES:
            raise TypeError("x, W and b must have one float dtype, got "
                            + ", ".join(t.dtype for t in inputs))
        if x.ndim < 1 or w.ndim != 2:
            raise ValueError(f"x must be (..., k) and W (k, n), got x {format_shape(x.shape)} "
                             f"and W {format_shape(w.shape)}")
        if x.shape[-1] != w.shape[0]:
            raise ValueError(f"x {format_shape(x.shape)} @ W {format_shape(w.shape)}: "
                             f"contraction dims differ ({x.shape[-1]} vs {w.shape[0]})")
        out = (*x.shape[:-1], w.shape[1])
        if len(inputs) == 3:
            _check_bias(inputs[2].shape, out)
        _check_activation(activation, params)
        return TensorType(out, x.dtype)

    def impl(self, x: np.ndarray, w: np.ndarray, *bias: np.ndarray, activation: str | None,
             params: tuple) -> np.ndarray:
        out = np.matmul(x, w)  # a fresh buffer: the bias and activation then work in place
        if bias:
            np.add(out, bias[0], out=out)
        if activation is not None:
            out = _activate_in_place(out, activation, dict(params))
        return out

    def expand(self, node: Tensor) -> Tensor:
        x, w, *bias = node.inputs
        z = linalg.matmul(x, w)
        if bias:
            z = ew.add(z, bias[0])
        activation = node.attr["activation"]
        if activation is None:
            return z
        return ELEMENTWISE[activation](z, **dict(node.attr["params"]))

    def vjp(self, node: Tensor, g: Tensor) -> tuple[Tensor | None, ...]:
        x, w, *bias = node.inputs
        k, n = w.shape
        gz = _pre_activation_cotangent(node, g)
        gx = linalg.matmul(gz, shape_ops.transpose(w))
        # W̄ = Σ over every row of x (all leading axes) of xᵀ z̄: one (k, rows) @ (rows, n).
        rows_x = x if x.ndim == 2 else shape_ops.reshape(x, (-1, k))
        rows_gz = gz if gz.ndim == 2 else shape_ops.reshape(gz, (-1, n))
        gw = linalg.matmul(shape_ops.transpose(rows_x), rows_gz)
        return (gx, gw, gz) if bias else (gx, gw)


DENSE = Dense()


def _check_bias(bias: tuple, out: tuple) -> None:
    """``b`` must be (n,) or (1, ..., 1, n): it broadcasts over the last axis only."""
    if (len(bias) == 0 or len(bias) > len(out) or bias[-1] != out[-1]
            or any(d != 1 for d in bias[:-1])):
        raise ValueError(f"b {format_shape(bias)} must be ({out[-1]},) or (1, ..., 1, {out[-1]}) "
                         f"for an output of shape {format_shape(out)}")


def _check_activation(activation: str | None, params: tuple) -> None:
    if activation is None:
        if params:
            raise ValueError(f"params {params} given without an activation")
        return
    if activation not in DENSE_ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; dense takes one of "
                         f"{sorted(DENSE_ACTIVATIONS)}")
    wanted = ELEMENTWISE[activation].formula.params
    if sorted(name for name, _ in params) != sorted(wanted):
        raise ValueError(f"activation {activation!r} needs params {wanted}, got {params}")


def _activate_in_place(out: np.ndarray, activation: str, params: dict[str, Any]) -> np.ndarray:
    """``activation(out)``, overwriting ``out`` where the formula allows, else a new array.

    Results are those of the activation op's reference implementation: the same
    NumPy functions on the same values, only writing into ``out``.
    """
    if activation == "relu":
        # relu(z) = z if z > 0 else 0; fmax(z, 0) is that, nan included (fmax(nan, 0) = 0)
        return np.fmax(out, 0, out=out)
    program = ELEMENTWISE[activation].formula.value
    if _run_chain_in_place(program, out, params):
        return out
    return ELEMENTWISE[activation].impl(out, **params)


def _run_chain_in_place(program: Program, out: np.ndarray, params: dict[str, Any]) -> bool:
    """Run ``program`` on ``out`` in place if it is a chain (each step reads only the
    step before it, constants and params, with an op of ``_IN_PLACE_OPS``), as sigmoid and
    tanh are. Returns False, touching nothing, if not."""
    previous = "x"
    for dest, op, args in program.instrs:
        reads = [a for a in args if isinstance(a, str) and a not in params]
        if op not in _IN_PLACE_OPS or reads != [previous]:
            return False
        previous = dest
    if program.result != previous:
        return False
    scalar = out.dtype.type  # constants and params compute in the op's dtype, as evaluate()
    previous = "x"
    for dest, op, args in program.instrs:
        operands = [out if a == previous else scalar(params[a] if isinstance(a, str) else a)
                    for a in args]
        if op == "reciprocal":
            np.divide(scalar(1), out, out=out)
        else:
            NUMPY_PRIMITIVES[op](*operands, out=out)
        previous = dest
    return True


def _pre_activation_cotangent(node: Tensor, g: Tensor) -> Tensor:
    """z̄ = ȳ · act'(z), with act' read from the output where that is exact."""
    activation = node.attr["activation"]
    if activation is None:
        return g
    params = dict(node.attr["params"])
    formula = ELEMENTWISE[activation].formula
    (derivative,) = formula.derivatives
    if not derivative.instrs and isinstance(derivative.result, float):  # a constant slope
        slope = derivative.result
        return g if slope == 1.0 else ew.mul(g, slope) if slope else ew.zeros_like(g)
    (z_name,) = formula.inputs
    env: dict[str, Any] = {**params, "out": node}
    if _reads(derivative, z_name):
        from_output = _DERIVATIVE_FROM_OUTPUT.get(activation)
        if from_output is not None and from_output(params):
            env[z_name] = node
        else:  # act' needs z itself (gelu, softplus, ...): recompute it without the activation
            env[z_name] = DENSE(*node.inputs, activation=None, params=())
    return ew.mul(g, derivative.build(env, g.dtype))


def _reads(program: Program, name: str) -> bool:
    return program.result == name or any(name in args for _, _, args in program.instrs)


def _resolve_activation(activation: str | None, params: dict[str, Any],
                        dtype: str) -> tuple[str | None, tuple]:
    """The op name and frozen params a public activation spelling builds (``"gelu"`` with
    ``approximate="tanh"`` is ``gelu_tanh``, ``"leaky_relu"`` gets its default α)."""
    if activation is None:
        if params:
            raise ValueError(f"activation params {params} given without an activation")
        return None, ()
    build = ACTIVATIONS.get(activation)
    if build is None and activation in DENSE_ACTIVATIONS:
        build = ELEMENTWISE[activation]
    if build is None:
        raise ValueError(f"unknown activation {activation!r}; dense takes one of "
                         f"{sorted(set(ACTIVATIONS) | DENSE_ACTIVATIONS)}")
    probe = graph_input("z", (), dtype)
    applied = build(probe, **params)
    if applied.op.name not in DENSE_ACTIVATIONS or applied.inputs != (probe,):
        raise ValueError(f"activation {activation!r} with params {params} is not one "
                         "elementwise op of its input (prelu and rrelu in training are not)")
    return applied.op.name, applied.attrs


def dense(x: Any, W: Any, b: Any = None, activation: str | None = None,
          **params: Any) -> Tensor:
    """A fully connected layer ``activation(x @ W + b)`` as one node.

    Parameters
    ----------
    x : Tensor or array-like
        Of shape (..., k); leading axes are batch axes.
    W : Tensor or array-like
        Of shape (k, n), the dtype of ``x`` (a float dtype).
    b : Tensor or array-like, optional
        Of shape (n,) or (1, ..., 1, n); no bias when omitted.
    activation : str, optional
        A name of ``graphc.ops.activations.ACTIVATIONS`` that is one elementwise op of
        its input (``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"gelu"``, ...), or one of those
        ops by name (``"gelu_tanh"``); ``None`` for a linear layer.
    **params
        The activation's parameters, as its function takes them (``alpha=0.2`` for
        ``"leaky_relu"``, ``approximate="tanh"`` for ``"gelu"``).

    Returns
    -------
    Tensor
        Of shape (..., n). Its value is ``activation(matmul(x, W) + b)``; bad shapes or
        dtypes raise ``GraphcTypeError`` naming ``dense`` and the input types.
    """
    x = as_tensor(x)
    tensors = [x, as_tensor(W, x)] + ([] if b is None else [as_tensor(b, x)])
    try:
        name, frozen = _resolve_activation(activation, params, x.dtype
                                           if x.dtype in FLOAT_DTYPES else "float64")
    except GraphcTypeError as e:  # the activation op refused the params
        raise type_error("dense", ValueError(f"{e.op}: {e.detail}"), *tensors) from None
    except (TypeError, ValueError) as e:
        raise type_error("dense", e, *tensors) from None
    return DENSE(*tensors, activation=name, params=frozen)


def dense_accepts(x: Tensor, W: Tensor, b: Tensor | None = None) -> bool:
    """Would ``dense(x, W, b)`` type-check? (What the ``dense`` rewrite asks first.)"""
    types = tuple(t.type for t in (x, W, b) if t is not None)
    try:
        DENSE.infer(types, activation=None, params=())
    except (TypeError, ValueError):
        return False
    return True


__all__ = ["dense"]
