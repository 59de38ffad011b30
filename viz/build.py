"""Scene (+ values, + gradients, + folding) -> DOT statements in a Graphviz graph.

The builder decides, for every node, how it is drawn (a node, a fused kernel's cluster,
part of a collapsed box, or a constant written into its consumer's label) and where
(its nested scope cluster, inside the forward or backward section in the side-by-side
layout); then it writes the clusters, nodes and edges. Nothing here evaluates or
differentiates: that was done before, and arrives as an ``Evaluation``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import graphviz
import numpy as np

from graphc.ops.leaves import constant_value
from graphc.tensor import Param, Tensor
from graphc.types import shape_size
from graphc.viz import kernels, overlay, style
from graphc.viz.evaluate import Evaluation
from graphc.viz.kernels import Edge
from graphc.viz.scene import Scene
from graphc.viz.scopes import Box, Folding

#: Ranks an edge between two clusters spans at least (see ``emit``).
CROSS_CLUSTER_MINLEN = "3"
SECTION_LABELS = {"forward": "forward pass", "backward": "backward pass (gradients)"}


@dataclass(frozen=True)
class Look:
    """The user's choices about what a drawing shows."""

    summary: str = "stats"
    gradients: bool = False
    overlay: bool = False
    #: What ``f`` is called in ``∂f/∂x`` headers and the legend.
    output_name: str = "f"


def inlined_constants(scene: Scene) -> dict[Tensor, str]:
    """One-element constants, and expressions of them only (``reciprocal(16)``), that are
    not outputs -> their text: written into their consumers' labels (``+ 1``) rather than
    drawn as nodes of their own (a ``1/n`` shared by every layer would otherwise send an
    edge to each)."""
    texts: dict[Tensor, str] = {}
    for n in scene.nodes:
        if shape_size(n.shape) != 1:
            continue
        if n.op.name == "constant":
            value = constant_value(n).reshape(()).item()
            texts[n] = style.format_constant(value)
        elif n.inputs and all(i in texts for i in n.inputs):
            texts[n] = style.operation_text(n.op.name, [texts[i] for i in n.inputs])
    outputs = set(scene.outputs)
    return {n: text for n, text in texts.items() if n not in outputs}


def node_weight(inlined: Collection[Tensor]) -> Callable[[Tensor], int]:
    """How many drawn items a node costs: none for an inlined constant, a fused kernel its
    instructions and result."""
    def weight(node: Tensor) -> int:
        if node in inlined:
            return 0
        if node.op.name == "fused":
            return 1 + kernels.instruction_count(node)
        return 1
    return weight


@dataclass
class _Cluster:
    """Statements of one cluster (a scope, a section or the root) and its sub-clusters."""

    label: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    nodes: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    #: Fused kernels: the result node's statement and the kernel's body.
    bodies: list[tuple[tuple[str, str, dict[str, str]], kernels.Body]] = \
        field(default_factory=list)
    children: dict[str, _Cluster] = field(default_factory=dict)


class Builder:
    """Writes one scene into a graph; ``prefix`` keeps ids apart when two scenes share a
    graph (``compare``)."""

    def __init__(self, scene: Scene, folding: Folding, scope_of: dict[Tensor, str], look: Look,
                 evaluation: Evaluation | None = None, prefix: str = "",
                 sectioned: bool = False, label_every_edge: bool = False,
                 types_on_nodes: bool = False) -> None:
        self.scene = scene
        self.sectioned = sectioned
        self.label_every_edge = label_every_edge
        #: Each node shows its type and edges go bare: for big (folded) drawings, where
        #: edge labels would double the layout's ranks and its time (measured: 10×).
        self.types_on_nodes = types_on_nodes
        #: Set by ``emit``: the one type every data edge carries, when its label was left
        #: off the edges (for the caption to say once).
        self.common_type: str | None = None
        self.folding = folding
        self.scope_of = scope_of
        self.look = look
        self.evaluation = evaluation or Evaluation()
        self.prefix = prefix
        self.inlined = inlined_constants(scene)
        self.ids = {n: f"{prefix}n{k}" for k, n in enumerate(scene.nodes)}
        self.outputs = set(scene.outputs)
        self.bodies = {n: self._kernel_body(n) for n in scene.nodes
                       if n.op.name == "fused" and self.drawn(n)}
        self._clusters = 0

    # -- where each node is drawn ----------------------------------------------------------------
    def item_id(self, node: Tensor) -> str | None:
        """The id of what stands for ``node`` in the drawing (``None``: an inlined constant)."""
        if node in self.inlined:
            return None
        box = self.folding.box_of.get(node)
        return self.prefix + box.id if box is not None else self.ids[node]

    def drawn(self, node: Tensor) -> bool:
        return node not in self.folding.box_of and node not in self.inlined

    def _path(self, phase: str, scope: str) -> tuple[str, ...]:
        """The clusters an item is drawn in: its phase's (side by side only), then its
        scope's, outermost first."""
        parts = tuple(scope.split("/")) if scope else ()
        return ((phase,) if self.sectioned else ()) + parts

    # -- writing -----------------------------------------------------------------------------------
    def emit(self, graph: graphviz.Digraph) -> None:
        """Add every cluster, node and edge of the scene to ``graph``."""
        edges = self.edges()
        types = {style.type_text(t) for e in edges for t in e.tensors}
        if len(types) == 1 and not self.label_every_edge and not self.types_on_nodes:
            # the same "f32 ()" on every edge says nothing per edge: the caption says it once
            self.common_type = types.pop()
        root = _Cluster()
        cluster_of: dict[str, tuple[str, ...]] = {}  # item id -> the cluster it is drawn in
        for node in self.scene.nodes:
            if not self.drawn(node):
                continue
            path = self._path(self.scene.phase(node), self.scope_of[node])
            cluster = self._cluster(root, path)
            statement = (self.ids[node], self.node_label(node), self.node_attrs(node))
            if node in self.bodies:
                cluster.bodies.append((statement, self.bodies[node]))
                path += (self.ids[node],)
                cluster_of.update((instr_id, path) for instr_id, _, _ in
                                  self.bodies[node].nodes)
            else:
                cluster.nodes.append(statement)
            cluster_of[self.ids[node]] = path
        for box in self.folding.boxes:
            path = self._path(box.phase, box.scope.rpartition("/")[0])
            self._cluster(root, path).nodes.append((self.prefix + box.id, self.box_label(box),
                                                    self.box_attrs(box)))
            cluster_of[self.prefix + box.id] = path
        self._write(graph, root)
        for e in edges:
            attrs = e.attrs
            if self._labels_edge(e):
                attrs = {"label": _types_text(e.tensors), **attrs}
            if e.tensors and cluster_of.get(e.tail) != cluster_of.get(e.head):
                # data entering another cluster runs longer: room for that cluster's
                # params before its first op, so consecutive layers sit side by side
                # rather than in a staircase, and the edge's label lies between the
                # clusters, not on the next one's title
                attrs = {"minlen": CROSS_CLUSTER_MINLEN, **attrs}
            graph.edge(e.tail, e.head, **attrs)

    def _labels_edge(self, edge: Edge) -> bool:
        """Data edges carry their tensor's type, except a drawn leaf's: the leaf shows its
        type itself, once, however many ops read it."""
        if not edge.tensors or self.common_type is not None or self.types_on_nodes:
            return False
        return self.label_every_edge or len(edge.tensors) > 1 or \
            not self._shows_type(edge.tensors[0])

    def _shows_type(self, node: Tensor) -> bool:
        """Does ``node``'s own label show its type? Drawn leaves do (unless every edge
        is labelled, or all carry one type), and every node with ``types_on_nodes``."""
        if not self.drawn(node):
            return False
        if self.types_on_nodes:
            return True
        return self.kind(node) != "op" and self.common_type is None \
            and not self.label_every_edge

    def _cluster(self, root: _Cluster, path: tuple[str, ...]) -> _Cluster:
        cluster = root
        for depth, part in enumerate(path):
            if part not in cluster.children:
                cluster.children[part] = self._new_cluster(part, depth)
            cluster = cluster.children[part]
        return cluster

    def _new_cluster(self, part: str, depth: int) -> _Cluster:
        if depth == 0 and self.sectioned:
            return _Cluster(style.html_label(style.bold(SECTION_LABELS[part])),
                            dict(style.SECTION_ATTRS[part]))
        scope_depth = depth - (1 if self.sectioned else 0)
        fill = style.SCOPE_FILLS[min(scope_depth, len(style.SCOPE_FILLS) - 1)]
        return _Cluster(style.html_label(style.bold(part)),
                        {"style": "rounded,filled", "fillcolor": fill, "color": "#9ca3af"})

    def _write(self, graph: graphviz.Digraph, cluster: _Cluster) -> None:
        for node_id, label, attrs in cluster.nodes:
            graph.node(node_id, label, **attrs)
        for (node_id, label, attrs), body in cluster.bodies:
            with graph.subgraph(name=f"cluster_{node_id}_kernel") as sub:
                sub.attr(label=body.label, **style.FUSED_ATTRS)
                for instr_id, instr_label, instr_attrs in body.nodes:
                    sub.node(instr_id, instr_label, **instr_attrs)
                sub.node(node_id, label, **attrs)
        for name, child in cluster.children.items():
            self._clusters += 1
            with graph.subgraph(name=f"cluster_{self.prefix}{self._clusters}_{_dot_safe(name)}"
                                ) as sub:
                sub.attr(label=child.label, **child.attrs)
                self._write(sub, child)

    # -- nodes -----------------------------------------------------------------------------------
    def kind(self, node: Tensor) -> str:
        return node.op.name if node.op.name in ("input", "param", "constant") else "op"

    def node_label(self, node: Tensor) -> str:
        lines = [self._title(node)]
        f = self.look.output_name
        header = None
        if node in self.scene.links:
            header = f"∂{f}/∂{', '.join(_display_name(n) for n in self.scene.links[node])}"
        elif self._is_seed(node):
            header = f"seed ∂{f}/∂{f}"
        if header:
            lines.append(style.colored(style.esc(header), style.GRAD_COLOR,
                                       style.SMALL_FONT_SIZE))
        lines += self._numbers(node)
        return style.html_label(*lines)

    def _is_seed(self, node: Tensor) -> bool:
        """Is ``node`` the ``ones_like(f)`` that backprop from ``f`` starts with?"""
        f = self.scene.forward_output
        return (f is not None and node.op.name == "full_like" and node.inputs[0] is f
                and node.attr.get("value") == 1)

    def _title(self, node: Tensor) -> str:
        kind = self.kind(node)
        type_line = "<br/>" + style.small(style.type_text(node)) if self._shows_type(node) \
            else ""
        if kind == "constant":
            return style.esc(style.leaf_title(node)) + type_line
        if kind != "op":
            return style.bold(style.leaf_title(node)) + type_line
        if node.op.name == "fused":
            return style.bold(kernels.result_title(node)) + type_line
        operands = [self.inlined.get(i) for i in node.inputs]
        title = style.bold(style.operation_text(node.op.name, operands))
        attrs = style.attrs_text(node)
        return title + ("<br/>" + style.small(attrs) if attrs else "") + type_line

    def _numbers(self, node: Tensor) -> list[str]:
        """The value (green) and gradient (red) lines of a node's label."""
        lines = []
        gradient = self.evaluation.gradients.get(node)
        on_dark = self._overlaid(node) and overlay.is_dark(overlay.gradient_norm([gradient]))
        value = self.evaluation.values.get(node)
        if value is not None and node.op.name != "constant":
            color = style.VALUE_COLOR_ON_DARK if on_dark else style.VALUE_COLOR
            lines.append(style.colored(style.esc(style.summarize(value, self.look.summary)),
                                       color))
        if gradient is not None and self.look.gradients:
            color = style.GRAD_COLOR_ON_DARK if on_dark else style.GRAD_COLOR
            lines.append(style.colored(style.esc(style.summarize(gradient, self.look.summary)),
                                       color))
        return lines

    def _overlaid(self, node: Tensor) -> bool:
        """Is ``node`` coloured by the overlay (a param with a gradient)?"""
        return self.look.overlay and isinstance(node, Param) and \
            node in self.evaluation.gradients

    def node_attrs(self, node: Tensor) -> dict[str, str]:
        attrs = dict(style.KIND_ATTRS[self.kind(node)])
        if node.op.name == "fused":
            attrs["color"] = style.FUSED_COLOR
        if node in self.outputs:
            attrs.update(style.OUTPUT_ATTRS)
        if node in self.scene.backward:
            attrs.update(style.BACKWARD_ATTRS)
            attrs["style"] = attrs.get("style", "") + ",dashed"
        if self._overlaid(node):
            norm = overlay.gradient_norm([self.evaluation.gradients[node]])
            attrs.update(overlay.node_colors(norm))
        attrs["tooltip"] = _tooltip(node)
        return attrs

    def box_label(self, box: Box) -> str:
        if box.elided:
            return style.html_label(style.bold(f"{len(box.members)} more nodes"),
                                    style.small("not drawn (max_nodes)"))
        params = [n for n in box.members if isinstance(n, Param)]
        size = sum(int(np.prod(p.shape)) for p in params)
        name = box.scope.rpartition("/")[2]
        if box.phase == "backward":
            lines = [style.bold(name), style.colored("backward", style.GRAD_COLOR,
                                                     style.SMALL_FONT_SIZE),
                     style.small(f"{len(box.members)} nodes")]
        else:
            lines = [style.bold(name),
                     style.small(f"{len(box.members)} nodes · {size:,} params")]
        norm = self._box_gradient_norm(box)
        if norm is not None and self.look.gradients:
            text = style.esc(f"‖grad‖ {style.format_number(norm)}")
            # on the overlay's fill the text takes the fill's contrasting colour
            lines.append(text if self.look.overlay else style.colored(text, style.GRAD_COLOR))
        return style.html_label(*lines)

    def _box_gradient_norm(self, box: Box) -> float | None:
        grads = [self.evaluation.gradients[n] for n in box.members
                 if isinstance(n, Param) and n in self.evaluation.gradients]
        return overlay.gradient_norm(grads) if grads else None

    def box_attrs(self, box: Box) -> dict[str, str]:
        attrs = dict(style.KIND_ATTRS["elided" if box.elided else "collapsed"])
        if box.phase == "backward":
            attrs.update(style.BACKWARD_ATTRS)
            attrs["style"] += ",dashed"
        norm = self._box_gradient_norm(box)
        if self.look.overlay and norm is not None:
            attrs.update(overlay.node_colors(norm))
        return attrs

    # -- edges -----------------------------------------------------------------------------------
    def edges(self) -> list[Edge]:
        """Data flow (labelled with the tensor's type), training updates and gradient links.
        Everything flowing between the same two items where one is a box is one edge."""
        out: list[Edge] = []
        bundled: dict[tuple[str, str], dict[Tensor, None]] = {}
        for node in self.scene.nodes:
            head = self.item_id(node)
            if head is None or node in self.bodies:
                continue  # a kernel's inputs enter its instructions (see _kernel_body)
            folded = node in self.folding.box_of
            for inp in node.inputs:
                tail = self.item_id(inp)
                if tail is None or tail == head:
                    continue
                if folded or inp in self.folding.box_of:
                    bundled.setdefault((tail, head), {})[inp] = None
                else:
                    out.append(Edge(tail, head, tensors=(inp,)))
        out += [Edge(tail, head, tensors=tuple(ts)) for (tail, head), ts in bundled.items()]
        for body in self.bodies.values():
            out += body.edges
        for param, value in self.scene.updates:
            tail, head = self.item_id(value), self.item_id(param)
            if tail is not None and head is not None and tail != head:
                out.append(Edge(tail, head, dict(style.UPDATE_EDGE)))
        for gradient, forward_nodes in self.scene.links.items():
            for target in forward_nodes:
                if self.drawn(target) and self.drawn(gradient):  # not to or from a box
                    out.append(Edge(self.ids[target], self.ids[gradient],
                                    dict(style.GRADIENT_LINK_EDGE)))
        return out

    def _kernel_body(self, node: Tensor) -> kernels.Body:
        sources = [kernels.Source(constant=self.inlined[i]) if i in self.inlined
                   else kernels.Source(id=self.item_id(i), tensor=i) for i in node.inputs]
        return kernels.body(node, self.ids[node], sources)


def _types_text(tensors: tuple[Tensor, ...]) -> str:
    """The label of an edge carrying ``tensors``: one type, ``3 × f32 (4,)``, or a count."""
    types = {style.type_text(t) for t in tensors}
    if len(tensors) == 1:
        return types.pop()
    return f"{len(tensors)} × {types.pop()}" if len(types) == 1 else f"{len(tensors)} tensors"


def _dot_safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _display_name(node: Tensor) -> str:
    """How ``∂f/∂x`` names the node: a leaf by its name, an op by its op."""
    return node.name or style.OP_SYMBOLS.get(node.op.name, node.op.name)


def _tooltip(node: Tensor) -> str:
    """What hovering over a node in an SVG viewer shows: its op, type and user line."""
    loc = node.location
    where = f" built at {PurePath(loc.filename).name}:{loc.lineno}" if loc else ""
    return f"{node.op.name}: {node.dtype}{style.format_shape(node.shape)}{where}"


def graph_label(lines: list[str]) -> dict[str, Any]:
    """The graph's caption (title, formula, notes, legends) as an HTML-like label."""
    if not lines:
        return {}
    rows = "".join(f'<tr><td align="left">{line}</td></tr>' for line in lines)
    return {"label": f'<<table border="0" cellborder="0" cellspacing="2">{rows}</table>>'}
