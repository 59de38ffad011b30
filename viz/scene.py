"""What a drawing shows: the nodes of a target, and which of them are the backward pass.

``scene_of`` turns anything drawable (a tensor, tensors, a ``Graph``, a compiled
function) into a ``Scene``. When the target is a gradient graph (it contains the seed
``ones_like(f)`` that ``gx.grad(f, ...)`` starts backprop from), the scene knows the
forward output ``f``: nodes ``f`` depends on are the forward pass, every other node is
the backward pass, and each gradient output is linked to the forward node(s) it is the
gradient of.

Which forward node a gradient differentiates is found by identity, not by guessing:
nodes are hash-consed, so backpropagating from ``f`` to every forward node rebuilds the
very nodes ``gx.grad`` built, and ``∂f/∂x`` is the node that maps to ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from graphc.autodiff import backprop
from graphc.compiled import Compiled
from graphc.errors import GradientError
from graphc.graph import Graph, toposort
from graphc.ops import elementwise as ew
from graphc.tensor import Param, Tensor
from graphc.types import FLOAT_DTYPES

LEAF_OPS = ("input", "param", "constant")


@dataclass(frozen=True)
class Scene:
    """The nodes to draw, in topological order, and their roles."""

    nodes: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    #: The target's graph inputs in argument order (``Graph.inputs``), else in topological order.
    inputs: tuple[Tensor, ...]
    updates: tuple[tuple[Param, Tensor], ...] = ()
    #: The scalar whose gradient graph this is (``f`` of ``gx.grad(f, ...)``), if it is one.
    forward_output: Tensor | None = None
    #: Nodes of the backward pass (not ancestors of ``forward_output``).
    backward: frozenset[Tensor] = frozenset()
    #: A gradient node -> the forward nodes it is the gradient of (dotted links).
    links: dict[Tensor, tuple[Tensor, ...]] = field(default_factory=dict)
    #: Every forward node -> ∂f/∂node as a graph node (the backward pass built from ``f``;
    #: the drawn backward nodes are among these nodes and their ancestors).
    gradients: dict[Tensor, Tensor] = field(default_factory=dict)

    @property
    def forward(self) -> tuple[Tensor, ...]:
        return tuple(n for n in self.nodes if n not in self.backward)

    def phase(self, node: Tensor) -> str:
        """``"backward"`` for a node of the backward pass, else ``"forward"``."""
        return "backward" if node in self.backward else "forward"


def as_outputs(target: Any) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...] | None,
                                     tuple[tuple[Param, Tensor], ...]]:
    """``(outputs, inputs or None, updates)`` of a drawable target."""
    if isinstance(target, Compiled):
        target = target.graph
    if isinstance(target, Graph):
        return target.outputs, target.inputs, target.updates
    if isinstance(target, Tensor):
        return (target,), None, ()
    if isinstance(target, list | tuple) and target and all(isinstance(t, Tensor)
                                                           for t in target):
        return tuple(target), None, ()
    raise TypeError(f"cannot draw {type(target).__name__} {target!r:.60}: give a Tensor, a "
                    "non-empty list of Tensors, a gx.Graph or a compiled function")


def scene_of(target: Any, *, forward: Tensor | None = None) -> Scene:
    """The scene of ``target``; ``forward`` names the output its gradients were taken of
    (found automatically when left out)."""
    outputs, inputs, updates = as_outputs(target)
    roots = outputs + tuple(v for _, v in updates)
    nodes = tuple(toposort(roots))
    if inputs is None:
        inputs = tuple(n for n in nodes if n.op.name == "input")
    scene = Scene(nodes, outputs, inputs, updates)
    if forward is not None:
        if not isinstance(forward, Tensor) or forward not in set(nodes):
            raise ValueError(f"forward={forward!r:.60} must be a tensor of the drawn graph "
                             "(the output its gradients were taken of)")
        return with_forward_output(scene, forward)
    for candidate in _seeded_outputs(nodes):
        linked = with_forward_output(scene, candidate)
        if linked.links:
            return linked
    return scene


def _seeded_outputs(nodes: Sequence[Tensor]) -> list[Tensor]:
    """Scalars ``f`` with a ``ones_like(f)`` node: where ``gx.grad(f, ...)`` seeds backprop."""
    return [n.inputs[0] for n in nodes
            if n.op.name == "full_like" and n.attr.get("value") == 1
            and n.inputs[0].shape == () and n.inputs[0].dtype in FLOAT_DTYPES]


def with_forward_output(scene: Scene, f: Tensor) -> Scene:
    """``scene`` seen as (part of) the gradient graph of ``f``: its backward nodes and the
    links from each gradient output to the forward nodes it differentiates."""
    forward = toposort([f])
    forward_set = set(forward)
    backward = frozenset(n for n in scene.nodes if n not in forward_set)
    gradients = gradient_nodes(f, forward)
    differentiates: dict[Tensor, list[Tensor]] = {}
    for node, g in gradients.items():
        differentiates.setdefault(g, []).append(node)
    links = {}
    for out in dict.fromkeys(scene.outputs):
        if out in backward and out in differentiates:
            links[out] = _prefer_leaves(differentiates[out])
    return replace(scene, forward_output=f, backward=backward, links=links,
                   gradients=gradients)


def _prefer_leaves(nodes: list[Tensor]) -> tuple[Tensor, ...]:
    """The forward nodes a gradient is linked to: the leaves among those it is the gradient
    of (``∂f/∂(x + y)`` and ``∂f/∂x`` are one node when ``f`` is linear in the sum)."""
    leaves = [n for n in nodes if n.op.name in LEAF_OPS]
    return tuple(leaves or nodes)


def gradient_nodes(f: Tensor, nodes: Sequence[Tensor]) -> dict[Tensor, Tensor]:
    """``{node: ∂f/∂node}`` for every float node ``f`` depends on, as graph nodes: the same
    nodes ``gx.grad(f, [node])`` builds, seeded with ``ones_like(f)``."""
    if f.shape != () or f.dtype not in FLOAT_DTYPES:
        raise GradientError(f"gradients are drawn for a scalar float output, got {f!r}; "
                            "reduce it first (gx.sum or gx.mean)")
    wrt = [n for n in nodes if n.dtype in FLOAT_DTYPES]
    return backprop([f], [ew.ones_like(f)], wrt)


def with_backward_pass(scene: Scene, f: Tensor, gradients: dict[Tensor, Tensor]) -> Scene:
    """``scene`` (a forward graph of the scalar ``f``) plus the backward graph computing
    ``gradients`` (``{node: ∂f/∂node}``), each input's and param's gradient linked to it."""
    nodes = tuple(toposort([*scene.outputs, *gradients.values(),
                            *(v for _, v in scene.updates)]))
    forward = set(toposort([f]))
    backward = frozenset(n for n in nodes if n not in forward)
    links: dict[Tensor, tuple[Tensor, ...]] = {}
    for leaf in scene.nodes:
        g = gradients.get(leaf)
        if leaf.op.name in ("input", "param") and g in backward:
            links[g] = (*links.get(g, ()), leaf)
    return replace(scene, nodes=nodes, forward_output=f, backward=backward, links=links,
                   gradients=gradients)


def backward_owners(scene: Scene) -> dict[Tensor, Tensor]:
    """Each drawn node of the backward pass -> the forward node whose VJP built it.

    The VJP of a forward node ``m`` is the only code that reads ``m``'s cotangent
    ``∂f/∂m``. So a backward node built from the cotangent of ``m`` (directly, or through
    other nodes of the same VJP, which are not cotangents themselves) was built by ``m``'s
    VJP. Nodes that read no cotangent (``transpose(x)`` in the VJP of ``x @ W``) belong
    to the VJP of the node that reads them. A cotangent shared by several forward nodes
    (``a + b`` passes its cotangent to both) counts as the most upstream one's; a sum of
    contributions from several consumers goes to the first.
    """
    f = scene.forward_output
    if f is None or not scene.gradients:
        return {}
    forward = toposort([f])
    position = {n: k for k, n in enumerate(forward)}
    cotangent_of: dict[Tensor, Tensor] = {}
    for m, g in scene.gradients.items():
        if g not in cotangent_of or position[m] < position[cotangent_of[g]]:
            cotangent_of[g] = m
    backward = [n for n in scene.nodes if n in scene.backward]
    readers: dict[Tensor, dict[Tensor, None]] = {}  # backward node -> forward nodes
    owner: dict[Tensor, Tensor] = {}
    for b in backward:
        read: dict[Tensor, None] = {}
        for i in b.inputs:
            if i in cotangent_of:
                read[cotangent_of[i]] = None
            elif i in scene.backward:
                read.update(readers[i])
        readers[b] = read
        if read:
            owner[b] = next(iter(read))
    users: dict[Tensor, list[Tensor]] = {}
    for b in backward:
        for i in b.inputs:
            users.setdefault(i, []).append(b)
    for b in reversed(backward):  # nodes reading no cotangent: their first user's owner
        if b not in owner:
            owned = [owner[u] for u in users.get(b, ()) if u in owner]
            if owned:
                owner[b] = owned[0]
    return owner
