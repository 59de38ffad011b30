"""Drawing gradient graphs: the backward pass styled apart and linked to what it
differentiates, and the forward | backward layout."""

import numpy as np
import pytest

import graphc as gx
import graphc.viz as viz
from graphc.viz import style
from graphc.viz.scene import scene_of
from graphc.viz.scopes import drawing_scopes
from tests.viz.dot import GREEN, colored, parse


@pytest.fixture
def fxyz():
    x, y, z = gx.input("x", ()), gx.input("y", ()), gx.input("z", ())
    return x, y, z, (x + y) * (y - z)


def links(dot):
    """(forward node's first line, gradient node's id) of every dotted link."""
    return sorted((dot.text(t).split("\n")[0], h) for t, h, a in dot.edges
                  if a.get("style") == "dotted")


def is_backward(attrs):
    return attrs.get("color") == style.BACKWARD_COLOR and "dashed" in attrs["style"]


def test_the_gradient_graph_is_recognised_and_styled_apart(fxyz):
    x, y, z, f = fxyz
    drawing = viz.draw(gx.grad(f, [x, y, z]))
    dot = parse(drawing.source)
    forward = [dot.text(n).split("\n")[0] for n, a in dot.nodes.items() if not is_backward(a)]
    assert sorted(forward) == ["+", "x", "y", "z", "×", "−"]
    assert len(dot.nodes) == len(gx.toposort(gx.grad(f, [x, y, z])))
    headers = sorted(line for n in dot.nodes for line in dot.text(n).split("\n")
                     if "∂f/∂" in line)
    assert headers == ["seed ∂f/∂f", "∂f/∂x", "∂f/∂y", "∂f/∂z"]
    assert [title for title, _ in links(dot)] == ["x", "y", "z"]


def test_gradient_values_appear_in_the_gradient_graph(fxyz):
    x, y, z, f = fxyz
    dot = parse(viz.draw(gx.grad(f, [x, y, z]), values={x: 1.0, y: 2.0, z: 3.0}).source)
    linked = {title: colored(dot.nodes[g]["label"], GREEN) for title, g in links(dot)}
    assert linked == {"x": ["-1.000"], "y": ["2.000"], "z": ["-3.000"]}


def test_a_gradient_shared_by_two_inputs_links_to_both():
    x, y = gx.input("x", ()), gx.input("y", ())
    dot = parse(viz.draw(gx.grad(x + y, [x, y])).source)
    (gradient,) = {g for _, g in links(dot)}  # ∂(x+y)/∂x and ∂/∂y are the seed itself
    assert [title for title, _ in links(dot)] == ["x", "y"]
    assert "∂f/∂x, y" in dot.text(gradient)


def test_forward_can_be_named(fxyz):
    x, y, z, f = fxyz
    g = gx.grad(f, x)
    assert scene_of(g).forward_output is f
    assert scene_of(g, forward=f).forward_output is f
    with pytest.raises(ValueError, match="must be a tensor of the drawn graph"):
        viz.draw(g, forward=gx.input("other", ()))


def test_a_forward_graph_has_no_backward_pass(fxyz):
    f = fxyz[3]
    scene = scene_of(f)
    assert scene.forward_output is None and not scene.backward and not scene.links


def test_a_training_graph_with_loss_and_gradients():
    x, W, loss = layer()
    scene = scene_of([loss, gx.grad(loss, W)])
    assert scene.forward_output is loss
    assert scene.links == {gx.grad(loss, W): (W,)}


def layer():
    x = gx.input("x", (4, 3), "float64")
    with gx.scope("layer1"):
        W = gx.param("W", np.random.default_rng(0).normal(size=(3, 2)))
        h = gx.tanh(x @ W)
    return x, W, gx.sum(h * h)


def test_unscoped_gradient_nodes_are_drawn_in_the_layer_they_differentiate():
    x, W, loss = layer()
    grad = gx.grad(loss, W)
    scene = scene_of([loss, grad])
    scopes = drawing_scopes(scene)
    assert scopes[grad] == "layer1" and grad.scope == ""
    backward_in_layer = [n for n in scene.backward if scopes[n] == "layer1"]
    assert len(backward_in_layer) >= 3
    # folding the layer folds its forward and its backward pass, each into a box
    drawing = viz.draw([loss, grad], collapse="layer1")
    dot = parse(drawing.source)
    boxes = {dot.text(n) for n, a in dot.nodes.items() if a["shape"] == "box3d"}
    assert boxes == {"layer1\n3 nodes · 6 params",
                     f"layer1\nbackward\n{len(backward_in_layer)} nodes"}


def test_side_by_side_draws_the_backward_graph_of_a_forward_target(fxyz):
    x, y, z, f = fxyz
    drawing = viz.draw(f, values={x: 1.0, y: 2.0, z: 3.0}, backward=True,
                       layout="side_by_side")
    dot = parse(drawing.source)
    forward = dot.cluster_named("forward pass")
    backward = dot.cluster_named("backward pass (gradients)")
    assert sorted(dot.text(n).split("\n")[0] for n in dot.members[forward]) == \
        ["+", "x", "y", "z", "×", "−"]
    assert all(is_backward(dot.nodes[n]) for n in dot.members[backward])
    assert {t for t, _ in links(dot)} == {"x", "y", "z"}
    for _, gradient in links(dot):
        assert gradient in dot.members[backward]


def test_side_by_side_of_a_gradient_graph_splits_it(fxyz):
    x, y, z, f = fxyz
    dot = parse(viz.draw(gx.grad(f, [x, z]), layout="side_by_side").source)
    forward = dot.cluster_named("forward pass")
    assert len(dot.members[forward]) == 6


def test_side_by_side_needs_a_scalar_output():
    v = gx.input("v", (3,))
    with pytest.raises(gx.GradientError, match="scalar output"):
        viz.draw(v * 2.0, layout="side_by_side")
