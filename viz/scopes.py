"""Scopes as clusters, and folding them into boxes so big graphs stay readable.

Every node has a drawing scope: its ``gx.scope`` path. Gradient nodes are built where
``gx.grad`` is called, usually outside every scope, so a backward node with no scope
of its own takes the scope of the forward node whose VJP built it (see
``scene.backward_owners``): the backward pass of ``layer1`` is drawn in ``layer1``, and
folding ``layer1`` folds its backward pass too (into a box of its own).

``plan_folding`` decides what is drawn: the scopes the user collapsed, and, above
``max_nodes``, scopes collapsed automatically (the deepest level that brings the count
under the limit), and as a last resort the nodes farthest from the outputs left out,
so that layout time stays bounded whatever the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from graphc.tensor import Tensor
from graphc.viz.scene import Scene, backward_owners

AUTO = "auto"


def drawing_scopes(scene: Scene) -> dict[Tensor, str]:
    """Each node's scope path; an unscoped node of the backward pass is drawn in the scope
    of the forward node whose VJP built it."""
    owners = backward_owners(scene)
    scope: dict[Tensor, str] = {}
    for node in scene.nodes:
        s = node.scope
        if not s and node in scene.backward:
            owner = owners.get(node)
            s = owner.scope if owner is not None else _scope_from_inputs(node, scene, scope)
        scope[node] = s
    return scope


def _scope_from_inputs(node: Tensor, scene: Scene, scope: Mapping[Tensor, str]) -> str:
    """For a backward node backprop from ``f`` did not build (added by hand): the scope of
    its first forward input with one, else of its first backward input with one."""
    # a constant is shared by every layer that uses its value (hash-consing): the scope
    # it was first built in says nothing about this node
    forward_scopes = [i.scope for i in node.inputs
                      if i not in scene.backward and i.scope and i.op.name != "constant"]
    backward_scopes = [scope[i] for i in node.inputs if i in scene.backward and scope[i]]
    return (forward_scopes or backward_scopes or [""])[0]


def prefixes(path: str) -> list[str]:
    """``"a/b/c"`` -> ``["a", "a/b", "a/b/c"]``; ``""`` -> ``[]``."""
    parts = path.split("/") if path else []
    return ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]


def resolve_scopes(names: Iterable[str], present: Collection[str]) -> set[str]:
    """The scope paths ``names`` designate: a full path (``"mlp/layer1"``), or a last part
    of paths (``"layer1"`` designates every ``.../layer1``)."""
    every = {p for path in present for p in prefixes(path)}
    resolved: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"collapse= takes scope names, got {name!r}")
        matches = {p for p in every if p == name or p.endswith("/" + name)}
        if not matches:
            known = ", ".join(sorted(every)) or "none (no node was built in a gx.scope)"
            raise ValueError(f"collapse={name!r}: the graph has no such scope; its scopes "
                             f"are: {known}")
        resolved |= matches
    return resolved


@dataclass(frozen=True)
class Box:
    """What stands for several nodes: a collapsed scope, or the nodes left out."""

    id: str
    phase: str
    #: The collapsed scope's path; ``""`` for the box of left-out nodes.
    scope: str
    members: tuple[Tensor, ...]

    @property
    def elided(self) -> bool:
        return not self.scope


@dataclass(frozen=True)
class Folding:
    """Which node is drawn inside which box (nodes not in ``box_of`` are drawn)."""

    box_of: dict[Tensor, Box] = field(default_factory=dict)
    boxes: tuple[Box, ...] = ()
    collapsed: tuple[str, ...] = ()
    auto: bool = False
    elided: int = 0
    visible: int = 0


def plan_folding(nodes: Sequence[Tensor], scope_of: Mapping[Tensor, str],
                 phase_of: Callable[[Tensor], str], collapse: str | Sequence[str] | None,
                 max_nodes: int | None, weight: Callable[[Tensor], int]) -> Folding:
    """Fold the scopes ``collapse`` names; if more than ``max_nodes`` items would still be
    drawn, fold deeper-first levels of scopes, then leave out the nodes farthest from the
    outputs. ``weight(node)`` is how many items a node draws (a fused kernel draws its body).
    """
    if max_nodes is not None and max_nodes < 2:
        raise ValueError(f"max_nodes must be at least 2 (or None for no limit), got {max_nodes}")
    names = [] if collapse in (None, AUTO) else [collapse] if isinstance(collapse, str) \
        else list(collapse)
    present = set(scope_of.values())
    chosen = resolve_scopes(names, present)
    folded = _fold(nodes, scope_of, chosen)
    if max_nodes is None or _count(nodes, folded, phase_of, weight) <= max_nodes:
        return _folding(nodes, folded, phase_of, chosen, weight)
    depth = max((len(prefixes(s)) for s in present), default=0)
    for level in range(depth, 0, -1):
        automatic = chosen | {p[level - 1] for s in present if len(p := prefixes(s)) >= level}
        folded = _fold(nodes, scope_of, automatic)
        if _count(nodes, folded, phase_of, weight) <= max_nodes:
            return _folding(nodes, folded, phase_of, automatic, weight, auto=True)
    outermost = chosen | {p[0] for s in present if (p := prefixes(s))}
    folded = _fold(nodes, scope_of, outermost)
    return _elide(nodes, folded, phase_of, outermost, weight, max_nodes)


def _fold(nodes: Sequence[Tensor], scope_of: Mapping[Tensor, str],
          collapsed: set[str]) -> dict[Tensor, str]:
    """Node -> the outermost collapsed scope containing it (folded nodes only)."""
    if not collapsed:
        return {}
    folded = {}
    for node in nodes:
        for p in prefixes(scope_of[node]):
            if p in collapsed:
                folded[node] = p
                break
    return folded


def _count(nodes: Sequence[Tensor], folded: Mapping[Tensor, str],
           phase_of: Callable[[Tensor], str], weight: Callable[[Tensor], int]) -> int:
    boxes = {(phase_of(n), s) for n, s in folded.items()}
    return len(boxes) + sum(weight(n) for n in nodes if n not in folded)


def _folding(nodes: Sequence[Tensor], folded: Mapping[Tensor, str],
             phase_of: Callable[[Tensor], str], collapsed: set[str],
             weight: Callable[[Tensor], int], auto: bool = False) -> Folding:
    members: dict[tuple[str, str], list[Tensor]] = {}
    for node in nodes:
        if node in folded:
            members.setdefault((phase_of(node), folded[node]), []).append(node)
    boxes = [Box(f"box{k}", section, scope, tuple(ms))
             for k, ((section, scope), ms) in enumerate(members.items())]
    box_of = {n: b for b in boxes for n in b.members}
    used = tuple(sorted({b.scope for b in boxes}))
    visible = len(boxes) + sum(weight(n) for n in nodes if n not in box_of)
    return Folding(box_of, tuple(boxes), used if used else tuple(sorted(collapsed)), auto,
                   0, visible)


def _elide(nodes: Sequence[Tensor], folded: Mapping[Tensor, str],
           phase_of: Callable[[Tensor], str], collapsed: set[str],
           weight: Callable[[Tensor], int], max_nodes: int) -> Folding:
    """Keep the items nearest the outputs (walking back in topological order) up to
    ``max_nodes - 1``; one box stands for all the others."""
    kept: set[object] = set()
    budget = max_nodes - 1
    keep_node: set[Tensor] = set()
    for node in reversed(nodes):
        item = (phase_of(node), folded[node]) if node in folded else node
        cost = 0 if item in kept else 1 if node in folded else weight(node)
        if cost > budget:
            continue
        budget -= cost
        kept.add(item)
        keep_node.add(node)
    drawn = [n for n in nodes if n in keep_node]
    base = _folding(drawn, {n: s for n, s in folded.items() if n in keep_node}, phase_of,
                    collapsed, weight, auto=True)
    left_out = tuple(n for n in nodes if n not in keep_node)
    rest = Box("elided", "", "", left_out)
    box_of = {**base.box_of, **{n: rest for n in left_out}}
    return Folding(box_of, (*base.boxes, rest), base.collapsed, True, len(left_out),
                   base.visible + 1)
