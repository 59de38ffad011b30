"""Values in green and gradients in red: the lecture examples, tensors, and mistakes."""

import numpy as np
import pytest

import graphc as gx
import graphc.viz as viz
from graphc.errors import ArgumentError, GradientError
from graphc.viz.style import format_number
from tests.viz.dot import GREEN, RED, colored, parse


def stats(a):
    """How a tensor is summarized: its mean and range."""
    return f"μ {format_number(a.mean())}  [{format_number(a.min())}, {format_number(a.max())}]"


def numbers(dot, node_id):
    label = dot.nodes[node_id]["label"]
    return colored(label, GREEN), colored(label, RED)


@pytest.fixture
def fxyz():
    x, y, z = gx.input("x", ()), gx.input("y", ()), gx.input("z", ())
    return x, y, z, (x + y) * (y - z)


def test_fxyz_values_and_gradients(fxyz):
    x, y, z, f = fxyz
    dot = parse(viz.draw(f, values={x: 1.0, y: 2.0, z: 3.0}, backward=True).source)
    assert len(dot.nodes) == 6
    #             node   value     ∂f/∂node
    expected = {"x": ("1.000", "-1.000"), "y": ("2.000", "2.000"), "z": ("3.000", "-3.000"),
                "+": ("3.000", "-1.000"), "−": ("-1.000", "3.000"), "×": ("-3.000", "1.000")}
    for title, (value, gradient) in expected.items():
        assert numbers(dot, dot.one(title)) == ([value], [gradient]), title


def test_values_without_backward_show_no_gradients(fxyz):
    x, y, z, f = fxyz
    dot = parse(viz.draw(f, values={"x": 1.0, "y": 2.0, "z": 3.0}).source)
    assert numbers(dot, dot.one("×")) == (["-3.000"], [])
    assert not any(colored(a["label"], RED) for a in dot.nodes.values())


def test_logistic_neuron():
    x0, x1 = gx.input("x0", ()), gx.input("x1", ())
    w0, w1, w2 = gx.input("w0", ()), gx.input("w1", ()), gx.input("w2", ())
    a = gx.sigmoid(w0 * x0 + w1 * x1 + w2)
    values = {"x0": -1.0, "x1": -2.0, "w0": 2.0, "w1": -3.0, "w2": -3.0}
    dot = parse(viz.draw(a, values=values, backward=True).source)
    assert numbers(dot, dot.one("sigmoid")) == (["0.731"], ["1.000"])
    gradients = {"x0": "0.393", "w0": "-0.197", "x1": "-0.590", "w1": "-0.393", "w2": "0.197"}
    for name, gradient in gradients.items():
        assert numbers(dot, dot.one(name)) == ([f"{values[name]:.3f}"], [gradient]), name
    # every intermediate carries σ'(1) = 0.197 back
    for node_id in dot.find("+") + dot.find("×"):
        assert numbers(dot, node_id)[1] == ["0.197"]


def mlp():
    rng = np.random.default_rng(0)
    x = gx.input("x", ("batch", 3), "float64")
    with gx.scope("layer1"):
        W = gx.param("W", rng.normal(size=(3, 4)))
        h = gx.tanh(x @ W)
    loss = gx.mean(gx.square(h))
    return x, W, h, loss


def test_tensors_show_stats_and_gradients_of_intermediates():
    x, W, h, loss = mlp()
    xv = np.random.default_rng(1).normal(size=(5, 3))
    dot = parse(viz.draw(loss, values={x: xv}, backward=True).source)
    hv = np.tanh(xv @ W.value)
    value, gradient = numbers(dot, dot.one("tanh"))
    assert value == [stats(hv)]
    dh = 2 * hv / hv.size  # ∂ mean(h²) / ∂h
    assert gradient == [stats(dh)]
    dW = xv.T @ (dh * (1 - hv ** 2))
    assert numbers(dot, dot.one("W"))[1] == [stats(dW)]


@pytest.mark.parametrize("array, summary, text", [
    (np.array([0.5, -1.0, 2.0]), "values", "[0.500, -1.000, 2.000]"),
    (np.arange(6.0), "values", "[0.000, 1.000, 2.000, 3.000, …]"),
    (np.arange(6.0), "stats", "μ 2.500  [0.000, 5.000]"),
    (np.array([1e-7, 2e-7]), "stats", "μ 1.50e-07  [1.00e-07, 2.00e-07]"),
])
def test_summaries(array, summary, text):
    v = gx.input("v", array.shape, "float64")
    dot = parse(viz.draw(v * 1.0, values={v: array}, summary=summary).source)
    assert colored(dot.nodes[dot.one("v")]["label"], GREEN) == [text]


def test_integer_and_boolean_values():
    k = gx.input("k", (3,), "int64")
    dot = parse(viz.draw(k > 1, values={"k": np.array([0, 1, 2])}).source)
    assert colored(dot.nodes[dot.one("k")]["label"], GREEN) == ["μ 1.000  [0, 2]"]
    assert colored(dot.nodes[dot.one("> 1")]["label"], GREEN) == ["[False, False, True]"]


def test_params_keep_their_values_and_updates_are_not_applied():
    p = gx.param("p", np.array(2.0))
    x = gx.input("x", (), "float64")
    graph = gx.Graph.build([x], [p * x], updates={p: p + 1.0})
    dot = parse(viz.draw(graph, values={"x": 3.0}).source)
    assert colored(dot.nodes[dot.one("×")]["label"], GREEN) == ["6.000"]
    assert float(p.value) == 2.0
    assert any(a.get("label") == "update" for _, _, a in dot.edges)


@pytest.mark.parametrize("values, message", [
    ({"x": 1.0}, "no value for 'y', 'z'"),
    ({"x": 1.0, "y": 2.0, "z": 3.0, "w": 0.0}, "'w', which is not an input"),
    ({1: 0.0}, "keys are inputs or input names"),
])
def test_values_mistakes_are_clear(fxyz, values, message):
    f = fxyz[3]
    with pytest.raises(ArgumentError, match=message):
        viz.draw(f, values=values)


def test_a_param_as_a_values_key_is_refused():
    p = gx.param("p", 1.0)
    with pytest.raises(ArgumentError, match="is a param"):
        viz.draw(p * 2.0, values={p: 3.0})


def test_backward_needs_values_for_the_inputs(fxyz):
    with pytest.raises(ArgumentError, match="no value for 'x', 'y', 'z'"):
        viz.draw(fxyz[3], backward=True)


def test_backward_of_a_graph_without_inputs_needs_no_values():
    p = gx.param("p", 3.0)
    dot = parse(viz.draw(p * p, backward=True).source)
    assert numbers(dot, dot.one("p")) == (["3.000"], ["6.000"])


@pytest.mark.parametrize("build, message", [
    (lambda v: v * 2.0, r"needs a scalar output, this one has shape \(3,\)"),
    (lambda v: [gx.sum(v), gx.sum(v * v)], "one scalar output, this graph has 2 outputs"),
])
def test_backward_needs_one_scalar_output(build, message):
    v = gx.input("v", (3,), "float64")
    with pytest.raises(GradientError, match=message):
        viz.draw(build(v), values={v: np.ones(3)}, backward=True)


def test_a_symbolic_batch_is_evaluated_at_the_given_size():
    x = gx.input("x", ("batch", 2), "float64")
    dot = parse(viz.draw(gx.sum(x, axis=1), values={"x": np.ones((3, 2))},
                         summary="values").source)
    assert colored(dot.nodes[dot.one("sum")]["label"], GREEN) == ["[2.000, 2.000, 2.000]"]


def test_a_graph_input_the_outputs_do_not_use_may_be_given_or_not():
    x, unused = gx.input("x", (), "float64"), gx.input("unused", (), "float64")
    graph = gx.Graph.build([x, unused], [x * 2.0])
    for values in ({"x": 1.0}, {"x": 1.0, "unused": 5.0}):
        dot = parse(viz.draw(graph, values=values).source)
        assert colored(dot.nodes[dot.one("× 2")]["label"], GREEN) == ["2.000"]
