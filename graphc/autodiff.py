"""Reverse-mode differentiation over the DAG; the result is more graph.

The driver walks from the output back to the inputs in reverse topological
order, asks each op for its VJP, sums cotangents over fan-out, and sums each
cotangent back to its input's shape where the op broadcast it. Op rules never
unbroadcast, cast, or check dtypes: that happens here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphc.errors import GradientError
from graphc.graph import toposort
from graphc.ops import elementwise as ew
from graphc.ops import reduce
from graphc.ops import shape as shape_ops
from graphc.tensor import Tensor, as_tensor
from graphc.types import FLOAT_DTYPES, Shape, format_shape


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
