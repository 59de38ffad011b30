"""Graph → readable Python source calling NumPy, one line per node.

Inputs and params become function arguments, every other node one assignment
that calls its op's reference implementation, and each intermediate is deleted
right after its last use so peak memory follows liveness. User-chosen names are
reduced to identifiers before they reach the source; anything else a user gave
(constants, file names) is bound in the namespace or sanitized, never pasted in.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.backends.numpy.kernels import kernel_source
from graphc.graph import Graph
from graphc.ops.base import ALL_OPS
from graphc.ops.leaves import constant_value
from graphc.ops.scalar import NUMPY_PRIMITIVES
from graphc.passes.memory import MemoryPlan
from graphc.passes.memory import plan as plan_memory
from graphc.tensor import Tensor

_COUNTER = itertools.count()


@dataclass
class Program:
    """Generated source, the namespace it runs in, and which line built which node."""

    source: str
    namespace: dict[str, Any]
    filename: str
    line_nodes: dict[int, Tensor]


def identifier(name: str | None, prefix: str) -> str:
    """A safe Python identifier derived from a user name."""
    cleaned = re.sub(r"\W", "_", name or "", flags=re.ASCII).strip("_")
    return f"{prefix}_{cleaned}" if cleaned else prefix


def _dim_source(dim: int | str) -> str:
    if isinstance(dim, int):
        return str(dim)
    return "*".join(p if p.isdigit() else f"dims[{p!r}]" for p in dim.split("*"))


def _is_literal(value: Any) -> bool:
    """Can ``repr(value)`` be pasted into source and read back as the same value?"""
    if isinstance(value, tuple):
        return all(_is_literal(v) for v in value)
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return value is None or isinstance(value, bool | int | str)


def _attr_source(key: str, value: Any, namespace: dict[str, Any]) -> str:
    if key == "shape" and isinstance(value, tuple):
        dims = [_dim_source(d) for d in value]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    if _is_literal(value):
        return repr(value)
    name = f"_attr{len(namespace)}"  # anything else (a Program, inf) is bound, not pasted
    namespace[name] = value
    return name


def _location_comment(node: Tensor) -> str:
    loc = node.location
    if loc is None:
        return ""
    base = re.sub(r"[^\w.\-]", "_", loc.filename.replace("\\", "/").rsplit("/", 1)[-1])
    return f"  # {base}:{loc.lineno}"


class _Namer:
    def __init__(self) -> None:
        self.names: dict[Tensor, str] = {}
        self.used: set[str] = set(ALL_OPS) | {"np", "dims", "inf", "nan", "rng"}

    def fresh(self, node: Tensor, base: str) -> str:
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        self.names[node] = name
        return name


def generate(graph: Graph, name: str = "graph") -> Program:
    """Emit ``def graph(<inputs>, <params>, dims): ... return outputs, new_params``,
    preceded by one function per fused kernel."""
    memory = plan_memory(graph)
    order = memory.order
    namer = _Namer()
    args = [namer.fresh(i, identifier(i.name, "x")) for i in graph.inputs]
    args += [namer.fresh(p, identifier(p.name, "p")) for p in graph.params]
    namespace: dict[str, Any] = {op.name: op.impl for op in ALL_OPS.values()}
    namespace.update(np=np, inf=float("inf"), nan=float("nan"))

    # A value dies after its last reader, or after the kernel that reuses its buffer.
    position = {node: k for k, node in enumerate(order)}
    dies_at: dict[int, list[Tensor]] = {}
    keep = set(graph.roots)
    reused_until: dict[Tensor, int] = {}
    for kernel, buffer in memory.out_buffer.items():
        reused_until[buffer] = max(reused_until.get(buffer, -1), position[kernel])
    for node in order:
        if node.inputs and node not in keep:
            end = max(memory.last_use.get(node, position[node]), reused_until.get(node, -1))
            dies_at.setdefault(end, []).append(node)

    kernels: list[str] = []
    body = [f"def {name}({', '.join([*args, 'dims'])}):"]
    body_nodes: dict[int, Tensor] = {}
    kernel_nodes: list[tuple[int, int, Tensor]] = []  # (first line, last line, node)
    for k, node in enumerate(order):
        if node in namer.names:
            continue
        if node.op.name == "constant":
            body.append(f"    {namer.fresh(node, f'c{k}')} = "
                        f"{_constant_source(node, namer.names[node], namespace)}")
            continue
        inputs = [namer.names[i] for i in node.inputs]
        if node.op.name == "fused":
            expr = _kernel_call(node, inputs, memory, namer, namespace, kernels, kernel_nodes)
        else:
            attrs = {key: _attr_source(key, v, namespace) for key, v in node.attrs}
            expr = node.op.emit(inputs, attrs)
        body.append(f"    {namer.fresh(node, f'v{k}')} = {expr}{_location_comment(node)}")
        body_nodes[len(body)] = node
        dead = [namer.names[i] for i in dies_at.get(k, ())]
        if dead:
            body.append(f"    del {', '.join(dead)}")
    outputs = [namer.names[o] for o in graph.outputs]
    updates = [namer.names[v] for _, v in graph.updates]
    body.append(f"    return ({''.join(o + ', ' for o in outputs)}), "
                f"({''.join(u + ', ' for u in updates)})")

    kernel_lines = "".join(kernels).splitlines()
    offset = len(kernel_lines) + (1 if kernel_lines else 0)
    line_nodes = {line + offset: node for line, node in body_nodes.items()}
    for first, last, node in kernel_nodes:
        line_nodes.update({line: node for line in range(first, last + 1)})
    source = "\n".join(kernel_lines + ([""] if kernel_lines else []) + body) + "\n"
    filename = f"<graphc-numpy-{next(_COUNTER)}>"
    return Program(source, namespace, filename, line_nodes)


def _kernel_call(node: Tensor, inputs: list[str], memory: MemoryPlan, namer: _Namer,
                 namespace: dict[str, Any], kernels: list[str],
                 kernel_nodes: list[tuple[int, int, Tensor]]) -> str:
    """Emit the kernel function of a fused node; return the call writing its result."""
    attrs = node.attr
    base = re.sub(r"\W", "_", attrs["kernel"], flags=re.ASCII) or "fused"
    kernel = namer.fresh(object(), base if base.isidentifier() else f"k_{base}")  # type: ignore[arg-type]
    buffer = memory.out_buffer.get(node)
    out_input = node.inputs.index(buffer) if node in memory.in_place else None
    source = kernel_source(kernel, attrs, [i.dtype for i in node.inputs], out_input)
    first = sum(k.count("\n") for k in kernels) + 1
    kernels.append(source + "\n")  # a blank line between kernels
    kernel_nodes.append((first, first + source.count("\n"), node))
    if "_erf(" in source:
        from scipy.special import erf  # scipy loads only for kernels that need it

        namespace["_erf"] = erf
    if "_sigmoid(" in source:
        namespace["_sigmoid"] = NUMPY_PRIMITIVES["sigmoid"]
    if buffer is not None:
        out = namer.names[buffer]
    else:
        out = f"np.empty({_attr_source('shape', attrs['shape'], namespace)}, {attrs['dtype']!r})"
    return f"{kernel}({', '.join([*inputs, out])})"


def _constant_source(node: Tensor, name: str, namespace: dict[str, Any]) -> str:
    """Small scalars inline as typed literals; arrays are bound in the namespace."""
    array = constant_value(node)
    if array.ndim == 0 and np.isfinite(array):
        return f"np.{array.dtype.name}({array.item()!r})"
    namespace[f"_{name}"] = array
    return f"_{name}"
