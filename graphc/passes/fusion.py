"""Fusion: maximal elementwise subgraphs become one ``fused`` kernel.

A kernel has one output (its root) and an iteration space (the root's shape).
Groups grow from a root towards its producers, visited in reverse topological
order so that every consumer of a producer inside the group is known when the
producer is examined. A producer joins the group when

* it is elementwise with the group's shape and compute dtype, and
* every consumer of it is an exclusive member of the group (it then disappears
  into the kernel), or it is cheap (no transcendental function), in which case
  it is recomputed in the kernel and also kept for its other consumers (one op
  deep: its own producers are kernel inputs); an expensive producer (exp, log,
  tanh, ...) is never computed twice.

``broadcast_to`` nodes of the group's shape join for free (the kernel
broadcasts its inputs), and 0-d constants become literals of the body. A
reduction (sum, max, min, prod) whose input is such a group and its only user
ends the kernel (sum of squares is one pass). Because only the root's value
leaves a kernel and every kernel input is an ancestor of the root, fusing never
creates a cycle.

Kernels are named after their first ops (``fused_mul_add_tanh_3``), numbered in
graph order, so drawings and generated code read alike from run to run.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from dataclasses import dataclass, field

from graphc.graph import Graph, toposort
from graphc.ops.elementwise import Elementwise
from graphc.ops.fused import FUSED_REDUCTIONS, fused_unchecked, input_name
from graphc.ops.scalar import Arg, Instr, Program
from graphc.passes.engine import rebuild
from graphc.passes.pattern import constant_value
from graphc.passes.report import PassReport
from graphc.tensor import Tensor, built_as
from graphc.types import FLOAT_DTYPES

#: Scalar primitives costly enough that a kernel must never compute them twice.
EXPENSIVE = frozenset(("exp", "log", "log1p", "expm1", "tanh", "erf", "sin", "cos", "pow",
                       "atan", "fmod", "mod", "sigmoid"))

#: The most ops one kernel holds (keeps kernels, and the time to build them, bounded).
MAX_MEMBERS = 64

#: Distinct op names that go into a kernel's name before it is cut short.
NAME_OPS = 4


@dataclass
class Group:
    """One future kernel: its root, members (with whether each is exclusive) and shape."""

    root: Tensor
    shape: tuple
    compute: str
    reduce: tuple | None = None
    members: dict[Tensor, bool] = field(default_factory=dict)  # node → exclusive?

    def outside_inputs(self) -> set[Tensor]:
        """What the kernel reads from outside the group."""
        return {i for m in self.members for i in m.inputs if i not in self.members}


def compute_dtype(node: Tensor) -> str | None:
    """The float dtype an elementwise node computes in (``""`` for pure-bool logic),
    or ``None`` when it cannot join a kernel (integer arithmetic, mixed floats)."""
    if not isinstance(node.op, Elementwise):
        return None
    dtypes = {node.dtype, *(i.dtype for i in node.inputs)} - {"bool"}
    if not dtypes:
        return ""
    if len(dtypes) != 1 or next(iter(dtypes)) not in FLOAT_DTYPES:
        return None
    return next(iter(dtypes))


def is_cheap(node: Tensor) -> bool:
    """Cheap to recompute: no transcendental in the op's formula."""
    return isinstance(node.op, Elementwise) and not EXPENSIVE & set(node.op.formula.value.ops)


def fuse(graph: Graph) -> tuple[Graph, PassReport]:
    """Replace every worthwhile elementwise group of ``graph`` by a fused kernel."""
    start = time.perf_counter()
    order = toposort(graph.roots)
    position = {node: k for k, node in enumerate(order)}
    consumers: dict[Tensor, list[Tensor]] = {node: [] for node in order}
    for node in order:
        for i in dict.fromkeys(node.inputs):
            consumers[i].append(node)
    external = set(graph.roots)  # read outside the graph: never folded into a kernel

    fired: Counter = Counter()
    groups: dict[Tensor, Group] = {}
    kernel_reads: dict[Tensor, set[Tensor]] = {}  # group root → what its kernel reads
    absorbed: set[Tensor] = set()
    for node in reversed(order):
        if node in absorbed:
            continue
        group = _start_group(node, consumers, external)
        if group is None:
            continue
        _grow(group, consumers, position, external)
        real_ops = sum(1 for m in group.members if isinstance(m.op, Elementwise))
        if real_ops + (group.reduce is not None) < 2:
            continue  # a lone op gains nothing from being a kernel
        groups[node] = group
        absorbed.update(m for m, exclusive in group.members.items() if exclusive)
        # the kernel reads its inputs: a later (upstream) group may not swallow them
        kernel_reads[node] = group.outside_inputs()
        external.update(kernel_reads[node])

    # A node every reader recomputes is dead: find what the new graph still reads.
    live = set(graph.roots)
    for node in reversed(order):
        if node in live:
            live.update(kernel_reads.get(node, node.inputs))
    memo: dict[Tensor, Tensor] = {}
    count = 0
    for node in order:
        if node not in live:
            continue
        if node in groups:
            group = groups[node]
            memo[node] = _kernel(group, memo, position, count)
            count += 1
            fired["fuse_reduction" if group.reduce else "fuse_elementwise"] += 1
            fired["recompute_cheap"] += sum(1 for e in group.members.values() if not e)
        else:
            memo[node] = rebuild(node, tuple(memo[i] for i in node.inputs))
    new = Graph(graph.inputs, tuple(memo[o] for o in graph.outputs),
                tuple((p, memo[v]) for p, v in graph.updates))
    fired = Counter({k: v for k, v in fired.items() if v})
    return new, PassReport("fuse", fired, len(graph), len(new), time.perf_counter() - start)


def _start_group(node: Tensor, consumers, external) -> Group | None:
    if node.op.name in FUSED_REDUCTIONS and node.dtype in FLOAT_DTYPES:
        (x,) = node.inputs
        if x not in external and consumers[x] == [node] and compute_dtype(x) == node.dtype:
            a = node.attr
            group = Group(node, x.shape, node.dtype, (node.op.name, a["axis"], a["keepdims"]))
            group.members[x] = True
            return group
        return None
    compute = compute_dtype(node)
    if not compute:
        return None
    group = Group(node, node.shape, compute)
    group.members[node] = True
    return group


def _grow(group: Group, consumers, position, external) -> None:
    """Absorb producers, latest first, while they qualify."""
    heap = []
    queued: set[Tensor] = set()

    def push_inputs(member: Tensor) -> None:
        for i in member.inputs:
            if i not in queued and i not in group.members:
                queued.add(i)
                heapq.heappush(heap, (-position[i], id(i), i))

    for member in list(group.members):
        push_inputs(member)
    while heap:
        _, _, p = heapq.heappop(heap)
        if p.shape != group.shape:
            continue
        readers = consumers[p]
        # (a widely read node, a shared constant or param, fails the size test at once)
        exclusive = p not in external and len(readers) <= len(group.members) \
            and all(group.members.get(c) for c in readers)
        if p.op.name == "broadcast_to":
            group.members[p] = exclusive  # free: the kernel broadcasts its inputs itself;
            continue                      # what it broadcasts stays a kernel input
        if compute_dtype(p) not in (group.compute, "") or p.dtype not in (group.compute, "bool"):
            continue
        if len(group.members) >= MAX_MEMBERS:
            break
        if exclusive:
            group.members[p] = True
            push_inputs(p)
        elif is_cheap(p):
            # recomputed here and kept for its other readers; its own producers stay
            # kernel inputs, so recomputation is one op deep and never snowballs
            group.members[p] = False


def _kernel(group: Group, memo: dict[Tensor, Tensor], position: dict[Tensor, int],
            number: int) -> Tensor:
    """The fused node for ``group``: its body program over its outside inputs."""
    members = sorted(group.members, key=position.__getitem__)  # dependencies first
    inputs: dict[Tensor, str] = {}
    refs: dict[Tensor, Arg] = {}
    instrs: list[Instr] = []

    def ref(t: Tensor) -> Arg:
        if t in refs:
            return refs[t]
        value = constant_value(t)
        if value is not None and value.ndim == 0 and t.dtype == group.compute:
            return float(value)
        if t not in inputs:
            inputs[t] = input_name(len(inputs))
        return inputs[t]

    for m in members:
        if m.op.name == "broadcast_to":
            refs[m] = ref(m.inputs[0])
            continue
        formula = m.op.formula
        env: dict[str, Arg] = {name: ref(i) for name, i in zip(formula.inputs, m.inputs,
                                                              strict=True)}
        env.update({k: float(v) for k, v in m.attrs if k in formula.params})
        for dest, op, args in formula.value.instrs:
            fresh = f"t{len(instrs)}"
            instrs.append((fresh, op, tuple(a if isinstance(a, float) else env[a]
                                            for a in args)))
            env[dest] = fresh
        result = formula.value.result
        refs[m] = result if isinstance(result, float) else env[result]
    body_root = group.root.inputs[0] if group.reduce else group.root
    program = Program(tuple(instrs), refs[body_root])
    names = list(dict.fromkeys(m.op.name for m in members if m.op.name != "broadcast_to"))
    name = "_".join(names[:NAME_OPS] + (["etc"] if len(names) > NAME_OPS else []))
    if group.reduce:
        name += f"_{group.reduce[0]}"
    outside = tuple(memo[t] for t in inputs)
    with built_as(group.root):  # the kernel points at the user's line of its root op
        return fused_unchecked(outside, kernel=f"fused_{name}_{number}", program=program,
                               shape=group.shape, dtype=body_root.dtype,
                               compute=group.compute or "float64", reduce=group.reduce,
                               out_type=group.root.type)


__all__ = ["fuse", "EXPENSIVE", "is_cheap", "compute_dtype"]
