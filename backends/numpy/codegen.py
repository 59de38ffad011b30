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

from graphc.graph import Graph
from graphc.ops.base import ALL_OPS
from graphc.ops.leaves import Literal
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
    """Emit ``def graph(<inputs>, <params>, dims): ... return outputs, new_params``."""
    order = graph.toposort()
    namer = _Namer()
    args = [namer.fresh(i, identifier(i.name, "x")) for i in graph.inputs]
    args += [namer.fresh(p, identifier(p.name, "p")) for p in graph.params]
    namespace: dict[str, Any] = {op.name: op.impl for op in ALL_OPS.values()}
    namespace.update(np=np, inf=float("inf"), nan=float("nan"))

    roots = set(graph.roots)
    last_use = {inp: k for k, node in enumerate(order) for inp in node.inputs}
    lines = [f"def {name}({', '.join([*args, 'dims'])}):"]
    line_nodes: dict[int, Tensor] = {}
    for k, node in enumerate(order):
        if node in namer.names:
            continue
        if node.op.name == "constant":
            lines.append(f"    {namer.fresh(node, f'c{k}')} = "
                         f"{_constant_source(node, namer.names[node], namespace)}")
            continue
        out = namer.fresh(node, f"v{k}")
        inputs = [namer.names[i] for i in node.inputs]
        attrs = {key: _attr_source(key, v, namespace) for key, v in node.attrs}
        lines.append(f"    {out} = {node.op.emit(inputs, attrs)}{_location_comment(node)}")
        line_nodes[len(lines)] = node
        dead = [namer.names[i] for i in dict.fromkeys(node.inputs)
                if last_use.get(i) == k and i not in roots and i.op.name != "constant"
                and i not in graph.inputs and i.op.name != "param"]
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    outputs = [namer.names[o] for o in graph.outputs]
    updates = [namer.names[v] for _, v in graph.updates]
    lines.append(f"    return ({''.join(o + ', ' for o in outputs)}), "
                 f"({''.join(u + ', ' for u in updates)})")
    filename = f"<graphc-numpy-{next(_COUNTER)}>"
    return Program("\n".join(lines) + "\n", namespace, filename, line_nodes)


def _constant_source(node: Tensor, name: str, namespace: dict[str, Any]) -> str:
    """Small scalars inline as typed literals; arrays are bound in the namespace."""
    array = node.attr["value"].array if isinstance(node.attr["value"], Literal) else None
    if array is not None and array.ndim == 0 and np.isfinite(array):
        return f"np.{array.dtype.name}({array.item()!r})"
    namespace[f"_{name}"] = array
    return f"_{name}"
