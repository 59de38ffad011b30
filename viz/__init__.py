"""graphc.viz: draw graphs with Graphviz, values in green and gradients in red.

Usage
-----
::

    import graphc as gx
    from graphc import viz

    x, y, z = gx.input("x", ()), gx.input("y", ()), gx.input("z", ())
    f = (x + y) * (y - z)
    d = viz.draw(f, values={x: 1.0, y: 2.0, z: 3.0}, backward=True)  # a graphviz.Digraph
    d.render("fxyz", format="svg")           # or: viz.save(f, "fxyz.svg", values=..., ...)
    viz.save(gx.grad(f, [x, y]), "grad.svg")   # the gradient graph, backward nodes in red
    viz.save(loss, "mlp.png", values=batch, overlay=True, collapse="layer1")
    viz.save(viz.compare(loss, gx.optimize(loss)), "opt.svg")   # before | after
    viz.latex(f)                             # '\\left(x + y\\right) \\left(y - z\\right)'

What is drawn
-------------
``draw(target, values=None, backward=False, *, summary="stats", rankdir="LR",
collapse=None, overlay=False, title=None, formula=False, layout="single",
max_nodes=500, forward=None) -> Drawing``

* ``target``: a Tensor, a list of Tensors, a ``gx.Graph`` (its training updates are
  dashed edges into the params), or a compiled function (the optimized graph it runs).
* Nodes: inputs are blue boxes, params amber cylinders, constants grey notes, ops
  white rounded boxes (arithmetic by its symbol: ``+ − × ÷ @ < ≥``, others by name with
  their attributes, ``sum axis=(1,)``); graph outputs have a double outline.
  One-element constants (and expressions of constants only) are written into their
  consumer's label (``+ 1``, ``1 −``, ``max 0``, ``× reciprocal(16)``) instead of
  being nodes. Edges are labelled with the dtype and shape of the
  tensor they carry (``f32 (batch, 4)``, symbolic dims by name); inputs and params show
  their own type instead, once; when every edge carries the same type, the caption
  says it once (``every edge carries f32 ()``) and the edges stay bare.
* ``values={input or input name: array}``: the graph is evaluated (numpy backend, no
  optimization) and each node shows its value in green: a scalar in full, a tensor by
  ``summary``: ``"stats"`` (``μ mean [min, max]``) or ``"values"`` (the first few).
* ``backward=True``: beside the value, in red, ∂f/∂node of the scalar output ``f``
  for every node (inputs, params and intermediates), all in the same compiled call.
  A non-scalar output is an error (reduce it first).
* Scopes (``with gx.scope("layer1"):``) are nested clusters. ``collapse="layer1"`` (a
  full path or its last part; or a list) folds a scope into one box labelled with its
  name, node count and parameter count (forward and backward nodes of a scope fold into
  two boxes, so the folded graph still flows left to right). Above ``max_nodes`` drawn
  nodes, scopes are collapsed automatically, the deepest level that fits first
  (``collapse=None`` and ``"auto"`` both do this; ``max_nodes=None`` turns it off), and
  the caption says what was folded; if even that is too many, the nodes farthest from
  the outputs are left out, so the layout never takes long.
* ``overlay=True``: params (and collapsed boxes) coloured by log10 of their gradient's
  norm on a fixed scale from 1e-6 (blue, vanishing) to 1e3 (red, exploding), with a
  legend; implies ``backward``.
* Fused kernels (op ``fused``, from ``gx.optimize``) are dashed purple clusters named
  after the kernel, holding the scalar program's instructions as small nodes; the
  kernel's inputs enter the instructions that read them.
* ``formula=True`` puts ``f = ...`` (via ``gx.to_sympy``) in the caption; ``title=``
  adds a title.

Gradient graphs
---------------
``draw(gx.grad(f, [x, y]))`` recognises a gradient graph by the seed ``ones_like(f)``
that ``gx.grad`` starts from (or pass ``forward=f``): nodes ``f`` depends on are the
forward pass, all others the backward pass, drawn with red dashed outlines. Each
gradient output is labelled ``∂f/∂x`` and linked to ``x`` by a dotted red line (the
seed reads ``seed ∂f/∂f``); which
node it differentiates is found by identity (hash-consed nodes: backpropagating from
``f`` rebuilds the very same gradient nodes), never by guessing. Gradient nodes built
outside any scope are drawn in the scope of the layer they differentiate.
``layout="side_by_side"`` puts the forward pass and the backward graph in two clusters
(for a forward target, the backward graph of ``f`` is built to show it).

Saving, rendering, Jupyter
--------------------------
* ``save(target, path, **draw_kwargs) -> Path``: the suffix picks the format (``.svg``,
  ``.png`` rendered; ``.dot``, ``.gv`` the source); ``target`` may be a ``Drawing``.
* ``compare(before, after, report=None) -> Drawing``: two graphs side by side, the
  optimizer's report (``gx.optimize(y, explain=True)``) below in monospace.
* ``latex(f) -> str``: LaTeX of a scalar graph's formula.
* ``Drawing`` is a ``graphviz.Digraph`` (``.source`` is the DOT text) whose ``pipe``
  and ``render`` use graphc's renderer shim (``graphc.viz.render``): the system ``dot``
  if on PATH, else the ``graphviz-pure`` executable installed with graphc (beside the
  Python interpreter, then on PATH), with a timeout; with neither, the ``.dot`` file is
  kept and ``RendererNotFound`` says how to render it. In Jupyter a Drawing shows
  inline as SVG (``_repr_svg_``, ``_repr_mimebundle_``).
"""

from graphc.viz.api import compare, draw, save
from graphc.viz.drawing import Drawing
from graphc.viz.formula import latex
from graphc.viz.render import RendererNotFound, RenderError

__all__ = ["draw", "save", "compare", "latex", "Drawing", "RenderError", "RendererNotFound"]
