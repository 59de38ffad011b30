"""``Graph``: named inputs, outputs and training updates over the tensor DAG."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphc.errors import CompileError
from graphc.tensor import Param, Tensor, as_tensor
from graphc.types import is_derived


def toposort(outputs: Iterable[Tensor], done: Iterable[Tensor] = ()) -> list[Tensor]:
    """Every node the outputs depend on, inputs before users, except the nodes in ``done``
    (and what is reached only through them). Iterative: linear time, no recursion limit
    on deep graphs."""
    order: list[Tensor] = []
    seen: set[Tensor] = set(done)
    for root in outputs:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.inputs))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


@dataclass(frozen=True)
class Graph:
    """What a compiled function computes: ``outputs`` from ``inputs``, then ``param ← value``."""

    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    updates: tuple[tuple[Param, Tensor], ...] = ()
    _order: list[Tensor] = field(default=None, compare=False, repr=False)  # type: ignore

    @classmethod
    def build(cls, inputs: Sequence[Tensor], outputs: Sequence[Any],
              updates: Mapping[Param, Any] | None = None) -> Graph:
        """Check and assemble a graph: every input reached must be listed, updates must
        target params with values of the param's type."""
        inputs = tuple(inputs)
        for i in inputs:
            if not isinstance(i, Tensor) or i.op.name != "input":
                raise CompileError(f"inputs must be gx.input tensors, got {i!r}")
        if len(set(inputs)) != len(inputs):
            raise CompileError("an input is listed twice")
        outs = tuple(as_tensor(o) for o in outputs)
        ups = tuple(_check_update(p, v) for p, v in (updates or {}).items())
        graph = cls(inputs, outs, ups)
        listed = set(inputs)
        missing = [n for n in graph.toposort() if n.op.name == "input" and n not in listed]
        if missing:
            names = ", ".join(repr(m.name) for m in missing)
            raise CompileError(f"the outputs depend on inputs not listed in `inputs`: {names}")
        _check_symbolic_dims(graph)
        return graph

    @property
    def roots(self) -> tuple[Tensor, ...]:
        return self.outputs + tuple(v for _, v in self.updates)

    def toposort(self) -> list[Tensor]:
        if self._order is None:
            object.__setattr__(self, "_order", toposort(self.roots))
        return self._order

    @property
    def params(self) -> tuple[Param, ...]:
        """Params read by the graph or updated by it, in a stable order."""
        seen = [n for n in self.toposort() if isinstance(n, Param)]
        seen += [p for p, _ in self.updates if p not in seen]
        return tuple(dict.fromkeys(seen))

    def __len__(self) -> int:
        return len(self.toposort())

    def to_networkx(self):
        """The DAG as a ``networkx.MultiDiGraph`` (nodes carry op, shape, dtype, name)."""
        import networkx as nx

        g = nx.MultiDiGraph()
        for node in self.toposort():
            g.add_node(id(node), op=node.op.name, shape=node.shape, dtype=node.dtype,
                       name=node.name, tensor=node)
            for pos, inp in enumerate(node.inputs):
                g.add_edge(id(inp), id(node), position=pos)
        return g


def _check_symbolic_dims(graph: Graph) -> None:
    """Every symbolic dim in the graph must be bound by an input's shape at call time."""
    bound: set[str] = set()
    for i in graph.inputs:
        derived = [d for d in i.shape if is_derived(d)]
        if derived:
            raise CompileError(f"input {i.name!r} has the derived dim {derived[0]!r}; inputs "
                               "take plain dim names, which the arguments bind")
        bound.update(d for d in i.shape if isinstance(d, str))
    for node in graph.toposort():
        # an op that creates a dim at run time (a slice of a symbolic dim) binds it
        # when it runs, for itself and every node after it
        bound.update(node.op.binds_dims(node))
        for d in node.shape:
            unbound = [p for p in (d.split("*") if isinstance(d, str) else ())
                       if not p.isdigit() and p not in bound]
            if unbound:
                where = f" (built at {node.location})" if node.location else ""
                raise CompileError(f"the symbolic dim {unbound[0]!r} of {node!r}{where} is not "
                                   "in the shape of any input, so no argument can bind it")


def _check_update(param: Any, value: Any) -> tuple[Param, Tensor]:
    if not isinstance(param, Param):
        raise CompileError(f"updates must map params to new values, got key {param!r}")
    value = as_tensor(value, param)
    if value.shape != param.shape:
        raise CompileError(f"update of {param.name!r}: new value has shape {value.shape}, "
                           f"the param has {param.shape}")
    if value.dtype != param.dtype:
        from graphc.ops.elementwise import cast
        value = cast(value, param.dtype)
    return param, value
