"""The gradient-norm overlay, formulas in titles and LaTeX, and before/after drawings."""

import numpy as np
import pytest

import graphc as gx
import graphc.viz as viz
from graphc.viz import overlay, style
from tests.viz.dot import colored, parse


@pytest.mark.parametrize("norm, index", [
    (0.0, 0), (1e-9, 0), (1e-6, 0), (1.2e-5, 1), (0.04, 5), (0.5, 6), (1.0, 6), (3.0, 6),
    (40.0, 8), (1e3, 9), (1e12, 9), (float("nan"), 0),
])
def test_one_colour_per_decade_of_the_norm(norm, index):
    assert overlay.decade(norm) == index


def test_gradient_norm_of_several_arrays():
    assert overlay.gradient_norm([np.array([3.0]), np.array([[4.0]])]) == 5.0


def scaled_layers(scales):
    """Layers whose params get gradients of very different sizes: ``y = Σ s_k · w_k``."""
    x = gx.input("x", (3,), "float64")
    params, total = [], 0.0
    for k, s in enumerate(scales):
        with gx.scope(f"layer{k}"):
            w = gx.param("w", np.ones(3))
            params.append(w)
            total = total + gx.sum(w * x) * s
    return x, params, total


def test_params_are_coloured_by_their_gradient_norm_with_a_legend():
    x, params, y = scaled_layers([1e-7, 1.0, 1e4])
    xv = np.array([1.0, 2.0, 2.0])  # ‖x‖ = 3, so ‖∂y/∂w_k‖ = 3·s_k
    dot = parse(viz.draw(y, values={x: xv}, overlay=True).source)
    fills = [dot.nodes[n]["fillcolor"] for n in dot.find("w")]
    assert fills == [overlay.PALETTE[overlay.decade(3 * s)] for s in (1e-7, 1.0, 1e4)]
    assert fills[0] == overlay.PALETTE[0] and fills[2] == overlay.PALETTE[-1]
    dark = dot.nodes[dot.find("w")[0]]  # dark fill, light text
    assert dark["fontcolor"] == "white"
    assert colored(dark["label"], style.VALUE_COLOR_ON_DARK) == ["μ 1.000  [1.000, 1.000]"]
    assert colored(dark["label"], style.GRAD_COLOR_ON_DARK) == [  # ∂y/∂w0 = 1e-7·x
        "μ 1.67e-07  [1.00e-07, 2.00e-07]"]
    assert "vanishing" in dot.graph["label"] and "exploding" in dot.graph["label"]
    assert all(f'bgcolor="{c}"' in dot.graph["label"] for c in overlay.PALETTE)


def test_collapsed_boxes_are_coloured_by_their_params_gradient_norm():
    x, params, y = scaled_layers([1e-7, 1.0])
    dot = parse(viz.draw(y, values={x: np.ones(3)}, overlay=True,
                         collapse=["layer0", "layer1"]).source)
    box0, box1 = dot.one("layer0"), dot.one("layer1")
    assert dot.nodes[box0]["fillcolor"] == overlay.PALETTE[overlay.decade(np.sqrt(3) * 1e-7)]
    assert dot.nodes[box1]["fillcolor"] == overlay.PALETTE[overlay.decade(np.sqrt(3))]
    assert "‖grad‖ 1.732" in dot.text(box1)


def test_overlay_needs_a_scalar_output():
    v = gx.input("v", (3,), "float64")
    with pytest.raises(gx.GradientError):
        viz.draw(v * 2.0, values={v: np.ones(3)}, overlay=True)


@pytest.fixture
def fxyz():
    x, y, z = gx.input("x", ()), gx.input("y", ()), gx.input("z", ())
    return (x + y) * (y - z)


def test_latex(fxyz):
    assert viz.latex(fxyz) == r"\left(x + y\right) \left(y - z\right)"
    assert viz.latex([fxyz]) == viz.latex(fxyz)


def test_latex_needs_one_output(fxyz):
    with pytest.raises(ValueError, match="one output, this one has 2"):
        viz.latex([fxyz, fxyz * 2.0])


def test_the_formula_in_the_title(fxyz):
    dot = parse(viz.draw(fxyz, formula=True).source)
    assert "f = (x + y)·(y − z)" in dot.graph["label"]


def test_the_formula_of_a_gradient_graph_is_the_forward_output_s(fxyz):
    x = next(n for n in gx.toposort([fxyz]) if n.name == "x")
    dot = parse(viz.draw(gx.grad(fxyz, x), formula=True).source)
    assert "f = (x + y)·(y − z)" in dot.graph["label"]


def test_a_formula_needs_one_scalar_output():
    v = gx.input("v", (3,))
    with pytest.raises(ValueError, match="one scalar output"):
        viz.draw(v * 2.0, formula=True)


def test_compare_puts_before_and_after_side_by_side_with_the_report():
    x = gx.input("x", (4, 3))
    y = gx.sum(gx.square(gx.tanh(x) * 2.0 + 1.0))
    optimized, report = gx.optimize(y, explain=True)
    drawing = viz.compare(y, optimized, report)
    dot = parse(drawing.source)
    before, after = dot.cluster_named("before: 8 nodes"), dot.cluster_named(
        f"after: {len(gx.toposort([optimized]))} nodes")
    assert dot.parent[before] is None and dot.parent[after] is None
    assert not set(dot.members[before]) & set(dot.members[after])
    assert len(dot.members[before]) == 6  # the two scalar constants are in the labels
    # an invisible edge orders them: before on the left, after on the right
    (tail, head) = [(t, h) for t, h, a in dot.edges if a.get("style") == "invis"][0]
    assert tail in dot.members[before] and head in dot.members[after]
    assert "fuse" in dot.graph["label"] and dot.graph["labelloc"] == "b"
