"""Specialize: cheaper forms of common patterns, for the backends to run fast.

* ``x * x`` → ``square(x)``: one read of ``x``.
* ``x / c`` → ``x * (1/c)`` for a constant ``c``: a multiply instead of a divide; the
  reciprocal is folded into a constant by the canonical rules, which run in every phase.
* ``c − k·(a @ b)`` (and ``c + k·(a @ b)``, ``c − a @ b``) → ``addmm(c, a, b, alpha=∓k)``:
  one GEMM accumulating into c, so an SGD step updates each weight matrix inside its
  gradient's product.
* ``matmul(x, W) + b`` → ``dense(x, W, b)``, then ``act(dense(x, W, b))`` →
  ``dense(x, W, b, activation=act)``: one GEMM with the bias and the activation applied
  to its output buffer (see ``graphc.ops.dense``).

The dense rules never make the graph compute more. Fusing replaces the consumer
(the add, the activation) by a node that recomputes its producer (the product, the
pre-activation) inside itself. When that producer has another consumer it stays in
the graph for it, and hash-consing cannot merge the two: ``dense(x, W, b, gelu)`` and
``dense(x, W, b)`` are different nodes, so ``x @ W`` would run twice. That is the case
in training for activations whose derivative reads the pre-activation (gelu, softplus);
relu's, σ's and tanh's read their output, so those fuse in training too. A rule
sees one node, not its consumers, so these rules ask the engine's consumer counts
(``bindings["uses"]``) and fuse only into a producer's sole consumer.
"""

from __future__ import annotations

import numpy as np

from graphc.ops.dense import DENSE, DENSE_ACTIVATIONS, dense_accepts
from graphc.ops.elementwise import ELEMENTWISE
from graphc.ops.linalg import ADDMM
from graphc.passes.engine import rule
from graphc.passes.pattern import Bindings, Var, constant_value, op
from graphc.tensor import Tensor

x = Var("x")


def _sole_consumer(b: Bindings, producer: Tensor) -> bool:
    """Is the node being rewritten ``producer``'s only consumer in the graph (so the
    rewrite leaves ``producer`` dead, not computed alongside its replacement)?"""
    return b["uses"].get(producer, 0) <= 1


# x · x = x²: ``square`` reads x once (bool x · x is logical and; it is left alone).
rule("mul_self", x * x, op.square(x), phase="specialize",
     when=lambda b: b["x"].dtype != "bool")


def _has_normal_reciprocal(c: Tensor) -> bool:
    """Is ``c`` a constant whose reciprocal, in the dtype ``reciprocal(c)`` has, is finite
    and normal everywhere? (No zeros, infinities, NaNs, nor |c| so large that 1/c is
    subnormal and x·(1/c) would lose the digits x/c keeps.)"""
    value = constant_value(c)
    if value is None or value.size == 0:
        return False
    with np.errstate(all="ignore"):
        inverse = np.asarray(ELEMENTWISE["reciprocal"].impl(value))
    if inverse.dtype.kind != "f":
        return False
    magnitude = np.abs(inverse)
    tiny = np.finfo(inverse.dtype).tiny
    return bool(np.all(np.isfinite(magnitude)) and np.all(magnitude >= tiny))


# x / c = x · (1/c): 1/c is rounded once, so the product is within about 1.5 ulp of the
# quotient (exact when c is a power of two). A constant x is left to constant folding,
# which divides exactly.
rule("div_by_constant", x / Var("c", where=_has_normal_reciprocal), x * op.reciprocal(Var("c")),
     phase="specialize", when=lambda b: b["x"].op.name != "constant")


@rule("dense", op.matmul(x, Var("W")) + Var("b"), phase="specialize")
def dense(b: Bindings) -> Tensor | None:
    """matmul(x, W) + b → dense(x, W, b) for a 2-D W (k, n), a bias b of shape (n,) or
    (1, …, 1, n) and one float dtype, when the add is the product's only consumer."""
    x_, w, bias = b["x"], b["W"], b["b"]
    if not dense_accepts(x_, w, bias):
        return None
    product = next(i for i in b["node"].inputs if i.op.name == "matmul" and i.inputs == (x_, w))
    if not _sole_consumer(b, product):
        return None
    return DENSE(x_, w, bias, activation=None, params=())


@rule("dense_vector", op.reshape(op.matmul(op.reshape(x, shape=Var("row")), Var("W")),
                                 shape=Var("vector")) + Var("b"), phase="specialize")
def dense_vector(b: Bindings) -> Tensor | None:
    """matmul(x, W) + b → dense(x, W, b) for a vector x (k,): ``matmul`` builds it as
    reshape(matmul(reshape(x, (1, k)), W), (n,)), the row reshapes a dense node needs not."""
    x_, w, bias = b["x"], b["W"], b["b"]
    if x_.ndim != 1 or not dense_accepts(x_, w, bias) or b["node"].shape != (w.shape[1],):
        return None
    vector = next(i for i in b["node"].inputs
                  if i.op.name == "reshape" and i.inputs[0].op.name == "matmul"
                  and i.inputs[0].inputs[1] is w)
    if not (_sole_consumer(b, vector) and _sole_consumer(b, vector.inputs[0])):
        return None
    return DENSE(x_, w, bias, activation=None, params=())


def _scalar_constant(node: Tensor) -> bool:
    value = constant_value(node)
    return value is not None and value.size == 1 and value.dtype.kind == "f"


def _addmm(b: Bindings, alpha: float) -> Tensor | None:
    """c ± k·(a @ b) → addmm(c, a, b, alpha=±k) for matrices of one float dtype and
    shape, when the product and its scaling have no other consumer."""
    c, a, w = b["c"], b["x"], b["W"]
    node = b["node"]
    if a.ndim != 2 or w.ndim != 2 or c.shape != node.shape or c.dtype != node.dtype \
            or not c.type.is_float or len({c.dtype, a.dtype, w.dtype}) != 1:
        return None
    term = next(i for i in node.inputs if i is not c)
    product = term if term.op.name == "matmul" else next(
        i for i in term.inputs if i.op.name == "matmul")
    if not (_sole_consumer(b, term) and _sole_consumer(b, product)):
        return None
    return ADDMM(c, a, w, alpha=alpha, beta=1.0)


def _scale(b: Bindings) -> float:
    return float(np.asarray(constant_value(b["k"])).reshape(()))


# A training step's weight update, w − lr·(xᵀ @ g), becomes one GEMM that accumulates into
# w (BLAS's beta = 1): no product array, no pass over it, and written in place into w's
# array when the memory plan allows (``passes/memory``).
@rule("addmm_sub_scaled", Var("c") - op.mul(Var("k", where=_scalar_constant),
                                            op.matmul(x, Var("W"))), phase="specialize")
def addmm_sub_scaled(b: Bindings) -> Tensor | None:
    return _addmm(b, -_scale(b))


@rule("addmm_add_scaled", Var("c") + op.mul(Var("k", where=_scalar_constant),
                                            op.matmul(x, Var("W"))), phase="specialize")
def addmm_add_scaled(b: Bindings) -> Tensor | None:
    return _addmm(b, _scale(b))


@rule("addmm_sub", Var("c") - op.matmul(x, Var("W")), phase="specialize")
def addmm_sub(b: Bindings) -> Tensor | None:
    return _addmm(b, -1.0)


def _activation_of_dense(node: Tensor) -> bool:
    return (node.op.name in DENSE_ACTIVATIONS and node.inputs[0].op.name == "dense"
            and node.inputs[0].attr["activation"] is None)


@rule("dense_activation", Var("act", where=_activation_of_dense), phase="specialize")
def dense_activation(b: Bindings) -> Tensor | None:
    """act(dense(x, W, b)) → dense(x, W, b, activation=act) for a one-input activation
    (with its params: leaky_relu's α, ...), when the activation is the dense node's only
    consumer: otherwise both the pre-activation and the fused node would be computed."""
    activation = b["act"]
    pre = activation.inputs[0]
    if activation.dtype != pre.dtype or not _sole_consumer(b, pre):
        return None
    return DENSE(*pre.inputs, activation=activation.op.name, params=activation.attrs)


__all__: list[str] = []
