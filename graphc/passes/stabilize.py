"""Stabilize: formulas that overflow or lose precision become their stable forms.

Each rule replaces an expression by one op computing the same value without an
intermediate that overflows (``exp(1000)``), rounds to 0 or 1 before a ``log``
(a softmax or sigmoid probability of a large logit) or cancels (``1 + x`` for tiny
``x``). Where the original is finite the two agree to rounding; where it is inf or
nan, or has lost its digits, the new form gives the value the math means.

Losses written on probabilities become losses from logits through these rules:

* ``-sum(t * log(softmax(z)))`` and ``log(softmax(z))`` read at label indices become
  ``-sum(t * log_softmax(z))`` and ``log_softmax(z)[label]``: ``cross_entropy`` from
  logits, as ``gx.cross_entropy`` writes it;
* ``binary_cross_entropy(sigmoid(z), t)`` takes ``log(p)`` and ``log1p(-p)``, which
  become ``logsigmoid(z)`` and ``logsigmoid(-z)``: ``binary_cross_entropy_with_logits``
  wherever each −log term is below the clamp at 100 that ``binary_cross_entropy``
  applies (as PyTorch's does; the clamp is part of that loss, so it stays).

Gradients taken before optimization differentiate the naive forward; the last two
rules (``cancel_reciprocal``, ``exp_over_sum_exp``) turn them into the gradients of
the stable forms (``ḡ − softmax·Σḡ``, ``ḡ·(1 − σ(z))``, ``ḡ·softmax(z)``).

``log σ(x) = −softplus(−x)``; the ``logsigmoid`` op is exactly that,
``min(x, 0) − log1p(e^(−|x|))``, in one node and without softplus's threshold (which
returns x itself above 20, an absolute error up to 2e-9), so the rules use it.
"""

from __future__ import annotations

from graphc.ops import activations as act
from graphc.ops import elementwise as ew
from graphc.ops import nn, reduce
from graphc.ops import shape as shape_ops
from graphc.ops.reduce import reduced_shape
from graphc.passes.engine import rule
from graphc.passes.pattern import Var, is_constant_equal_to, op
from graphc.tensor import Tensor, constant
from graphc.types import FLOAT_DTYPES

x = Var("x")
axis = Var("axis")
keepdims = Var("keepdims")

# log(softmax(x)) = x − logsumexp(x): never forms probabilities that round to 0.
rule("log_softmax", op.log(op.softmax(x, axis=axis)), op.log_softmax(x, axis=axis),
     phase="stabilize")


@rule("logsumexp", op.log(op.sum(op.exp(x), axis=axis, keepdims=keepdims)), phase="stabilize")
def logsumexp(b):
    """log Σ exp(x) = m + log Σ exp(x − m) with m = max x: no exp overflows or underflows
    all together (integer x is summed in float64, as exp(x) is)."""
    return reduce.logsumexp(b["x"], b["axis"], b["keepdims"])


@rule("log1p", op.log(1 + x), phase="stabilize")
def log1p(b):
    """log(1 + x) = log1p(x), exact for tiny x (where 1 + x rounds to 1). x is first cast
    to the sum's dtype, so a float32 x added to a float64 one stays float64."""
    one_plus_x = b["node"].inputs[0]
    return ew.log1p(ew.cast(b["x"], one_plus_x.dtype))


# exp(x) − 1 = expm1(x), exact for tiny x (where exp(x) rounds to 1).
rule("expm1", op.exp(x) - 1, op.expm1(x), phase="stabilize")


@rule("log_sigmoid", op.log(op.sigmoid(x)), phase="stabilize")
def log_sigmoid(b):
    """log σ(x) = −softplus(−x) = logsigmoid(x): σ(x) rounds to 0 for x ≪ 0 (log → −inf)."""
    return act.logsigmoid(b["x"])


@rule("log_one_minus_sigmoid", op.log(1 - op.sigmoid(x)), phase="stabilize")
def log_one_minus_sigmoid(b):
    """log(1 − σ(x)) = log σ(−x) = −softplus(x): σ(x) rounds to 1 for x ≫ 0."""
    return act.logsigmoid(ew.neg(b["x"]))


@rule("log1p_neg_sigmoid", op.log1p(-op.sigmoid(x)), phase="stabilize")
def log1p_neg_sigmoid(b):
    """log1p(−σ(x)) = log(1 − σ(x)) = −softplus(x), the form ``binary_cross_entropy``
    builds for log(1 − p)."""
    return act.logsigmoid(ew.neg(b["x"]))


# After the sigmoid rules, so that log(1 − σ(x)) takes the one-step rule above.
@rule("log_one_minus", op.log(1 - x), phase="stabilize")
def log_one_minus(b):
    """log(1 − x) = log1p(−x), exact for tiny x (where 1 − x rounds to 1); x is first cast
    to the difference's dtype, as for ``log1p``."""
    one_minus_x = b["node"].inputs[0]
    return ew.log1p(ew.neg(ew.cast(b["x"], one_minus_x.dtype)))


# -- gradients of the naive forms ----------------------------------------------------------------
# A gradient taken before optimization differentiates the naive forward: log(s) gives
# ḡ·(1/s), and the derivative of s multiplies by s again (softmax: s·(ḡ/s − Σ(ḡ/s)·s);
# sigmoid: (ḡ/σ)·σ(1 − σ)). Where s rounds to 0 that is 0·∞ = nan even though the forward
# is now stable. These rules cancel the reciprocal against its own factor, which the
# math allows wherever s > 0 in exact arithmetic: there s is 0 (or ∞) only by rounding,
# and the cancelled form is the limit the rounding lost.


def _positive(t: Tensor) -> bool:
    """Is ``t`` > 0 in exact arithmetic, whatever its inputs? (softmax, σ, e^x, and
    1 − σ(x) = σ(−x): each is 0 or ∞ in floating point only by rounding.)"""
    if t.op.name in ("softmax", "sigmoid", "sigmoid_c", "exp"):
        return True
    return (t.op.name == "sub" and is_constant_equal_to(t.inputs[0], 1)
            and t.inputs[1].op.name in ("sigmoid", "sigmoid_c"))


Factor = tuple[Tensor, int]  # (t, +1) multiplies by t, (t, −1) divides by it

#: How many nested products (or sums) the gradient rules look through. The backward
#: forms they fix are two levels deep; the bound keeps a rule's cost per node constant
#: (a long chain of products is not flattened again at every one of its nodes).
SEARCH_DEPTH = 3


def _factors(t: Tensor, dtype: str, depth: int = SEARCH_DEPTH) -> list[Factor]:
    """``t`` as a product of factors, through mul, div and reciprocal nodes of ``dtype``
    up to ``depth`` levels down."""
    if t.dtype == dtype and depth > 0:
        if t.op.name == "mul":
            return (_factors(t.inputs[0], dtype, depth - 1)
                    + _factors(t.inputs[1], dtype, depth - 1))
        if t.op.name == "div":
            return _factors(t.inputs[0], dtype, depth - 1) + [(t.inputs[1], -1)]
        if t.op.name == "reciprocal":
            return [(t.inputs[0], -1)]
    return [(t, 1)]


def _terms(t: Tensor, dtype: str, sign: int = 1,
           depth: int = SEARCH_DEPTH) -> list[tuple[int, Tensor]]:
    """``t`` as a signed sum of terms, through add, sub and neg nodes of ``dtype`` up to
    ``depth`` levels down."""
    if t.dtype == dtype and depth > 0:
        if t.op.name == "add":
            return (_terms(t.inputs[0], dtype, sign, depth - 1)
                    + _terms(t.inputs[1], dtype, sign, depth - 1))
        if t.op.name == "sub":
            return (_terms(t.inputs[0], dtype, sign, depth - 1)
                    + _terms(t.inputs[1], dtype, -sign, depth - 1))
        if t.op.name == "neg":
            return _terms(t.inputs[0], dtype, -sign, depth - 1)
    return [(sign, t)]


def _cancel(factors: list[Factor]) -> list[Factor] | None:
    """``factors`` less every pair (s, +1), (s, −1) with s positive; ``None`` if none."""
    remaining = list(factors)
    for t, power in factors:
        if power == -1 and _positive(t) and (t, 1) in remaining and (t, -1) in remaining:
            remaining.remove((t, 1))
            remaining.remove((t, -1))
    return None if len(remaining) == len(factors) else remaining


def _product(factors: list[Factor], like: Tensor) -> Tensor:
    numerator = [t for t, power in factors if power == 1]
    result = numerator[0] if numerator else constant(1, like.dtype)
    for t in numerator[1:]:
        result = ew.mul(result, t)
    for t, power in factors:
        if power == -1:
            result = ew.mul(result, ew.reciprocal(t))  # the reciprocal node the graph has
    return result


@rule("cancel_reciprocal", op.mul(Var("left"), Var("right")), phase="stabilize")
def cancel_reciprocal(b):
    """a·(1/s)·s·c → a·c, and (Σ ±aᵢ·(1/sᵢ) ± d)·s₁⋯sₙ·c → Σ ±aᵢ·c·∏_{j≠i} sⱼ ± d·s₁⋯sₙ·c
    (distributed so that each reciprocal meets its factor), for s > 0 in exact arithmetic.
    Exact up to rounding wherever the original is finite; finite where it is 0·∞."""
    node = b["node"]
    if node.dtype not in FLOAT_DTYPES:
        return None
    dtype = node.dtype
    cancelled = _cancel(_factors(node, dtype))
    if cancelled is not None:
        return _product(cancelled, node)
    for summed, other in ((b["left"], b["right"]), (b["right"], b["left"])):
        if summed.op.name not in ("add", "sub", "neg") or summed.dtype != dtype:
            continue
        scale = _factors(other, dtype)
        if not any(_positive(t) for t, power in scale if power == 1):
            continue
        terms, any_cancelled = [], False
        for sign, term in _terms(summed, dtype):
            factors = _factors(term, dtype) + scale
            reduced = _cancel(factors)
            any_cancelled |= reduced is not None
            terms.append((sign, factors if reduced is None else reduced))
        if any_cancelled:
            products = [(sign, _product(factors, node)) for sign, factors in terms]
            total = products[0][1] if products[0][0] == 1 else ew.neg(products[0][1])
            for sign, term in products[1:]:
                total = ew.add(total, term) if sign == 1 else ew.sub(total, term)
            return total
    return None


def _peel_axes(w: Tensor, z: Tensor) -> tuple[Tensor, Tensor | None]:
    """``w`` without an outer ``broadcast_to`` to z's shape, and the ``reshape`` under it
    (or ``None``)."""
    if w.op.name == "broadcast_to" and w.shape == z.shape:
        w = w.inputs[0]
    if w.op.name == "reshape":
        return w.inputs[0], w
    return w, None


@rule("exp_over_sum_exp", op.mul(Var("w"), op.exp(x)), phase="stabilize")
def exp_over_sum_exp(b):
    """e^z · a/Σe^z → a · softmax(z): the gradient of log Σ e^z taken before the forward
    became ``logsumexp``; e^z overflows (∞/∞ = nan) where softmax does not."""
    z = b["x"]
    e = next(i for i in b["node"].inputs if i.op.name == "exp" and i.inputs == (z,))
    inner, reshape = _peel_axes(b["w"], z)
    factors = _factors(inner, b["node"].dtype)
    total = next((t for t, power in factors if power == -1 and t.op.name == "sum"
                  and t.inputs == (e,)), None)
    if total is None:
        return None
    axis, keepdims = total.attr["axis"], total.attr["keepdims"]
    if (reshape is None) != keepdims or (
            reshape is not None and reshape.shape != reduced_shape(z.shape, axis, True)):
        return None  # the reduced axes must come back exactly where they were summed
    rest = [f for f in factors if f != (total, -1)]
    if not rest:
        return nn.softmax(z, axis)
    scale = shape_ops.broadcast_to(_product(rest, inner), inner.shape)
    if reshape is not None:
        scale = shape_ops.reshape(scale, reshape.shape)
    return ew.mul(scale, nn.softmax(z, axis))


__all__: list[str] = []
