"""Fused kernels drawn open: a dashed cluster holding the kernel's scalar program.

A ``fused`` node (``graphc.ops.fused``) computes a straight-line scalar program over
its inputs ``in0, in1, ...`` (then, optionally, a reduction). It is drawn as a cluster
labelled with the kernel's name; each instruction is a small node, the inputs enter
the instructions that read them, and the last instruction feeds the node itself (the
kernel's result, where its value and gradient are shown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from graphc.ops.fused import input_name
from graphc.ops.scalar import Program
from graphc.tensor import Tensor
from graphc.viz import style


@dataclass(frozen=True)
class Source:
    """Where input ``k`` of a kernel comes from: a drawn item (``id``), a constant written
    into the instructions (``constant``), or nothing drawn (both ``None``)."""

    id: str | None = None
    constant: str | None = None
    tensor: Tensor | None = None


@dataclass(frozen=True)
class Edge:
    """An edge to draw; ``tensors``: the data it carries (labelled with their types), if any.
    Several tensors flow along one edge into or out of a collapsed box."""

    tail: str
    head: str
    attrs: dict[str, str] = field(default_factory=dict)
    tensors: tuple[Tensor, ...] = ()


@dataclass
class Body:
    """The DOT pieces of one kernel: its cluster's label, instruction nodes and edges."""

    label: str
    nodes: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def instruction_count(node: Tensor) -> int:
    return len(node.attr["program"].instrs)


def kernel_label(node: Tensor) -> str:
    """``fused_mul_add_tanh_3`` over ``(4, 3) f32``, and its reduction if any."""
    a = node.attr
    detail = f"over {style.format_shape(a['shape'])} {style.dtype_abbreviation(a['dtype'])}"
    if a.get("reduce"):
        kind, axes, keepdims = a["reduce"]
        detail += f", then {kind} axis={axes}" + (" keepdims" if keepdims else "")
    return style.html_label(style.bold(a["kernel"]), style.small(detail))


def result_title(node: Tensor) -> str:
    """The title of the kernel's result node: its reduction, or ``result``."""
    reduce = node.attr.get("reduce")
    return f"{reduce[0]} axis={reduce[1]}" if reduce else "result"


def body(node: Tensor, node_id: str, sources: Sequence[Source]) -> Body:
    """The instructions of ``node``'s program as small nodes wired to their ``sources``."""
    program: Program = node.attr["program"]
    inputs = {input_name(k): s for k, s in enumerate(sources)}
    dest_ids = {dest: f"{node_id}_{dest}" for dest, _, _ in program.instrs}
    out = Body(kernel_label(node))

    def operand(arg: str | float) -> str | None:
        """The text of an argument written into the label (``None``: an edge brings it)."""
        if isinstance(arg, float | int):
            return style.format_constant(arg)
        source = inputs.get(arg)
        return source.constant if source is not None else None

    def wire(arg: str | float, target: str) -> None:
        if isinstance(arg, float | int):
            return
        if arg in dest_ids:
            out.edges.append(Edge(dest_ids[arg], target, dict(style.FUSED_BODY_EDGE)))
            return
        source = inputs[arg]
        if source.id is not None:
            out.edges.append(Edge(source.id, target, tensors=(source.tensor,)))

    for dest, op, args in program.instrs:
        text = style.operation_text(op, [operand(a) for a in args])
        out.nodes.append((dest_ids[dest], style.html_label(style.esc(text)),
                          dict(style.KIND_ATTRS["instr"])))
        for arg in args:
            wire(arg, dest_ids[dest])
    wire(program.result, node_id)
    return out
