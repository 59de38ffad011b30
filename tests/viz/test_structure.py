"""What the DOT says, without a renderer: node kinds, edges, scopes, collapsing, limits."""

import numpy as np
import pytest

import graphc as gx
import graphc.viz as viz
from graphc.viz import style
from tests.viz.dot import parse


def test_each_kind_of_node_has_its_own_shape_and_colour():
    x = gx.input("x", (2, 3))
    p = gx.param("p", np.ones((2, 3), "float32"))
    c = gx.constant(np.arange(6, dtype="float32").reshape(2, 3))
    dot = parse(viz.draw(gx.tanh(x * p + c)).source)
    kinds = {"x": "input", "p": "param", "[0.000, 1.000, 2.000, 3.000, …]": "constant",
             "×": "op", "tanh": "op"}
    for title, kind in kinds.items():
        attrs = dot.nodes[dot.one(title)]
        for key in ("shape", "fillcolor"):
            assert attrs[key] == style.KIND_ATTRS[kind][key], (title, key)
    shapes = {style.KIND_ATTRS[k]["shape"] + style.KIND_ATTRS[k]["style"]
              for k in ("input", "param", "constant", "op")}
    assert len(shapes) == 4
    assert dot.nodes[dot.one("tanh")]["peripheries"] == "2"  # the output
    assert "peripheries" not in dot.nodes[dot.one("×")]


def test_edges_carry_dtype_and_shape_with_symbolic_dims_by_name():
    x = gx.input("x", ("batch", 3), "float64")
    w = gx.input("w", (3, 4), "float32")
    y = gx.sum(x @ w.astype("float64"), axis=1)
    dot = parse(viz.draw(y).source)
    labels = sorted(a.get("label", "") for _, _, a in dot.edges)
    assert labels == ["", "", "f64 (3, 4)", "f64 (batch, 4)"]  # the leaves show their own
    assert "f64 (batch, 3)" in dot.text(dot.one("x"))
    assert "f32 (3, 4)" in dot.text(dot.one("w"))
    assert "axis=(1,)" in dot.text(dot.one("sum"))


def test_one_type_everywhere_is_said_once():
    x, y = gx.input("x", ()), gx.input("y", ())
    dot = parse(viz.draw(x * y + x).source)
    assert all("label" not in a for _, _, a in dot.edges)
    assert "every edge carries f32 ()" in dot.graph["label"]


@pytest.mark.parametrize("build, title", [
    (lambda x: x + 1.0, "+ 1"),
    (lambda x: 1.0 - x, "1 −"),
    (lambda x: x * 0.5, "× 0.5"),
    (lambda x: gx.maximum(x, 0.0), "max 0"),
    (lambda x: gx.where(x > 0.0, x, 0.0), "where(·, ·, 0)"),
    (lambda x: x * gx.exp(gx.constant(0.0, "float32")), "× exp(0)"),  # a constant expression
])
def test_scalar_constants_are_written_into_their_consumer(build, title):
    x = gx.input("x", (3,))
    dot = parse(viz.draw(build(x)).source)
    assert dot.find(title)
    assert not any(a["shape"] == "note" for a in dot.nodes.values())


def test_the_same_node_used_twice_draws_two_edges():
    x = gx.input("x", ())
    dot = parse(viz.draw(x * x).source)
    assert len(dot.edges) == 2


def layered():
    """Two layers inside an ``mlp`` scope, then an unscoped loss."""
    rng = np.random.default_rng(0)
    x = gx.input("x", (4, 3), "float64")
    h = x
    with gx.scope("mlp"):
        for k, (i, o) in enumerate([(3, 5), (5, 2)], start=1):
            with gx.scope(f"layer{k}"):
                W = gx.param("W", rng.normal(size=(i, o)))
                b = gx.param("b", np.zeros(o))
                h = gx.tanh(h @ W + b)
    return x, gx.sum(h)


def test_scopes_are_nested_clusters():
    _, loss = layered()
    dot = parse(viz.draw(loss).source)
    mlp = dot.cluster_named("mlp")
    layer1, layer2 = dot.cluster_named("layer1"), dot.cluster_named("layer2")
    assert dot.parent[layer1] == dot.parent[layer2] == mlp and dot.parent[mlp] is None
    assert sorted(dot.text(n).split("\n")[0] for n in dot.members[layer1]) == \
        ["+", "@", "W", "b", "tanh"]
    assert dot.one("sum") not in dot.members[mlp]


@pytest.mark.parametrize("collapse, boxes", [
    ("layer1", {"layer1": "5 nodes · 20 params"}),
    ("mlp/layer2", {"layer2": "5 nodes · 12 params"}),
    (["layer1", "layer2"], {"layer1": "5 nodes · 20 params", "layer2": "5 nodes · 12 params"}),
    ("mlp", {"mlp": "10 nodes · 32 params"}),
])
def test_collapse_folds_a_scope_into_a_box(collapse, boxes):
    x, loss = layered()
    full = parse(viz.draw(loss).source)
    drawing = viz.draw(loss, collapse=collapse)
    dot = parse(drawing.source)
    found = {dot.text(n).split("\n")[0]: dot.text(n).split("\n")[1]
             for n, a in dot.nodes.items() if a.get("shape") == "box3d"}
    assert found == boxes
    folded = sum(int(text.split()[0]) for text in boxes.values())
    assert len(dot.nodes) == len(full.nodes) - folded + len(boxes)
    assert drawing.collapsed == tuple(sorted(
        {"layer1": "mlp/layer1", "layer2": "mlp/layer2", "mlp": "mlp"}[b] for b in boxes))
    assert not drawing.auto_collapsed


def test_edges_into_and_out_of_a_box_are_bundled():
    x, loss = layered()
    dot = parse(viz.draw(loss, collapse="layer2").source)
    box = dot.one("layer2")
    into = [a.get("label") for t, h, a in dot.edges if h == box]
    out = [a.get("label") for t, h, a in dot.edges if t == box]
    assert into == ["f64 (4, 5)"] and out == ["f64 (4, 2)"]


def test_an_unknown_scope_is_a_clear_error():
    _, loss = layered()
    with pytest.raises(ValueError, match="no such scope; its scopes are: mlp, mlp/layer1, "
                                         "mlp/layer2"):
        viz.draw(loss, collapse="layer3")


def chain(layers: int, per_layer: int = 4):
    x = gx.input("x", (3,))
    h = x
    for k in range(layers):
        with gx.scope(f"block{k}"):
            for _ in range(per_layer):
                h = gx.tanh(h)
    return h


@pytest.mark.parametrize("collapse", [None, "auto"])
def test_above_max_nodes_scopes_collapse_automatically_and_the_drawing_says_so(collapse):
    y = chain(layers=30)
    drawing = viz.draw(y, collapse=collapse, max_nodes=50)
    dot = parse(drawing.source)
    assert drawing.auto_collapsed and drawing.node_count == 121
    assert len(dot.nodes) == 31  # x and one box per block
    assert "121 nodes &gt; max_nodes=50: scopes collapsed automatically" in dot.graph["label"]
    # large drawings leave edge labels out (they double the layout's ranks): nodes say it
    assert all("label" not in a for _, _, a in dot.edges)
    assert dot.text(dot.one("x")) == "x\nf32 (3,)"
    assert "each node shows its type" in dot.graph["label"]


def test_auto_collapse_folds_the_deepest_level_that_fits():
    x = gx.input("x", (3,))
    h = x
    for k in range(4):
        with gx.scope(f"stage{k}"):
            for j in range(3):
                with gx.scope(f"unit{j}"):
                    h = gx.tanh(gx.tanh(gx.tanh(h)))
    drawing = viz.draw(h, max_nodes=20)
    assert len(drawing.collapsed) == 12 and all("/unit" in s for s in drawing.collapsed)
    drawing = viz.draw(h, max_nodes=10)
    assert drawing.collapsed == ("stage0", "stage1", "stage2", "stage3")


def test_what_cannot_be_folded_is_left_out_farthest_from_the_outputs():
    x = gx.input("x", (3,))
    h = x
    for _ in range(100):  # no scope to fold
        h = gx.tanh(h)
    drawing = viz.draw(h, max_nodes=20)
    dot = parse(drawing.source)
    assert len(dot.nodes) == 20 and drawing.elided == 82
    assert "82 more nodes" in dot.text(dot.one("82 more nodes"))
    assert "82 nodes farthest from the outputs are not drawn" in dot.graph["label"]
    assert sum(a.get("peripheries") == "2" for a in dot.nodes.values()) == 1  # the output
    assert [h for t, h, _ in dot.edges if t == dot.one("82 more nodes")]  # feeds what is drawn


def test_no_limit_draws_everything():
    y = chain(layers=30)
    assert len(parse(viz.draw(y, max_nodes=None).source).nodes) == 121


def test_a_compiled_function_draws_its_optimized_graph():
    x = gx.input("x", (3,), "float64")
    y = gx.log(gx.softmax(x))
    fn = gx.compile([x], y)
    dot = parse(viz.draw(fn).source)
    assert dot.find("log_softmax") and not dot.find("softmax")


def test_lists_and_graphs_draw_every_output():
    x = gx.input("x", (3,))
    pair = [gx.sin(x), gx.cos(x)]
    for target in (pair, gx.Graph.build([x], pair)):
        dot = parse(viz.draw(target).source)
        assert {dot.text(n).split("\n")[0] for n in dot.nodes} == {"x", "sin", "cos"}
        assert sum(a.get("peripheries") == "2" for a in dot.nodes.values()) == 2


@pytest.mark.parametrize("target, options, message", [
    (3.0, {}, "cannot draw float"),
    ([], {}, "cannot draw list"),
    (None, {"summary": "mean"}, "summary must be one of 'stats', 'values'"),
    (None, {"layout": "grid"}, "layout must be one of"),
    (None, {"rankdir": "XY"}, "rankdir must be one of"),
    (None, {"max_nodes": 1}, "max_nodes must be at least 2"),
])
def test_bad_arguments(target, options, message):
    target = gx.input("x", ()) * 2.0 if target is None else target
    with pytest.raises((TypeError, ValueError), match=message):
        viz.draw(target, **options)


def test_title_and_rankdir():
    x = gx.input("x", ())
    drawing = viz.draw(gx.exp(x), title="a <title> & more", rankdir="TB")
    dot = parse(drawing.source)
    assert dot.graph["rankdir"] == "TB"
    assert "a &lt;title&gt; &amp; more" in dot.graph["label"]
