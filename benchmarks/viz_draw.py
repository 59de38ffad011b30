"""Time to draw a large training graph: build the DOT, then render it to SVG.

The graph: an MLP of ``LAYERS`` scoped layers (each a dense layer, layer norm and GELU),
its mean cross-entropy loss and ``gx.grad`` of the loss with respect to every param,
drawn as one target ``[loss, *grads]`` (about 2,000 nodes). Above ``max_nodes`` (500)
the drawing collapses scopes automatically: each layer's forward and backward pass
become two boxes, and edges go bare (their labels would double the layout's ranks).
Rows: that automatic drawing; the same folding asked for by name (edge labels kept);
and two small graphs drawn whole, for scale. Drawing the 2,000-node graph whole
(``max_nodes=None``) is not in the table: its layout ran past a 120 s timeout
(measured with graphviz-pure), which is why large graphs are folded.

Run: ``python benchmarks/viz_draw.py`` (the renderer: system ``dot`` if on PATH, else
``graphviz-pure``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import graphc as gx
from graphc import viz
from graphc.viz import render

LAYERS = 34
WIDTH = 16
REPEATS = 3


def training_graph(layers: int, width: int = WIDTH) -> list[gx.Tensor]:
    """``[loss, *∂loss/∂params]`` of an MLP with ``layers`` scoped layers."""
    rng = np.random.default_rng(0)
    x = gx.input("x", ("batch", width))
    labels = gx.input("labels", ("batch",), "int64")
    h = x
    params = []
    for k in range(layers):
        with gx.scope(f"layer{k + 1}"):
            W = gx.param("W", rng.normal(0, width ** -0.5, (width, width)).astype("float32"))
            b = gx.param("b", np.zeros(width, "float32"))
            gain = gx.param("gain", np.ones(width, "float32"))
            z = h @ W + b
            mean = gx.mean(z, axis=-1, keepdims=True)
            var = gx.mean(gx.square(z - mean), axis=-1, keepdims=True)
            h = gx.gelu((z - mean) / gx.sqrt(var + 1e-5) * gain)
            params += [W, b, gain]
    loss = gx.cross_entropy(h, labels, reduction="mean")
    return [loss, *gx.grad(loss, params)]


def best_time(fn: Callable[[], object]) -> tuple[float, object]:
    """The fastest of ``REPEATS`` runs, in seconds, and the last result."""
    times, result = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def drawn_nodes(dot: str) -> int:
    """Node statements in DOT source (``id [attrs]``, not edges or defaults)."""
    heads = re.findall(r"^\s*(\S+) \[", dot, flags=re.MULTILINE)
    return sum(h not in ("graph", "node", "edge") for h in heads)


def measure(name: str, target: list[gx.Tensor], **options: object) -> list[str]:
    """One table row: nodes in the graph, items drawn, DOT and SVG times."""
    build_s, drawing = best_time(lambda: viz.draw(target, **options))
    svg_s, svg = best_time(lambda: drawing.pipe(format="svg"))
    drawn = drawn_nodes(drawing.source)
    return [name, f"{drawing.node_count:,}", f"{drawn:,}",
            "yes" if drawing.auto_collapsed else "no", f"{build_s * 1e3:.0f}",
            f"{svg_s * 1e3:.0f}", f"{(build_s + svg_s):.2f}", f"{len(svg) / 1e3:.0f}"]


def main() -> None:
    renderer = render.find_renderer()
    print(f"renderer: {renderer and Path(renderer).name}; best of {REPEATS} runs\n")
    big = training_graph(LAYERS)
    small = training_graph(2)
    medium = training_graph(6)
    rows = [
        measure(f"MLP {LAYERS} layers + grad, auto-collapse", big),
        measure(f"MLP {LAYERS} layers + grad, collapse=layer*", big,
                collapse=[f"layer{k + 1}" for k in range(LAYERS)]),
        measure("MLP 2 layers + grad, everything drawn", small, max_nodes=None),
        measure("MLP 6 layers + grad, everything drawn", medium, max_nodes=None),
    ]
    header = ["graph", "nodes", "drawn", "auto", "DOT ms", "SVG ms", "total s", "SVG kB"]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) if k == 0 else c.rjust(w)
                        for k, (c, w) in enumerate(zip(row, widths, strict=True))))


if __name__ == "__main__":
    main()
