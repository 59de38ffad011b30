"""Linear algebra: matmul, dot, outer, tensordot and einsum, with NumPy semantics.

Two primitives carry the math: ``matmul`` on operands of at least two dims
(batch dims broadcast) and ``einsum`` on explicit subscripts without ellipsis.
Everything else (1-D operands, ``dot``, ``tensordot``, implicit and ellipsis
subscripts) is normalised to them at build time, so each derivative is written once:

* C = A @ B:            Ā = C̄ @ Bᵀ,  B̄ = Aᵀ @ C̄  (batch dims summed back by the driver);
* out = einsum(s, …):   the cotangent of operand k is the einsum of ``out``'s
  cotangent with the other operands, onto operand k's subscripts.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.errors import GradientError, GraphcTypeError, user_location
from graphc.ops import elementwise as ew
from graphc.ops import shape as shape_ops
from graphc.ops.base import Op
from graphc.tensor import Tensor, as_tensor, constant
from graphc.types import (
    FLOAT_DTYPES,
    Dim,
    Shape,
    TensorType,
    broadcast_shapes,
    format_shape,
    promote_types,
    shape_size,
)

# -- matmul ------------------------------------------------------------------------------------


def _matmul_shape(a: Shape, b: Shape) -> Shape:
    """(..., m, k) @ (..., k, n) -> (broadcast(...), m, n); both operands at least 2-D."""
    if a[-1] != b[-2]:
        raise ValueError(f"contraction dims differ: {format_shape(a)} @ {format_shape(b)} "
                         f"({a[-1]} vs {b[-2]})")
    try:
        batch = broadcast_shapes(a[:-2], b[:-2])
    except ValueError as e:
        raise ValueError(f"batch dims of {format_shape(a)} and {format_shape(b)} do not "
                         f"broadcast: {e}") from None
    return (*batch, a[-2], b[-1])


def _swap_last(x: Tensor) -> Tensor:
    """Transpose the last two axes (the matrix transpose of a batch of matrices)."""
    axes = (*range(x.ndim - 2), x.ndim - 1, x.ndim - 2)
    return shape_ops.transpose(x, axes)


class MatMul(Op):
    """Batched matrix product of operands with at least two dims each."""

    name = "matmul"

    def infer(self, inputs: tuple[TensorType, ...], **attrs: Any) -> TensorType:
        a, b = inputs
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"the matmul primitive needs 2-D or more, got {a} and {b}")
        return TensorType(_matmul_shape(a.shape, b.shape), promote_types(a.dtype, b.dtype))

    def vjp(self, node: Tensor, g: Tensor) -> tuple[Tensor | None, ...]:
        a, b = node.inputs
        # Both cotangents carry the broadcast batch dims; the driver sums them back.
        return _matmul(g, _swap_last(b)), _matmul(_swap_last(a), g)

    def impl(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.matmul(a, b)


_matmul = MatMul()


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's ``matmul`` semantics (``a @ b``).

    Parameters
    ----------
    a, b : Tensor or array-like
        Operands of at least one dim. A 1-D ``a`` is a row vector, a 1-D ``b`` a
        column vector, and the inserted axis is dropped from the result. Leading
        (batch) dims broadcast; symbolic dims are allowed anywhere.

    Returns
    -------
    Tensor
        Of shape ``broadcast(a.shape[:-2], b.shape[:-2]) + (m, n)``, less the axes
        of 1-D operands.
    """
    a, b = _operands(a, b)
    try:
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("operands must have at least 1 dim (use * for scalars)")
        _matmul_shape(a.shape if a.ndim > 1 else (1, *a.shape),
                      b.shape if b.ndim > 1 else (*b.shape, 1))
    except ValueError as e:
        raise GraphcTypeError("matmul", str(e), (a.type, b.type), user_location()) from None
    a2 = shape_ops.reshape(a, (1, *a.shape)) if a.ndim == 1 else a
    b2 = shape_ops.reshape(b, (*b.shape, 1)) if b.ndim == 1 else b
    out = _matmul(a2, b2)
    if a.ndim == 1 and b.ndim == 1:
        return shape_ops.reshape(out, ())
    if a.ndim == 1:
        return shape_ops.reshape(out, (*out.shape[:-2], out.shape[-1]))
    if b.ndim == 1:
        return shape_ops.reshape(out, out.shape[:-1])
    return out


class AddMM(Op):
    """``beta·c + alpha·(a @ b)`` for matrices: BLAS's GEMM with its accumulator, and
    PyTorch's ``addmm``. The optimizer writes ``w - lr·(xᵀ @ g)`` this way, so a training
    step's weight update happens inside the gradient's product (``passes/specialize``)."""

    name = "addmm"

    def infer(self, inputs: tuple[TensorType, ...], *, alpha: float,
              beta: float) -> TensorType:
        c, a, b = inputs
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"a and b must be matrices, got {format_shape(a.shape)} and "
                             f"{format_shape(b.shape)}")
        out = _matmul_shape(a.shape, b.shape)
        if tuple(c.shape) != out:
            raise ValueError(f"c {format_shape(c.shape)} must have the product's shape "
                             f"{format_shape(out)}")
        if len({c.dtype, a.dtype, b.dtype}) != 1 or c.dtype not in FLOAT_DTYPES:
            raise ValueError(f"c, a and b must have one float dtype, got {c.dtype}, "
                             f"{a.dtype} and {b.dtype}")
        return TensorType(out, c.dtype)

    def vjp(self, node: Tensor, g: Tensor) -> tuple[Tensor | None, ...]:
        c, a, b = node.inputs
        alpha, beta = node.attr["alpha"], node.attr["beta"]
        g_ab = ew.mul(g, constant(np.asarray(alpha, g.dtype)))
        return (ew.mul(g, constant(np.asarray(beta, g.dtype))),
                _matmul(g_ab, _swap_last(b)), _matmul(_swap_last(a), g_ab))

    def impl(self, c: np.ndarray, a: np.ndarray, b: np.ndarray, *, alpha: float,
             beta: float) -> np.ndarray:
        dtype = np.result_type(c, a, b)
        product = dtype.type(alpha) * np.matmul(a, b)
        if beta == 0:  # c is not read at all (as BLAS and torch.addmm do): NaN stays out
            return product.astype(dtype)
        return (dtype.type(beta) * c + product).astype(dtype)


ADDMM = AddMM()


def addmm(c: Any, a: Any, b: Any, *, beta: float = 1.0, alpha: float = 1.0) -> Tensor:
    """``beta·c + alpha·(a @ b)`` for matrices ``a`` (m, k), ``b`` (k, n) and ``c`` (m, n)
    of one float dtype, as ``torch.addmm(c, a, b, beta=, alpha=)``: one GEMM that adds
    into ``c``'s values instead of a product followed by a pass over its output. With
    ``beta=0``, ``c`` is not read (NaN or inf in it do not reach the result)."""
    return ADDMM(c, a, b, alpha=float(alpha), beta=float(beta))


def _operands(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Tensors for two operands; a Python scalar takes the dtype of the other."""
    if isinstance(b, Tensor) and not isinstance(a, Tensor):
        return as_tensor(a, b), b
    a = as_tensor(a)
    return a, as_tensor(b, a)


def dot(a: Any, b: Any) -> Tensor:
    """``numpy.dot``: inner product of vectors, matrix product of matrices.

    A 0-D operand multiplies elementwise; for N-D operands the product sums the
    last axis of ``a`` against the second-to-last of ``b`` (the last, if ``b`` is
    1-D), giving ``a.shape[:-1] + b.shape[:-2] + b.shape[-1:]``.
    """
    a, b = _operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return ew.mul(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, ([a.ndim - 1], [max(b.ndim - 2, 0)]))


def outer(a: Any, b: Any) -> Tensor:
    """``numpy.outer``: ``out[i, j] = a.ravel()[i] * b.ravel()[j]``."""
    a, b = _operands(a, b)
    column = shape_ops.reshape(a, (shape_size(a.shape), 1))
    row = shape_ops.reshape(b, (1, shape_size(b.shape)))
    return ew.mul(column, row)


def tensordot(a: Any, b: Any, axes: int | Sequence[Any] = 2) -> Tensor:
    """``numpy.tensordot``: sum products over ``axes`` of ``a`` and ``b``.

    ``axes`` is an int N (the last N axes of ``a`` against the first N of ``b``)
    or a pair of axis sequences. The result has ``a``'s free axes, then ``b``'s.
    """
    a, b = _operands(a, b)
    a_axes, b_axes = _tensordot_axes(axes, a.ndim, b.ndim)
    letters = iter(string.ascii_letters)
    a_sub = [next(letters) for _ in range(a.ndim)]
    b_sub = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(a_axes, b_axes, strict=True):
        b_sub[j] = a_sub[i]
    free = [c for k, c in enumerate(a_sub) if k not in a_axes]
    free += [c for k, c in enumerate(b_sub) if k not in b_axes]
    return einsum(f"{''.join(a_sub)},{''.join(b_sub)}->{''.join(free)}", a, b)


def _tensordot_axes(axes: int | Sequence[Any], a_ndim: int,
                    b_ndim: int) -> tuple[list[int], list[int]]:
    if isinstance(axes, int):
        if not 0 <= axes <= min(a_ndim, b_ndim):
            raise ValueError(f"tensordot: axes={axes} for operands of {a_ndim} and {b_ndim} dims")
        return list(range(a_ndim - axes, a_ndim)), list(range(axes))
    a_axes, b_axes = ([x] if isinstance(x, int) else list(x) for x in axes)
    if len(a_axes) != len(b_axes):
        raise ValueError(f"tensordot: {a_axes} and {b_axes} name different numbers of axes")
    return [i % a_ndim for i in a_axes], [j % b_ndim for j in b_axes]


# -- einsum ------------------------------------------------------------------------------------


def _parse_explicit(subscripts: str) -> tuple[list[str], str]:
    """Split normalised subscripts ``"ij,jk->ik"`` into input terms and the output term."""
    lhs, out = subscripts.split("->")
    return lhs.split(","), out


def _label_sizes(terms: list[str], shapes: list[Shape]) -> dict[str, Dim]:
    """The size of each label: equal across operands, or 1 (which broadcasts)."""
    sizes: dict[str, Dim] = {}
    for term, shape in zip(terms, shapes, strict=True):
        if len(term) != len(shape):
            raise ValueError(f"subscripts {term!r} name {len(term)} dims of an operand of shape "
                             f"{format_shape(shape)}")
        for label, dim in zip(term, shape, strict=True):
            known = sizes.get(label, 1)
            if dim != known and known != 1 and dim != 1:
                raise ValueError(f"label {label!r} has sizes {known} and {dim}")
            sizes[label] = dim if known == 1 else known
    return sizes


class Einsum(Op):
    """Einstein summation over explicit subscripts ``"ij,jk->ik"`` (no ellipsis)."""

    name = "einsum"

    def infer(self, inputs: tuple[TensorType, ...], *, subscripts: str) -> TensorType:
        terms, out = _parse_explicit(subscripts)
        if len(terms) != len(inputs):
            raise ValueError(f"subscripts {subscripts!r} name {len(terms)} operands, "
                             f"got {len(inputs)}")
        sizes = _label_sizes(terms, [t.shape for t in inputs])
        missing = [c for c in out if c not in sizes]
        if missing or len(set(out)) != len(out):
            raise ValueError(f"output subscripts {out!r} must be distinct input labels")
        return TensorType(tuple(sizes[c] for c in out), promote_types(*(t.dtype for t in inputs)))

    def vjp(self, node: Tensor, g: Tensor) -> tuple[Tensor | None, ...]:
        terms, out = _parse_explicit(node.attr["subscripts"])
        return tuple(_einsum_cotangent(node.inputs, terms, out, g, k) for k in range(len(terms)))

    def impl(self, *arrays: np.ndarray, subscripts: str) -> np.ndarray:
        # optimize=True contracts pairwise through BLAS (tensordot) where it can.
        return np.asarray(np.einsum(subscripts, *arrays, optimize=len(arrays) > 1))


_einsum = Einsum()


def _einsum_cotangent(operands: tuple[Tensor, ...], terms: list[str], out: str, g: Tensor,
                      k: int) -> Tensor:
    """The cotangent of operand ``k``: contract ``g`` with the other operands onto its labels.

    A label repeated in operand k (a diagonal, ``"ii->i"``) is renamed and tied back by
    an identity matrix; labels found only in operand k (summed there) are broadcast back.
    """
    target = terms[k]
    others = [(t, x) for j, (t, x) in enumerate(zip(terms, operands, strict=True)) if j != k]
    sources = [(out, g), *others]
    used = set("".join(terms)) | set(out)
    fresh = (c for c in string.ascii_letters if c not in used)
    unique = ""
    for axis, label in enumerate(target):
        if label in unique:
            renamed = next(fresh)
            sources.append((label + renamed, _identity(operands[k].shape[axis], g.dtype)))
            label = renamed
        unique += label
    available = set("".join(t for t, _ in sources))
    result_labels = "".join(c for c in unique if c in available)
    subscripts = ",".join(t for t, _ in sources) + "->" + result_labels
    result = _einsum(*(x for _, x in sources), subscripts=subscripts)
    shape = tuple(result.shape[result_labels.index(c)] if c in available else 1 for c in unique)
    result = shape_ops.reshape(result, shape)
    # Summed-only labels broadcast to the operand's size; size-1 operand dims stay to the
    # driver, which sums the cotangent back over them.
    return shape_ops.broadcast_to(result, broadcast_shapes(shape, operands[k].shape))


def _identity(n: Dim, dtype: str) -> Tensor:
    if not isinstance(n, int):
        raise GradientError(f"einsum: the gradient of a repeated label needs a static size, "
                            f"got {n}")
    return constant(np.eye(n, dtype=dtype))


def _normalize_subscripts(subscripts: str, ndims: list[int]) -> str:
    """NumPy subscripts (implicit output, ellipsis) to explicit ones without ellipsis."""
    subscripts = subscripts.replace(" ", "")
    lhs, arrow, out = subscripts.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"subscripts {subscripts!r} name {len(terms)} operands, got {len(ndims)}")
    for term in [*terms, out]:
        letters = term.replace("...", "", 1)
        if not all(c in string.ascii_letters for c in letters):
            raise ValueError(f"subscripts {subscripts!r}: use letters and at most one '...' "
                             "per operand")
    ellipsis_dims = [nd - len(t.replace("...", "")) if "..." in t else 0
                     for t, nd in zip(terms, ndims, strict=True)]
    if min(ellipsis_dims, default=0) < 0:
        raise ValueError(f"subscripts {subscripts!r} name more dims than operands of "
                         f"{ndims} dims have")
    spare = [c for c in string.ascii_letters if c not in subscripts]
    width = max(ellipsis_dims, default=0)
    broadcast = "".join(spare[:width])
    terms = [t.replace("...", broadcast[width - e:]) for t, e in zip(terms, ellipsis_dims,
                                                                       strict=True)]
    for term, nd in zip(terms, ndims, strict=True):
        if len(term) != nd:
            raise ValueError(f"subscripts {term!r} name {len(term)} dims of an operand of "
                             f"{nd} dims")
    if not arrow:
        counts = "".join(terms)
        out = broadcast + "".join(sorted(c for c in set(counts) - set(broadcast)
                                         if counts.count(c) == 1))
    elif "..." in out:
        out = out.replace("...", broadcast)
    elif width:
        raise ValueError(f"subscripts {subscripts!r}: operands have dims under '...' but the "
                         "output names no '...'")
    return ",".join(terms) + "->" + out


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation, as ``numpy.einsum``.

    Parameters
    ----------
    subscripts : str
        One term of letters per operand, comma-separated, optionally ``->`` and the
        output's letters (implicit mode without it: the letters used once, in
        alphabetical order). A ``...`` stands for broadcast leading dims. A label
        repeated within a term takes a diagonal. Labels of size 1 broadcast.
    *operands : Tensor or array-like

    Returns
    -------
    Tensor
        Of the output labels' sizes and the operands' promoted dtype.
    """
    tensors = [as_tensor(x) for x in operands]
    try:
        explicit = _normalize_subscripts(subscripts, [t.ndim for t in tensors])
    except ValueError as e:
        raise GraphcTypeError("einsum", str(e), tuple(t.type for t in tensors),
                              user_location()) from None
    terms, out = _parse_explicit(explicit)
    if len(tensors) == 1 and sorted(terms[0]) == sorted(out) and len(set(out)) == len(out):
        return shape_ops.transpose(tensors[0], tuple(terms[0].index(c) for c in out))
    return _einsum(*tensors, subscripts=explicit)


__all__ = ["matmul", "addmm", "dot", "outer", "tensordot", "einsum"]
