"""Ops the optimizer creates: a composite is one node standing for a subgraph.

``Composite`` ops carry an ``expand(node)`` giving the same value as ordinary
graph (their meaning, and how they are differentiated, exported and drawn).
``fused`` is the kernel the fusion pass makes from a maximal elementwise
subgraph: its body is a scalar-IR ``Program`` over its inputs ``in0, in1, ...``,
iterated over ``shape`` (inputs broadcast to it), optionally followed by a
reduction. Backends compile the body once for the whole chain: the NumPy backend
with ``out=`` buffers, the LLVM backend as one loop.
"""

from __future__ import annotations

import numpy as np

from graphc.ops.base import Op
from graphc.ops.scalar import Program
from graphc.tensor import Tensor, make_node
from graphc.types import TensorType, broadcast_shapes

#: Reductions a fused kernel may end with (the elementwise body is their prologue).
FUSED_REDUCTIONS = ("sum", "max", "min", "prod")


class Composite(Op):
    """An op defined by an equivalent subgraph; differentiated through it."""

    def expand(self, node: Tensor) -> Tensor:
        """The same value as ``node``, built from ``node.inputs`` with primitive ops."""
        raise NotImplementedError(f"{self.name} has no expansion")

    def vjp(self, node: Tensor, g: Tensor) -> tuple[Tensor | None, ...]:
        from graphc.autodiff import vjp

        grads = vjp(self.expand(node), list(node.inputs), g, allow_unused=True)
        return tuple(grads)


def input_name(k: int) -> str:
    """How a fused program names its ``k``-th input."""
    return f"in{k}"


class Fused(Composite):
    """A fused elementwise kernel, optionally ending in a reduction.

    Attributes: ``kernel`` (a readable name, ``fused_mul_add_tanh_3``), ``program``
    (the body), ``shape`` (iteration space; inputs broadcast to it), ``dtype`` (of the
    body's result), ``compute`` (the float dtype constants take in the body) and
    ``reduce``: ``None`` or ``(kind, axes, keepdims)``.
    """

    name = "fused"

    def infer(self, inputs: tuple[TensorType, ...], *, kernel: str, program: Program,
              shape: tuple, dtype: str, compute: str, reduce: tuple | None) -> TensorType:
        if broadcast_shapes(shape, *(t.shape for t in inputs)) != tuple(shape):
            raise ValueError(f"inputs do not broadcast to the kernel's shape {shape}")
        if reduce is None:
            return TensorType(tuple(shape), dtype)
        from graphc.ops.reduce import reduced_shape

        kind, axes, keepdims = reduce
        if kind not in FUSED_REDUCTIONS:
            raise ValueError(f"unknown fused reduction {kind!r}")
        if tuple(sorted(set(axes))) != tuple(axes) or any(not 0 <= a < len(shape) for a in axes):
            raise ValueError(f"reduction axes {axes} must be sorted, distinct, each an axis of "
                             f"the kernel shape {tuple(shape)}")
        return TensorType(reduced_shape(tuple(shape), axes, keepdims), dtype)

    def impl(self, *arrays: np.ndarray, kernel: str, program: Program, shape: tuple,
             dtype: str, compute: str, reduce: tuple | None) -> np.ndarray:
        env = {input_name(k): a for k, a in enumerate(arrays)}
        value = np.asarray(program.evaluate(env, compute), dtype=dtype)
        value = np.broadcast_to(value, shape)
        if reduce is None:
            return np.array(value)
        kind, axes, keepdims = reduce
        return np.asarray(getattr(np, kind)(value, axis=axes, keepdims=keepdims), dtype=dtype)

    def expand(self, node: Tensor) -> Tensor:
        from graphc.ops import elementwise as ew
        from graphc.ops import reduce as reduce_ops
        from graphc.ops import shape as shape_ops

        a = node.attr
        env = {input_name(k): t for k, t in enumerate(node.inputs)}
        body = ew.cast(a["program"].build(env, a["compute"]), a["dtype"])
        if body.shape != tuple(a["shape"]):
            body = shape_ops.broadcast_to(body, a["shape"])
        if a["reduce"] is None:
            return body
        kind, axes, keepdims = a["reduce"]
        return getattr(reduce_ops, kind)(body, axes, keepdims)


FUSED = Fused()


def fused(inputs: tuple[Tensor, ...], *, kernel: str, program: Program, shape: tuple,
          dtype: str, compute: str, reduce: tuple | None = None) -> Tensor:
    """Build a fused-kernel node (the fusion pass does; tests and drawings may too)."""
    return FUSED(*inputs, kernel=kernel, program=program, shape=tuple(shape), dtype=dtype,
                 compute=compute, reduce=reduce)


def fused_unchecked(inputs: tuple[Tensor, ...], *, kernel: str, program: Program, shape: tuple,
                    dtype: str, compute: str, reduce: tuple | None,
                    out_type: TensorType) -> Tensor:
    """``fused(...)`` for the fusion pass, which already knows the node's type: no type
    rule runs (it costs more than the rest of building a kernel on large graphs)."""
    attrs = (("compute", compute), ("dtype", dtype), ("kernel", kernel), ("program", program),
             ("reduce", reduce), ("shape", tuple(shape)))
    return make_node(FUSED, inputs, attrs, out_type)


__all__ = ["Composite", "Fused", "fused", "fused_unchecked", "FUSED_REDUCTIONS", "input_name"]
