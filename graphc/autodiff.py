"""Reverse-mode differentiation over the DAG; the result is more graph.

The driver walks from the output back to the inputs in reverse topological
order, asks each op for its VJP, sums cotangents over fan-out, and sums each
cotangent back to its input's shape where the op broadcast it. Op rules never
unbroadcast, cast, or check dtypes: that happens here, once.

Everything else is built on that one driver: ``jvp`` transposes reverse mode
(so ops need no forward rules), ``jacobian`` stacks one VJP per output element,
``hessian`` is the Jacobian of the gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.errors import GradientError, GraphcTypeError
from graphc.graph import toposort
from graphc.ops import elementwise as ew
from graphc.ops import random, reduce
from graphc.ops import shape as shape_ops
from graphc.tensor import Tensor, as_tensor, constant, make_node
from graphc.types import FLOAT_DTYPES, Shape, format_shape, is_static


def unbroadcast(g: Tensor, shape: Shape) -> Tensor:
    """Sum ``g`` over the axes along which a value of ``shape`` was broadcast to ``g.shape``."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    return shape_ops.reshape(reduce.sum(g, axes), shape) if axes else shape_ops.reshape(g, shape)


def backprop(outputs: Sequence[Tensor], cotangents: Sequence[Tensor],
             wrt: Sequence[Tensor]) -> dict[Tensor, Tensor]:
    """Cotangents of every node on a path from ``wrt`` to ``outputs``.

    ``cotangents[i]`` seeds ``outputs[i]``. Only nodes that depend on some ``wrt``
    are visited, so the cost is linear in the part of the graph that matters.
    """
    order = toposort(outputs)
    targets = set(wrt)
    relevant: set[Tensor] = set()
    for node in order:
        if node in targets or any(i in relevant for i in node.inputs):
            relevant.add(node)

    grads: dict[Tensor, Tensor] = {}
    for out, ct in zip(outputs, cotangents, strict=True):
        _accumulate(grads, out, ct)
    for node in reversed(order):
        g = grads.get(node)
        if g is None or not node.op.differentiable or not any(i in relevant for i in node.inputs):
            continue
        for inp, gi in zip(node.inputs, node.op.vjp(node, g), strict=True):
            if gi is not None and inp in relevant and inp.dtype in FLOAT_DTYPES:
                _accumulate(grads, inp, gi)
    return grads


def _accumulate(grads: dict[Tensor, Tensor], node: Tensor, g: Tensor) -> None:
    g = ew.cast(unbroadcast(g, node.shape), node.dtype)
    grads[node] = ew.add(grads[node], g) if node in grads else g


def grad(y: Tensor, wrt: Tensor | Sequence[Tensor], *, allow_unused: bool = False) -> Any:
    """The gradient of the scalar ``y`` with respect to each of ``wrt``, as graph nodes.

    Parameters
    ----------
    y : Tensor
        A scalar (shape ``()``) float tensor.
    wrt : Tensor or sequence of Tensor
        What to differentiate with respect to: inputs, params or intermediate nodes.
    allow_unused : bool
        Return zeros for a ``wrt`` that ``y`` does not depend on, instead of raising.

    Returns
    -------
    Tensor or list of Tensor
        One gradient per ``wrt``, each of its shape and dtype; a single tensor when
        ``wrt`` is a single tensor.
    """
    y = as_tensor(y)
    if y.shape != ():
        raise GradientError(f"grad needs a scalar output, got shape {format_shape(y.shape)}; "
                            "sum it first, or use gx.vjp with a cotangent")
    return vjp(y, wrt, ew.ones_like(y), allow_unused=allow_unused)


def vjp(y: Tensor, wrt: Tensor | Sequence[Tensor], cotangent: Any, *,
        allow_unused: bool = False) -> Any:
    """Vector-Jacobian product ``cotangent · ∂y/∂wrt`` as graph nodes (reverse mode)."""
    single = isinstance(wrt, Tensor)
    wrt_list = [wrt] if single else list(wrt)
    y = as_tensor(y)
    if y.dtype not in FLOAT_DTYPES:
        raise GradientError(f"cannot differentiate {y!r}: its dtype {y.dtype} is not float")
    for w in wrt_list:
        if not isinstance(w, Tensor):
            raise GradientError(f"wrt must hold tensors, got {w!r}")
        if w.dtype not in FLOAT_DTYPES:
            raise GradientError(f"{w!r} has integer dtype {w.dtype}: integers get no gradient")
    ct = ew.cast(shape_ops.broadcast_to(as_tensor(cotangent, y), y.shape), y.dtype)
    grads = backprop([y], [ct], wrt_list)
    result = []
    for w in wrt_list:
        if w in grads:
            result.append(grads[w])
        elif allow_unused:
            result.append(ew.zeros_like(w))
        else:
            raise GradientError(f"{y!r} does not depend on {w!r}; "
                                "pass allow_unused=True to get zeros")
    return result[0] if single else result


# -- forward mode, Jacobians, Hessians: built on the same reverse-mode machinery --------------

def jvp(y: Tensor, wrt: Tensor | Sequence[Tensor], tangents: Any, *,
        allow_unused: bool = False) -> Tensor:
    """Jacobian-vector product ``Σ_k ∂y/∂wrt_k · v_k`` (forward mode) as graph nodes.

    Built by transposing reverse mode rather than by a second set of forward rules
    (the "transpose trick", as in JAX's linear transposition): with a dummy
    cotangent ``u`` of ``y``'s shape, ``vjp(y, wrt, u) = uᵀJ`` is linear in ``u``, so

        s(u) = Σ_k ⟨(uᵀJ)_k, v_k⟩ = uᵀ (J v)    and    ∂s/∂u = J v.

    The dummy is a draw with a fresh key: unique, so hash-consing cannot confuse it
    with another node, and of ``y``'s runtime shape, derived dims included. Every VJP
    rule is linear in its cotangent, so the result does not depend on ``u`` and the
    dummy drops out of the graph. If a rule ever keeps ``u`` in the graph (a node
    that reads only its shape, or a rule written non-linearly in ``g``), ``u`` is
    replaced by zeros: the derivative of a function linear in ``u`` is the same at
    every ``u``.

    Parameters
    ----------
    y : Tensor
        A float tensor of any shape (symbolic dims allowed).
    wrt : Tensor or sequence of Tensor
        What ``y`` is differentiated with respect to (inputs, params, intermediates).
    tangents : array-like or Tensor, or a sequence of them
        One tangent ``v_k`` per ``wrt_k``, broadcastable to its shape; cast to its dtype.
    allow_unused : bool
        Treat a ``wrt`` that ``y`` does not depend on as contributing zero instead
        of raising ``GradientError``.

    Returns
    -------
    Tensor
        ``J v``, of ``y``'s shape and dtype.
    """
    wrt_list, tangent_list = _pair_tangents(wrt, tangents)
    y = as_tensor(y)
    u = random.normal_like(y, key=random.fresh_key(), dtype=y.dtype)
    pullbacks = vjp(y, wrt_list, u, allow_unused=allow_unused)
    y_dot = vjp(_inner_products(pullbacks, tangent_list), u, 1.0, allow_unused=True)
    if u in toposort([y_dot]):
        y_dot = substitute([y_dot], {u: ew.zeros_like(y)})[0]
    return y_dot


def _pair_tangents(wrt: Tensor | Sequence[Tensor],
                   tangents: Any) -> tuple[list[Tensor], list[Tensor]]:
    """``wrt`` as a list, and one tangent tensor of each one's shape and dtype."""
    single = isinstance(wrt, Tensor)
    wrt_list = [wrt] if single else list(wrt)
    tangent_list = [tangents] if single else list(tangents)
    if not wrt_list:
        raise GradientError("jvp needs at least one tensor to differentiate with respect to")
    if len(tangent_list) != len(wrt_list):
        raise GradientError(f"jvp needs one tangent per wrt: got {len(tangent_list)} tangents "
                            f"for {len(wrt_list)} tensors")
    return wrt_list, [_as_tangent(v, w) for v, w in zip(tangent_list, wrt_list, strict=True)]


def _as_tangent(v: Any, w: Tensor) -> Tensor:
    v = as_tensor(v, w)
    try:
        return ew.cast(shape_ops.broadcast_to(v, w.shape), w.dtype)
    except GraphcTypeError:
        raise GradientError(f"a tangent of shape {format_shape(v.shape)} does not fit "
                            f"{w!r}") from None


def _inner_products(xs: Sequence[Tensor], vs: Sequence[Tensor]) -> Tensor:
    """Σ_k ⟨x_k, v_k⟩, a scalar."""
    total = None
    for x, v in zip(xs, vs, strict=True):
        term = reduce.sum(ew.mul(x, v))
        total = term if total is None else ew.add(total, term)
    return total


def substitute(outputs: Sequence[Tensor], mapping: dict[Tensor, Tensor]) -> list[Tensor]:
    """Rebuild ``outputs`` with each key of ``mapping`` replaced by its value (same types)."""
    for old, new in mapping.items():
        if old.type != new.type:
            raise ValueError(f"cannot substitute {new!r} for {old!r}: the types differ")
    new_of: dict[Tensor, Tensor] = dict(mapping)
    for node in toposort(outputs):
        if node in new_of or not node.inputs:
            continue
        inputs = tuple(new_of.get(i, i) for i in node.inputs)
        if inputs != node.inputs:
            new_of[node] = make_node(node.op, inputs, node.attrs, node.type)
    return [new_of.get(o, o) for o in outputs]


def jacobian(y: Tensor, x: Tensor | Sequence[Tensor], *, allow_unused: bool = False) -> Any:
    """The full Jacobian ``∂y/∂x`` of shape ``y.shape + x.shape``, as graph nodes.

    Built from one reverse pass per element of ``y``: row ``i`` is the VJP with the
    one-hot cotangent ``e_i``, and the rows are stacked. The primal graph is shared
    by all rows (hash-consing), so the cost is ``y.size`` backward passes. ``y``'s
    shape must be static; ``x``'s may be symbolic.

    Parameters
    ----------
    y : Tensor
        A float tensor with a static shape.
    x : Tensor or sequence of Tensor
        What to differentiate with respect to.
    allow_unused : bool
        Return zeros for an ``x`` that ``y`` does not depend on, instead of raising.

    Returns
    -------
    Tensor or list of Tensor
        ``J[i..., j...] = ∂y[i...]/∂x[j...]``, of ``x``'s dtype; a list for a list ``x``.
    """
    y = as_tensor(y)
    single = isinstance(x, Tensor)
    xs = [x] if single else list(x)
    if not is_static(y.shape):
        raise GradientError(f"jacobian needs a static output shape, got {format_shape(y.shape)}"
                            "; use gx.vjp or gx.jvp for symbolic shapes")
    rows = [vjp(y, xs, constant(e, y.dtype), allow_unused=allow_unused)
            for e in _one_hots(y.shape)]
    result = [_stack_rows([r[k] for r in rows], y.shape, xk) for k, xk in enumerate(xs)]
    return result[0] if single else result


def _one_hots(shape: tuple[int, ...]) -> list[np.ndarray]:
    """The unit arrays ``e_i`` of ``shape``, in C order."""
    eye = np.eye(math.prod(shape))
    return [row.reshape(shape) for row in eye]


def _stack_rows(rows: list[Tensor], y_shape: tuple[int, ...], x: Tensor) -> Tensor:
    """``J`` of shape ``y_shape + x.shape`` with ``J[i] = rows[i]`` (``i`` in C order)."""
    shape = y_shape + x.shape
    if not rows:
        return shape_ops.broadcast_to(constant(0, x.dtype), shape)
    return shape_ops.reshape(shape_ops.stack(rows), shape)


def hessian(y: Tensor, x: Tensor, *, allow_unused: bool = False) -> Tensor:
    """The Hessian ``∂²y/∂x²`` of the scalar ``y``, of shape ``x.shape + x.shape``.

    The Jacobian of the gradient. A ``y`` linear in ``x`` has a zero Hessian (not an
    error); ``allow_unused`` is about ``y`` not depending on ``x`` at all.
    """
    g = grad(y, x, allow_unused=allow_unused)
    return jacobian(g, x, allow_unused=True)
