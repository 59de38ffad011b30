"""Canonicalize: constant folding and the algebraic identities every graph wants.

Dead code and common subexpressions need no rule: a rewritten graph is rebuilt
from its outputs (so nothing dead is kept) and nodes are hash-consed (so equal
subterms, equal constants included, are one node).

Every rule here preserves values under IEEE arithmetic as NumPy computes it, up to
the sign of a zero result (``x + 0 → x`` keeps ``-0`` where the sum gives ``+0``).
Identities that fail on non-finite values (``x·0 = 0``, ``x − x = 0``) fire only
where the operand is ``known_finite``; ``x / x → 1`` is not a rule at all (0/0, ∞/∞).
A replacement computes in the matched node's dtype (``_in_result_dtype``), so a
narrower operand cannot overflow or round where the original did not.
"""

from __future__ import annotations

import math

import numpy as np

from graphc.ops import elementwise as ew
from graphc.ops import shape as shape_ops
from graphc.ops.base import ALL_OPS
from graphc.ops.elementwise import Elementwise
from graphc.ops.random import RandomOp
from graphc.passes.engine import rule
from graphc.passes.pattern import Bindings, Var, constant_value, op
from graphc.tensor import Tensor, constant
from graphc.types import FLOAT_DTYPES, broadcast_shapes, is_static, promote_types, shape_size

PHASE = "canonicalize"

x, y = Var("x"), Var("y")

# -- constant folding -------------------------------------------------------------------------

#: Never fold into a constant bigger than this many elements, unless no input is smaller
#: (folding must not turn a broadcast scalar into a huge array baked into the program).
FOLD_MAX_ELEMENTS = 1 << 16


def _foldable(node) -> bool:
    if not node.inputs or isinstance(node.op, RandomOp):
        return False
    if not all(i.op.name == "constant" for i in node.inputs) or not is_static(node.shape):
        return False
    size = shape_size(node.shape)
    return size <= FOLD_MAX_ELEMENTS or size <= max(shape_size(i.shape) for i in node.inputs)


@rule("constant_fold", Var("node", where=_foldable), phase=PHASE)
def constant_fold(b):
    """An op whose inputs are all constants becomes the constant it computes (with the
    op's reference implementation; random draws are never folded)."""
    node = b["node"]
    with np.errstate(all="ignore"):
        value = node.op.impl(*(constant_value(i) for i in node.inputs), **node.attr)
    return constant(np.asarray(value, dtype=node.dtype))


# -- predicates the guards share --------------------------------------------------------------


def known_finite(t: Tensor) -> bool:
    """Is every element of ``t`` certainly finite (no ±inf, no nan), whatever the inputs?

    True for bool and integer tensors, and for float constants whose values are all
    finite; false for any other float tensor (an input may hold inf or nan).
    """
    if t.dtype not in FLOAT_DTYPES:
        return True
    value = constant_value(t)
    return value is not None and bool(np.isfinite(value).all())


def _in_result_dtype(t: Tensor, node: Tensor) -> Tensor:
    """``t`` cast to ``node``'s dtype: the dtype the matched op computed in."""
    return ew.cast(t, node.dtype)


def _negation_exact(b: Bindings) -> bool:
    """Is the ``neg(y)`` inside ``x ± neg(y)`` exact in the sum's dtype? Always for floats;
    for ints only in the sum's own width (−(−128) wraps in int8, not in int16)."""
    dtype = b["y"].dtype
    return dtype in FLOAT_DTYPES or dtype == promote_types(b["x"].dtype, dtype)


# -- additive and multiplicative identities ---------------------------------------------------

# x + 0 = x, x − 0 = x, x·1 = x, x/1 = x: exact (up to the sign of a zero sum).
rule("add_zero", x + 0, x, phase=PHASE)
rule("sub_zero", x - 0, x, phase=PHASE)
rule("mul_one", x * 1, x, phase=PHASE)
rule("div_one", x / 1, x, phase=PHASE)


@rule("zero_sub", 0 - x, phase=PHASE)
def zero_sub(b: Bindings) -> Tensor:
    """0 − x = −x: exact, but for the sign of a zero result (0 − 0 = +0, −(0) = −0)."""
    return ew.neg(_in_result_dtype(b["x"], b["node"]))


@rule("mul_neg_one", x * -1, phase=PHASE)
def mul_neg_one(b: Bindings) -> Tensor:
    """x·(−1) = −x: exact in IEEE arithmetic (negation only flips the sign bit)."""
    return ew.neg(_in_result_dtype(b["x"], b["node"]))


# −(−x) = x: exact, in wrapping integer arithmetic too.
rule("neg_neg", op.neg(op.neg(x)), x, phase=PHASE)
# x − (−y) = x + y and x + (−y) = x − y: IEEE subtraction is addition of the negation.
rule("sub_neg", x - (-y), x + y, phase=PHASE, when=_negation_exact)
rule("add_neg", x + (-y), x - y, phase=PHASE, when=_negation_exact)

finite = Var("x", where=known_finite)
# x·0 = 0 and x − x = 0 only for finite x (∞·0 and ∞ − ∞ are nan): hence the guard.
rule("mul_zero", finite * 0, 0, phase=PHASE)
rule("sub_self", finite - finite, 0, phase=PHASE)

# ¬¬x = (x ≠ 0): x itself when x is bool; the engine casts any other x to bool.
rule("double_logical_not", op.logical_not(op.logical_not(x)), x, phase=PHASE)

# -- powers by small constants: cheap ops instead of pow --------------------------------------
# NumPy 2.4 computes float32 x**3 about 16× slower than x·x·x (10⁶ elements, measured).
# Each rule computes in the node's dtype; the error is one more rounding per extra product.

# x¹ = x and x⁰ = 1: exact, NumPy included (nan**0 = inf**0 = 1).
rule("pow_one", x**1, x, phase=PHASE)
rule("pow_zero", x**0, 1, phase=PHASE)


@rule("pow_two", x**2, phase=PHASE)
def pow_two(b: Bindings) -> Tensor:
    """x² = square(x): exact (one rounding either way)."""
    return ew.square(_in_result_dtype(b["x"], b["node"]))


@rule("pow_three", x**3, phase=PHASE)
def pow_three(b: Bindings) -> Tensor:
    """x³ = x²·x: two roundings instead of one (within 2 ulp); the same infs and nans."""
    base = _in_result_dtype(b["x"], b["node"])
    return ew.mul(ew.square(base), base)


@rule("pow_four", x**4, phase=PHASE)
def pow_four(b: Bindings) -> Tensor:
    """x⁴ = (x²)²: two roundings instead of one; the same infs and nans."""
    return ew.square(ew.square(_in_result_dtype(b["x"], b["node"])))


def _float_base(b: Bindings) -> Tensor | None:
    """The base of the matched power in its float result dtype; ``None`` for an integer
    power (NumPy rejects ints to negative powers: the error must stay)."""
    node = b["node"]
    return _in_result_dtype(b["x"], node) if node.dtype in FLOAT_DTYPES else None


@rule("pow_neg_one", x**-1, phase=PHASE)
def pow_neg_one(b: Bindings) -> Tensor | None:
    """x⁻¹ = 1/x: exact, signed zeros and infinities included (floats only)."""
    base = _float_base(b)
    return None if base is None else ew.reciprocal(base)


@rule("pow_neg_two", x**-2, phase=PHASE)
def pow_neg_two(b: Bindings) -> Tensor | None:
    """x⁻² = 1/x²: two roundings (x² may be subnormal only where x⁻² is near overflow);
    floats only."""
    base = _float_base(b)
    return None if base is None else ew.reciprocal(ew.square(base))


@rule("pow_half", x**0.5, phase=PHASE)
def pow_half(b: Bindings) -> Tensor | None:
    """x^½ = sqrt(x): exact against NumPy, whose power takes this very path (nan at −∞
    and for x < 0, −0 at −0)."""
    base = _float_base(b)
    return None if base is None else ew.sqrt(base)


# -- casts ------------------------------------------------------------------------------------


def _holds_exactly(source: str, target: str) -> bool:
    """Does every ``source`` value convert to ``target`` and back unchanged?

    ``numpy.can_cast(..., "safe")``, less the casts NumPy calls safe that round:
    int64 and uint64 to float64 (53-bit mantissa).
    """
    if not np.can_cast(source, target, "safe"):
        return False
    src, dst = np.dtype(source), np.dtype(target)
    if src.kind in "iu" and dst.kind == "f":
        magnitude_bits = src.itemsize * 8 - (src.kind == "i")
        return magnitude_bits <= np.finfo(dst).nmant + 1
    return True


@rule("cast_cast", op.cast(op.cast(x, dtype=Var("middle")), dtype=Var("final")), phase=PHASE,
      when=lambda b: _holds_exactly(b["x"].dtype, b["middle"]))
def cast_cast(b: Bindings) -> Tensor:
    """cast(cast(x, a), b) = cast(x, b) when a holds every value of x's dtype exactly
    (float32 → float64 → float32 is x itself)."""
    return ew.cast(b["x"], b["final"])


# -- shape ops --------------------------------------------------------------------------------


def _is_identity(axes: tuple[int, ...]) -> bool:
    return tuple(axes) == tuple(range(len(axes)))


# transpose(x, (0, 1, …)) = x.
rule("transpose_identity", op.transpose(x, axes=Var("axes", where=_is_identity)), x,
     phase=PHASE)


@rule("transpose_transpose", op.transpose(op.transpose(x, axes=Var("p")), axes=Var("q")),
      phase=PHASE)
def transpose_transpose(b: Bindings) -> Tensor:
    """transpose(transpose(x, p), q) = transpose(x, p∘q): output axis i is the inner
    result's axis q[i], which is x's axis p[q[i]]; x itself when that is the identity."""
    p, q = b["p"], b["q"]
    return shape_ops.transpose(b["x"], tuple(p[i] for i in q))


# reshape(x, x.shape) = x; shapes compare dim by dim, symbolic names included.
rule("reshape_same", op.reshape(x, shape=Var("shape")), x, phase=PHASE,
     when=lambda b: b["shape"] == b["x"].shape)


@rule("reshape_reshape", op.reshape(op.reshape(x, shape=Var("inner")), shape=Var("outer")),
      phase=PHASE)
def reshape_reshape(b: Bindings) -> Tensor:
    """reshape(reshape(x, s1), s2) = reshape(x, s2): a reshape only relabels the row-major
    order, and the type rule already checked that s2 has x's size (symbolic too)."""
    return shape_ops.reshape(b["x"], b["outer"])


# broadcast_to(x, x.shape) = x.
rule("broadcast_same", op.broadcast_to(x, shape=Var("shape")), x, phase=PHASE,
     when=lambda b: b["shape"] == b["x"].shape)


@rule("broadcast_broadcast",
      op.broadcast_to(op.broadcast_to(x, shape=Var("inner")), shape=Var("outer")), phase=PHASE)
def broadcast_broadcast(b: Bindings) -> Tensor:
    """broadcast_to(broadcast_to(x, s1), s2) = broadcast_to(x, s2): each dim of x is 1 or
    equals s1's, which is 1 or equals s2's, so x broadcasts to s2 directly."""
    return shape_ops.broadcast_to(b["x"], b["outer"])


def _has_broadcast_operand(node: Tensor) -> bool:
    return (isinstance(node.op, Elementwise) and len(node.inputs) >= 2
            and any(i.op.name == "broadcast_to" for i in node.inputs))


@rule("broadcast_into_elementwise", Var("node", where=_has_broadcast_operand), phase=PHASE)
def broadcast_into_elementwise(b: Bindings) -> Tensor | None:
    """f(broadcast_to(s, S), t) = f(s, t) for an elementwise f when s and t still
    broadcast to f's output shape: elementwise ops broadcast their inputs themselves.
    Each explicit broadcast is dropped only if the node's type stays the same."""
    node = b["node"]
    inputs = list(node.inputs)
    for k, operand in enumerate(inputs):
        if operand.op.name != "broadcast_to":
            continue
        trial = [*inputs[:k], operand.inputs[0], *inputs[k + 1:]]
        try:
            fits = broadcast_shapes(*(t.shape for t in trial)) == node.shape
        except ValueError:
            fits = False
        if fits:
            inputs = trial
    if inputs == list(node.inputs):
        return None
    new = ALL_OPS[node.op.name](*inputs, **node.attr)
    return new if new.type == node.type else None


def _representable(count: int, dtype: str) -> bool:
    """Is ``count`` exactly a value of ``dtype``?"""
    try:
        with np.errstate(over="ignore"):
            return bool(np.asarray(count, dtype) == count)
    except OverflowError:  # an int out of an integer dtype's range
        return False


@rule("sum_of_broadcast",
      op.sum(op.broadcast_to(x, shape=Var("shape")), axis=Var("axis"), keepdims=Var("keepdims")),
      phase=PHASE)
def sum_of_broadcast(b: Bindings) -> Tensor | None:
    """Σ_A broadcast_to(x, S) = x·∏_{a∈A} S[a] when every summed axis a only repeats x
    (x has size 1 there, or no such axis) and its size is static."""
    node, source, shape, axes = b["node"], b["x"], b["shape"], b["axis"]
    aligned = (1,) * (len(shape) - source.ndim) + source.shape  # x's dims under S's
    if any(aligned[a] != 1 or not isinstance(shape[a], int) for a in axes):
        return None
    copies = math.prod(shape[a] for a in axes)
    if copies == 0 or not _representable(copies, node.dtype):
        return None  # the empty sum is 0 but ∞·0 is nan; or the count does not fit the dtype
    kept = aligned if b["keepdims"] else tuple(d for a, d in enumerate(aligned) if a not in axes)
    total = shape_ops.reshape(_in_result_dtype(source, node), kept)
    return total if copies == 1 else ew.mul(total, constant(copies, node.dtype))
