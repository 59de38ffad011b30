"""``Graph``: topological order, checks made by ``Graph.build``, params, networkx export."""

import numpy as np
import pytest

import graphc as gx
from graphc.graph import Graph, toposort


def assert_topological(order):
    position = {node: k for k, node in enumerate(order)}
    assert len(position) == len(order), "a node appears twice"
    for node in order:
        for inp in node.inputs:
            assert position[inp] < position[node], f"{inp!r} comes after its user {node!r}"


def test_toposort_puts_inputs_before_users_and_visits_shared_nodes_once():
    x, y = gx.input("x", (3,)), gx.input("y", (3,))
    s = x + y
    out = gx.exp(s) * gx.tanh(s) - x  # a diamond through s, and x used twice
    order = toposort([out])
    assert_topological(order)
    assert set(order) == {x, y, s, gx.exp(s), gx.tanh(s), gx.exp(s) * gx.tanh(s), out}
    assert order[-1] is out


def test_toposort_skips_done_nodes_and_what_only_they_reach():
    x, y = gx.input("x", (3,)), gx.input("y", (3,))
    s = gx.exp(x)
    out = s * y
    assert toposort([out], done=[s]) == [y, out]
    assert toposort([out], done=[s, x]) == [y, out]
    assert toposort([s], done=[s]) == []


def test_toposort_of_several_roots_covers_each_once():
    x = gx.input("x", (2,))
    a, b = gx.exp(x), gx.sin(x)
    order = toposort([a, b, a, x])
    assert_topological(order)
    assert len(order) == 3 and set(order) == {x, a, b}


def test_toposort_handles_deep_chains_without_recursion():
    x = gx.input("x", ())
    y = x
    for _ in range(5000):
        y = gx.sin(y)
    order = toposort([y])
    assert len(order) == 5001 and order[0] is x and order[-1] is y


def test_build_names_a_missing_input():
    x, y = gx.input("x", (3,)), gx.input("forgotten", (3,))
    with pytest.raises(gx.CompileError, match="'forgotten'"):
        Graph.build([x], [x + y])


def test_build_checks_inputs_themselves():
    x = gx.input("x", (3,))
    w = gx.param("w", np.ones(3, "float32"))
    with pytest.raises(gx.CompileError, match="gx.input"):
        Graph.build([x, w], [x * w])
    with pytest.raises(gx.CompileError, match="twice"):
        Graph.build([x, x], [x])


def test_build_rejects_updates_of_non_params():
    x = gx.input("x", (3,))
    with pytest.raises(gx.CompileError, match="updates must map params"):
        Graph.build([x], [x], {x: x + 1})


def test_build_rejects_updates_of_the_wrong_shape():
    w = gx.param("w", np.ones((2, 3)))
    with pytest.raises(gx.CompileError, match=r"update of 'w'.*\(3,\).*\(2, 3\)"):
        Graph.build([], [w], {w: gx.sum(w, 0)})


def test_build_casts_updates_to_the_param_dtype():
    w = gx.param("w", np.ones(2, "float32"))
    graph = Graph.build([], [], {w: gx.cast(w, "float64") * 2})
    ((param, value),) = graph.updates
    assert param is w and value.dtype == "float32"


def test_build_needs_every_symbolic_dim_bound_by_an_input():
    w = gx.param("w", np.ones(3))
    with pytest.raises(gx.CompileError, match="'free'"):
        Graph.build([], [gx.broadcast_to(w, ("free", 3))])
    x = gx.input("x", ("batch", 3), "float64")
    graph = Graph.build([x], [x + gx.broadcast_to(w, ("batch", 3))])
    assert graph.outputs[0].shape == ("batch", 3)


def test_build_turns_python_outputs_into_constants():
    graph = Graph.build([], [2.0])
    assert graph.outputs[0] is gx.constant(2.0)


def test_params_are_discovered_in_graph_order_including_update_only_params():
    x = gx.input("x", (2,), "float64")
    a, b, c = (gx.param(n, np.ones(2)) for n in "abc")
    graph = Graph.build([x], [x * a + b * a], {c: c * 0.5})
    assert graph.params[:2] == (a, b) and set(graph.params) == {a, b, c}
    assert len(graph.params) == 3
    unused = gx.param("unused", np.ones(2))
    assert unused not in Graph.build([x], [x + a]).params


def test_len_and_roots():
    x = gx.input("x", (2,))
    w = gx.param("w", np.ones(2, "float32"))
    graph = Graph.build([x], [x * w], {w: w + 1})
    assert graph.roots == (x * w, w + 1)
    # x, w, x*w, the constant 1, w+1
    assert len(graph) == 5 and len(graph.toposort()) == 5


def test_graphs_with_the_same_parts_are_equal_and_hash_alike():
    x = gx.input("x", (2,))
    g1, g2 = Graph.build([x], [gx.exp(x)]), Graph.build([x], [gx.exp(x)])
    g1.toposort()  # the cached order takes no part in equality
    assert g1 == g2 and hash(g1) == hash(g2)
    assert g1 != Graph.build([x], [gx.sin(x)])


def test_to_networkx_counts_nodes_and_edges_with_multiplicity():
    x, y = gx.input("x", (3,)), gx.input("y", (3,))
    square = x * x  # one node, two edges from x
    out = square + y
    graph = Graph.build([x, y], [out])
    g = graph.to_networkx()
    assert g.number_of_nodes() == 4
    assert g.number_of_edges() == 4  # x→square twice, square→out, y→out
    assert g.number_of_edges(id(x), id(square)) == 2
    assert sorted(d["position"] for _, _, d in g.in_edges(id(square), data=True)) == [0, 1]
    attrs = g.nodes[id(out)]
    assert attrs["op"] == "add" and attrs["shape"] == (3,) and attrs["tensor"] is out
    assert g.nodes[id(x)]["name"] == "x"
    import networkx as nx
    assert [g.nodes[n]["tensor"] for n in nx.topological_sort(g)][-1] is out
