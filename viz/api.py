"""``draw``, ``save`` and ``compare``: the public entry points of ``graphc.viz``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from graphc.errors import GradientError
from graphc.graph import toposort
from graphc.tensor import Tensor
from graphc.viz import build, overlay, render, style
from graphc.viz.drawing import Drawing
from graphc.viz.evaluate import Evaluation, evaluate
from graphc.viz.formula import formula_text
from graphc.viz.scene import Scene, gradient_nodes, scene_of, with_backward_pass
from graphc.viz.scopes import Folding, drawing_scopes, plan_folding

SUMMARIES = ("stats", "values")
LAYOUTS = ("single", "side_by_side")
RANKDIRS = ("LR", "TB", "RL", "BT")
#: ``save`` formats by suffix: rendered, or the DOT source itself.
RENDERED_SUFFIXES = {".svg": "svg", ".png": "png"}
SOURCE_SUFFIXES = (".dot", ".gv")
DEFAULT_MAX_NODES = 500


def draw(target: Any, values: Mapping[Any, Any] | None = None, backward: bool = False, *,
         summary: str = "stats", rankdir: str = "LR",
         collapse: str | Sequence[str] | None = None, overlay: bool = False,
         title: str | None = None, formula: bool = False, layout: str = "single",
         max_nodes: int | None = DEFAULT_MAX_NODES, forward: Tensor | None = None) -> Drawing:
    """Draw a graph; see ``graphc.viz`` for the whole story.

    Parameters
    ----------
    target : Tensor, list of Tensor, gx.Graph or compiled function
        What to draw (a compiled function: the optimized graph it runs).
    values : mapping, optional
        ``{input or input name: array}``: evaluate the graph and show each node's value
        (green). Params use their current values.
    backward : bool
        Also show ∂f/∂node (red) for every node, ``f`` the scalar output.
    summary : {"stats", "values"}
        How a tensor's value is shown: mean and range, or the first few values.
    rankdir : {"LR", "TB", "RL", "BT"}
        Direction of the data flow.
    collapse : str, list of str or "auto", optional
        Scopes to fold into one box each (a full path or its last part). Whatever is
        given, a graph above ``max_nodes`` has more scopes folded automatically.
    overlay : bool
        Colour each param (and collapsed box) by log10 of its gradient's norm; implies
        ``backward``.
    title : str, optional
        A caption above the drawing.
    formula : bool
        Put the formula of the scalar output in the caption (``gx.to_sympy``).
    layout : {"single", "side_by_side"}
        ``side_by_side``: the forward pass and the backward (gradient) graph in two
        clusters, each gradient linked to its input or param by a dotted red line.
    max_nodes : int or None
        Above this many drawn nodes, fold scopes automatically (and say so); ``None``
        for no limit.
    forward : Tensor, optional
        For a gradient graph (``gx.grad(f, ...)``): the ``f`` it differentiates. Found
        automatically when left out.
    """
    _check_choice("summary", summary, SUMMARIES)
    _check_choice("layout", layout, LAYOUTS)
    _check_choice("rankdir", rankdir, RANKDIRS)
    gradients_shown = backward or overlay
    scene = scene_of(target, forward=forward)
    f: Tensor | None = None
    grads: dict[Tensor, Tensor] = {}
    if gradients_shown or (layout == "side_by_side" and not scene.backward):
        f = _differentiated_output(scene, "layout='side_by_side'" if not gradients_shown
                                   else "backward=True" if backward else "overlay=True")
        grads = scene.gradients if scene.forward_output is f else \
            gradient_nodes(f, toposort([f]))
    if layout == "side_by_side" and not scene.backward:
        scene = with_backward_pass(scene, f, grads)
    evaluation = None
    if values is not None or gradients_shown:
        evaluation = evaluate(scene.nodes, scene.inputs, values or {},
                              grads if gradients_shown else None)

    look = build.Look(summary=summary, gradients=gradients_shown, overlay=overlay)
    drawing = _new_drawing(rankdir)
    builder = _emit(drawing, scene, look, evaluation, collapse=collapse, max_nodes=max_nodes,
                    sectioned=layout == "side_by_side")
    folding = builder.folding
    caption = _caption(scene, folding, look, evaluation, title, formula, max_nodes)
    if builder.common_type:
        caption.append(style.small(f"every edge carries {builder.common_type}"))
    if builder.types_on_nodes:
        caption.append(style.small("a large drawing: each node shows its type, edges are "
                                   "bare (ten times faster to lay out)"))
    drawing.attr(**build.graph_label(caption))
    _record(drawing, scene, folding)
    return drawing


def _emit(graph: Any, scene: Scene, look: build.Look, evaluation: Evaluation | None = None,
          *, collapse: str | Sequence[str] | None = None,
          max_nodes: int | None = DEFAULT_MAX_NODES, prefix: str = "", sectioned: bool = False,
          label_every_edge: bool = False) -> build.Builder:
    """Fold ``scene`` and write it into ``graph``; the builder tells what it did."""
    scope_of = drawing_scopes(scene)
    folding = plan_folding(scene.nodes, scope_of, scene.phase, collapse, max_nodes,
                           build.node_weight(build.inlined_constants(scene)))
    builder = build.Builder(scene, folding, scope_of, look, evaluation, prefix=prefix,
                            sectioned=sectioned, label_every_edge=label_every_edge,
                            types_on_nodes=folding.auto)
    builder.emit(graph)
    return builder


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _differentiated_output(scene: Scene, why: str) -> Tensor:
    """The scalar ``f`` whose gradients are drawn."""
    if scene.forward_output is not None:
        return scene.forward_output
    outputs = list(dict.fromkeys(scene.outputs))
    if len(outputs) != 1:
        raise GradientError(f"{why} draws the gradient of one scalar output, this graph has "
                            f"{len(outputs)} outputs; draw their sum, or one of them")
    f = outputs[0]
    if f.shape != ():
        raise GradientError(f"{why} needs a scalar output, this one has shape "
                            f"{style.format_shape(f.shape)}; reduce it first (gx.sum or "
                            "gx.mean)")
    return f


def _new_drawing(rankdir: str) -> Drawing:
    drawing = Drawing(graph_attr=dict(style.GRAPH_ATTRS, rankdir=rankdir),
                      node_attr=dict(style.NODE_ATTRS), edge_attr=dict(style.EDGE_ATTRS))
    return drawing


def _caption(scene: Scene, folding: Folding, look: build.Look, evaluation: Evaluation | None,
             title: str | None, formula: bool, max_nodes: int | None) -> list[str]:
    """Title, formula, what was folded or left out, and the legends."""
    lines = []
    if title:
        lines.append(f'<font point-size="{style.TITLE_FONT_SIZE}">{style.bold(title)}</font>')
    if formula:
        f = scene.forward_output if scene.forward_output is not None else \
            _single_scalar(scene)
        lines.append(style.esc(formula_text(f)))
    lines += [style.colored(style.esc(note), style.MUTED_COLOR) for note in
              _folding_notes(scene, folding, max_nodes)]
    if evaluation is not None:
        legend = style.colored("value", style.VALUE_COLOR)
        if look.gradients:
            legend += "  " + style.colored(style.esc(f"∂{look.output_name}/∂node"),
                                           style.GRAD_COLOR)
        lines.append(f'<font point-size="{style.SMALL_FONT_SIZE}">{legend}</font>')
    if look.overlay:
        lines.append(overlay.legend())
    return lines


def _single_scalar(scene: Scene) -> Tensor:
    outputs = list(dict.fromkeys(scene.outputs))
    if len(outputs) != 1 or outputs[0].shape != ():
        raise ValueError("formula=True needs a graph with one scalar output")
    return outputs[0]


def _folding_notes(scene: Scene, folding: Folding, max_nodes: int | None) -> list[str]:
    notes = []
    if folding.auto:
        scopes = ", ".join(folding.collapsed[:6]) + (", …" if len(folding.collapsed) > 6 else "")
        notes.append(f"{len(scene.nodes):,} nodes > max_nodes={max_nodes}: scopes collapsed "
                     f"automatically ({scopes or 'none'})")
    if folding.elided:
        notes.append(f"{folding.elided:,} nodes farthest from the outputs are not drawn")
    return notes


def _record(drawing: Drawing, scene: Scene, folding: Folding) -> None:
    drawing.collapsed = tuple(sorted({b.scope for b in folding.boxes if b.scope}))
    drawing.auto_collapsed = folding.auto
    drawing.elided = folding.elided
    drawing.node_count = len(scene.nodes)


def save(target: Any, path: str | Path, **draw_kwargs: Any) -> Path:
    """Draw ``target`` (or take a ``Drawing`` as it is) and write it to ``path``.

    The suffix picks the format: ``.svg`` and ``.png`` are rendered, ``.dot`` and ``.gv``
    hold the DOT source. Missing folders are created. Without a renderer, the ``.dot``
    is written beside and ``RendererNotFound`` says how to render it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RENDERED_SUFFIXES and suffix not in SOURCE_SUFFIXES:
        raise ValueError(f"cannot save {path}: the suffix must be one of "
                         f"{', '.join([*RENDERED_SUFFIXES, *SOURCE_SUFFIXES])}")
    if isinstance(target, Drawing):
        if draw_kwargs:
            raise TypeError(f"save() of a Drawing takes no drawing options, got "
                            f"{', '.join(draw_kwargs)}")
        drawing = target
    else:
        drawing = draw(target, **draw_kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in SOURCE_SUFFIXES:
        path.write_text(drawing.source, encoding="utf-8")
        return path
    try:
        data = render.render(drawing.source, RENDERED_SUFFIXES[suffix])
    except render.RendererNotFound:
        source = path.with_suffix(".dot")
        source.write_text(drawing.source, encoding="utf-8")
        raise render.RendererNotFound(render.how_to_render(source)) from None
    path.write_bytes(data)
    return path


def compare(before: Any, after: Any, report: Any = None) -> Drawing:
    """Two graphs side by side (``before`` left, ``after`` right), e.g. a graph and its
    ``gx.optimize``d form, with ``report`` (an optimizer ``Report``, or any text) below."""
    drawing = _new_drawing("LR")
    anchors = []
    for prefix, name, target in (("a_", "before", before), ("b_", "after", after)):
        scene = scene_of(target)
        with drawing.subgraph(name=f"cluster_{name}") as side:
            side.attr(label=style.html_label(style.bold(f"{name}: {len(scene.nodes)} nodes")),
                      style="rounded", color="#9ca3af")
            builder = _emit(side, scene, build.Look(), prefix=prefix, label_every_edge=True)
        anchors.append((builder, scene))
    (first, first_scene), (second, second_scene) = anchors
    # an invisible edge from the first graph's output to the second's first node puts
    # the second graph to the right of the first (ranks run left to right)
    tail = first.item_id(first_scene.outputs[0])
    head = next((second.item_id(n) for n in second_scene.nodes if second.item_id(n)), None)
    if tail and head:
        drawing.edge(tail, head, style="invis")
    if report is not None:
        lines = str(report).splitlines()
        text = "".join(f"{style.esc(line)}<br align=\"left\"/>" for line in lines)
        drawing.attr(label=f'<<font face="{style.MONO_FONT}" point-size="10">{text}</font>>',
                     labelloc="b", labeljust="l")
    return drawing
