"""The rewrite engine and the optimizer's entry points: fixed points, loops, type fit-up,
where rewritten nodes say they come from, and what ``gx.optimize`` / ``gx.compile`` report."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import graphc as gx
from graphc.graph import Graph
from graphc.passes import RULES, Report, RewriteError, Rule, rewrite, rule, rules_in
from graphc.passes.engine import MAX_SWEEPS, PHASES
from graphc.passes.pattern import Var, op
from tests.passes.rules import ops_in

x = Var("x")


def here() -> int:
    """The caller's line number."""
    return inspect.currentframe().f_back.f_lineno


def single_output(graph: Graph) -> gx.Tensor:
    (out,) = graph.outputs
    return out


def run(graph: Graph, *arrays: np.ndarray) -> np.ndarray:
    """The value of ``graph``'s single output, unoptimized."""
    return gx.compile(list(graph.inputs), single_output(graph), optimize=False)(*arrays)


# -- rule sets given by hand ---------------------------------------------------------------------

def test_a_rule_given_by_hand_rewrites_and_is_reported():
    a = gx.input("a", (3,), "float64")
    graph = Graph.build([a], [gx.tanh(a * 2)])
    double = Rule("double_to_sum", "canonicalize", x * 2, x + x)
    new, report = rewrite(graph, [double], name="mine")
    assert single_output(new) is gx.tanh(a + a)
    assert report.name == "mine" and report.fired == {"double_to_sum": 1}
    assert (report.nodes_before, report.nodes_after) == (4, 3)  # the constant 2 is gone
    assert report.sweeps == 2  # one that rewrites, one that finds nothing left
    assert "double_to_sum" not in RULES


def test_a_function_rule_sees_its_bindings_the_node_and_the_uses():
    a = gx.input("a", (3,), "float64")
    e = gx.exp(a)
    seen = {}

    def replace(bindings):
        seen.update(bindings)
        return None  # declines

    graph = Graph.build([a], [-e, e * 3])
    new, report = rewrite(graph, [Rule("look", "canonicalize", op.neg(op.exp(x)), replace)])
    assert new.outputs == graph.outputs and not report.fired
    assert seen["x"] is a and seen["node"] is -e
    assert seen["uses"][e] == 2 and seen["uses"][-e] == 1  # an output counts as one use


@pytest.mark.parametrize("outputs, fires", [(lambda e: [-e], True),
                                            (lambda e: [-e, e * 3], False)])
def test_a_guard_can_ask_how_many_consumers_a_node_has(outputs, fires):
    a = gx.input("a", (3,), "float64")
    inner = Var("inner", where=lambda t: t.op.name == "exp")
    fold = Rule("neg_exp_single_use", "canonicalize", op.neg(inner), lambda b: b["inner"] * -1.0,
                when=lambda b: b["uses"][b["inner"]] == 1)
    graph = Graph.build([a], outputs(gx.exp(a)))
    _, report = rewrite(graph, [fold])
    assert report.fired["neg_exp_single_use"] == (1 if fires else 0)


def test_a_fixed_point_is_reached_across_sweeps():
    """sin(−y) → −sin(−(−y)) builds a double negation that only the next sweep visits."""
    y = gx.input("y", (4,), "float64")
    sin_odd = Rule("sin_odd", "canonicalize", op.sin(Var("n", where=lambda t: t.op.name == "neg")),
                   lambda b: -gx.sin(-b["n"]))
    neg_neg = Rule("neg_neg_here", "canonicalize", op.neg(op.neg(x)), x)
    graph = Graph.build([y], [gx.sin(-y)])
    new, report = rewrite(graph, [sin_odd, neg_neg])
    assert single_output(new) is -gx.sin(y)
    assert report.fired == {"sin_odd": 1, "neg_neg_here": 1}
    assert report.sweeps == 3  # sin_odd, then neg_neg, then nothing
    values = np.array([0.3, -1.2, 2.0, 0.0])
    np.testing.assert_allclose(run(new, values), np.sin(-values))


def test_rules_that_undo_each_other_raise_naming_them():
    a = gx.input("a", (3,), "float64")
    pair = [Rule("sin_to_cos", "canonicalize", op.sin(x), op.cos(x)),
            Rule("cos_to_sin", "canonicalize", op.cos(x), op.sin(x))]
    with pytest.raises(RewriteError, match="sin_to_cos.*cos_to_sin|cos_to_sin.*sin_to_cos"):
        rewrite(Graph.build([a], [gx.sin(a) + 1]), pair)


def test_a_rule_that_keeps_growing_the_graph_raises_after_the_sweep_limit():
    """exp(x) → log(exp(−x)): each sweep makes a new exp below the root for the next."""
    a = gx.input("a", (3,), "float64")
    grow = Rule("exp_grows", "canonicalize", op.exp(x), op.log(op.exp(-x)))
    with pytest.raises(RewriteError, match=f"no fixed point after {MAX_SWEEPS} sweeps.*exp_grows"):
        rewrite(Graph.build([a], [gx.exp(a)]), [grow])


# -- replacements are fitted to the node's type --------------------------------------------------

@pytest.mark.parametrize("replacement, added_ops, value", [
    # a float32 value for a float64 node: cast
    (lambda b: gx.cast(b["x"], "float32"), ["cast", "cast"], lambda v: v.astype(np.float32)),
    # a 0-d value for a (2, 3) node: broadcast
    (lambda b: gx.constant(2.0), ["broadcast_to"], lambda v: np.full((2, 3), 2.0)),
    # a row for a (2, 3) node: broadcast
    (lambda b: b["x"][0], ["getitem", "broadcast_to"], lambda v: np.broadcast_to(v[0], (2, 3))),
    # both: float32 and 0-d
    (lambda b: gx.constant(np.float32(0.5)), ["cast", "broadcast_to"],
     lambda v: np.full((2, 3), 0.5)),
])
def test_replacements_are_cast_and_broadcast_to_the_nodes_type(replacement, added_ops, value):
    a = gx.input("a", (2, 3), "float64")
    graph = Graph.build([a], [gx.exp(a)])
    new, report = rewrite(graph, [Rule("replace_exp", "canonicalize", op.exp(x), replacement)])
    out = single_output(new)
    assert report.fired == {"replace_exp": 1}
    assert out.type == gx.exp(a).type
    assert [n for n in ops_in(new) if n in ("cast", "broadcast_to", "getitem")] == added_ops
    values = np.arange(6.0).reshape(2, 3) / 7
    got = run(new, values)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, value(values))


@pytest.mark.parametrize("shape, replacement_shape", [
    ((2, 3), (5,)),  # does not broadcast at all
    ((2, 3), (4, 2, 3)),  # broadcasts, but to a bigger shape
    ((3,), (2, 3)),
])
def test_replacements_of_another_shape_are_declined(shape, replacement_shape):
    a = gx.input("a", shape, "float64")
    node = gx.exp(a)
    wrong = Rule("wrong_shape", "canonicalize", op.exp(x),
                 lambda b: gx.constant(np.ones(replacement_shape)))
    new, report = rewrite(Graph.build([a], [node]), [wrong])
    assert single_output(new) is node and not report.fired
    assert wrong.apply(node) is None


# -- rewritten nodes still point at the user's line and scope ------------------------------------

def test_rewritten_and_rebuilt_nodes_keep_the_users_line_and_scope():
    a = gx.input("a", (3,), "float64")
    with gx.scope("block"):
        with gx.scope("inner"):
            double_line = here() + 1
            doubled = a * 2
        tanh_line = here() + 1
        y = gx.tanh(doubled)
    new, _ = rewrite(Graph.build([a], [y]), [Rule("double_to_sum", "canonicalize", x * 2, x + x)])
    out = single_output(new)
    (added,) = out.inputs
    assert added.op.name == "add"
    assert (added.location.lineno, added.scope) == (double_line, "block/inner")
    assert added.location.filename == __file__
    assert (out.location.lineno, out.scope) == (tanh_line, "block")  # rebuilt on the new input


def test_the_pipelines_rules_keep_the_users_line_and_scope():
    a = gx.input("a", (2, 5), "float64")
    with gx.scope("head"):
        line = here() + 1
        y = gx.log(gx.softmax(a, -1))
    out = gx.optimize(y, level=2)
    assert out.op.name == "log_softmax"
    assert (out.location.lineno, out.scope) == (line, "head")


# -- the registry ------------------------------------------------------------------------------

@pytest.fixture
def registered():
    """A rule registered for the test and removed after it."""
    name = "test_engine_exp_log"
    rule(name, op.exp(op.log(x)), x, phase="stabilize")
    yield name
    del RULES[name]


def test_registered_rules_join_their_phase_and_can_be_excluded(registered):
    assert RULES[registered].phase == "stabilize"
    assert registered in [r.name for r in rules_in(["stabilize"])]
    assert registered not in [r.name for r in rules_in(["canonicalize"])]
    assert registered not in [r.name for r in rules_in(["stabilize"], exclude=[registered])]
    a = gx.input("a", (3,), "float64")
    y = gx.exp(gx.log(a)) * 3
    out, report = gx.optimize(y, level=2, explain=True)
    assert out is a * 3 and report.fired[registered] == 1
    out, report = gx.optimize(y, level=2, exclude=[registered], explain=True)
    assert out is y and registered not in report.fired


def test_registering_twice_or_in_an_unknown_phase_is_refused(registered):
    with pytest.raises(ValueError, match="already registered"):
        rule(registered, op.exp(x), x, phase="stabilize")
    with pytest.raises(ValueError, match="unknown phase 'nowhere'"):
        rule("test_engine_nowhere", op.exp(x), x, phase="nowhere")
    assert "test_engine_nowhere" not in RULES


def test_a_decorated_rule_is_documented_by_its_docstring():
    name = "test_engine_decorated"

    @rule(name, op.sin(x), phase="canonicalize")
    def _never(bindings):
        """sin(x) stays sin(x)."""
        return None

    try:
        assert RULES[name].doc == "sin(x) stays sin(x)."
    finally:
        del RULES[name]


def test_every_registered_rule_has_a_known_phase():
    assert RULES and {r.phase for r in RULES.values()} <= set(PHASES)


# -- gx.optimize -------------------------------------------------------------------------------

def test_exclude_keeps_a_rule_from_firing():
    a = gx.input("a", (3,), "float64")
    assert gx.optimize(a * 1, level=1) is a
    kept = gx.optimize(a * 1, level=1, exclude=["mul_one"])
    assert kept.op.name == "mul"


@pytest.mark.parametrize("level", [1, 2, 3])
def test_excluding_an_unknown_rule_raises(level):
    a = gx.input("a", (3,), "float64")
    with pytest.raises(ValueError, match=r"unknown rules: \['no_such_rule'\]"):
        gx.optimize(a * 1, level=level, exclude=["no_such_rule"])
    with pytest.raises(ValueError, match="no_such_rule"):
        gx.compile([a], a * 1, optimize=level, exclude=["no_such_rule"])


def test_excluding_fuse_skips_fusion():
    a = gx.input("a", (3,), "float64")
    y = gx.tanh(a * 2 + 1)
    out, report = gx.optimize(y, exclude=["fuse"], explain=True)
    assert out is y and [p.name for p in report.passes] == ["canonicalize", "stabilize",
                                                            "specialize"]


def test_optimize_returns_what_it_was_given_in_the_same_structure():
    a = gx.input("a", (3,), "float64")
    one, two = a * 1, gx.exp(a) + 0
    assert gx.optimize(one) is a
    as_list = gx.optimize([one, two])
    assert isinstance(as_list, list) and as_list[0] is a and as_list[1] is gx.exp(a)
    as_tuple = gx.optimize((one, two))
    assert isinstance(as_tuple, tuple) and as_tuple == (a, gx.exp(a))
    from_generator = gx.optimize(t for t in (one, two))
    assert isinstance(from_generator, list) and from_generator == [a, gx.exp(a)]


def test_optimize_of_a_graph_is_a_graph_with_its_inputs_and_updates():
    a = gx.input("a", (3,), "float64")
    w = gx.param("w", np.ones(3))
    graph = Graph.build([a], [a * w * 1], {w: w * 1})
    new = gx.optimize(graph)
    assert isinstance(new, Graph)
    assert new.inputs == (a,)
    assert new.outputs == (a * w,)
    assert new.updates == ((w, w),)


def test_explain_reports_each_pass_with_real_rule_names_and_node_counts():
    a = gx.input("a", (4,), "float64")
    y = gx.tanh(gx.log(gx.softmax(a * 1, -1)) * 2 + 0)
    out, report = gx.optimize(y, explain=True)
    assert isinstance(report, Report)
    assert [p.name for p in report.passes] == ["canonicalize", "stabilize", "specialize", "fuse"]
    assert {"mul_one", "add_zero", "log_softmax", "fuse_elementwise"} <= set(report.fired)
    assert set(report.fired) <= set(RULES) | {"fuse_elementwise", "fuse_reduction",
                                              "recompute_cheap"}
    assert report.nodes_before == len(Graph.build([a], [y]))
    assert report.nodes_after == len(Graph.build([a], [out])) < report.nodes_before
    text = str(report)
    for p in report.passes:
        row = next(line for line in text.splitlines() if line.startswith(p.name))
        assert f"{p.nodes_before} → {p.nodes_after}" in row
    assert re.search(r"log_softmax×1", text)
    assert text.splitlines()[-1].startswith("total")
    assert f"{report.nodes_before} → {report.nodes_after}" in text.splitlines()[-1]


@pytest.mark.parametrize("optimize, passes", [
    (False, []),
    (0, []),
    (1, ["canonicalize"]),
    (2, ["canonicalize", "stabilize", "specialize"]),
    (3, ["canonicalize", "stabilize", "specialize", "fuse"]),
    (True, ["canonicalize", "stabilize", "specialize", "fuse"]),
])
def test_compile_runs_the_passes_of_its_level(optimize, passes):
    a = gx.input("a", (3,), "float64")
    y = gx.tanh(a * 1 + 2)
    fn, report = gx.compile([a], y, optimize=optimize, explain=True)
    assert report is fn.report
    assert [p.name for p in report.passes] == passes
    if not passes:
        assert fn.graph.outputs == (y,)
    values = np.array([0.1, -2.0, 3.0])
    np.testing.assert_allclose(fn(values), np.tanh(values + 2), rtol=1e-15)


def test_inference_mode_runs_the_inference_phase_first():
    a = gx.input("a", (3,), "float64")
    w = gx.param("w", np.array([1.0, 2.0, 3.0]))
    fn = gx.compile([a], a * w, mode="inference")
    assert [p.name for p in fn.report.passes][:2] == ["inference", "canonicalize"]
    assert "param" not in ops_in(fn.graph)


@pytest.mark.parametrize("level", [-1, 4, "3"])
def test_a_bad_level_raises(level):
    a = gx.input("a", (3,), "float64")
    with pytest.raises(ValueError, match="optimization level must be 0, 1, 2 or 3"):
        gx.optimize(a * 2, level=level)
    with pytest.raises(ValueError, match="optimization level must be 0, 1, 2 or 3"):
        gx.compile([a], a * 2, optimize=level)


def _sgd_losses(optimize, steps=3):
    """Three SGD steps on a small tanh regression; the losses and the final params."""
    rng = np.random.default_rng(7)
    w = gx.param("w", rng.standard_normal((5, 3)))
    b = gx.param("b", np.zeros(3))
    x = gx.input("x", (4, 5), "float64")
    t = gx.input("t", (4, 3), "float64")
    loss = gx.mean(gx.square(gx.tanh(x @ w + b) - t)) * 1.0
    gw, gb = gx.grad(loss, [w, b])
    fn = gx.compile([x, t], loss, updates={w: w - 0.5 * gw, b: b - 0.5 * gb},
                    optimize=optimize)
    xs, ts = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    losses = [float(fn(xs, ts)) for _ in range(steps)]
    return fn, losses, w.value, b.value


def test_param_updates_survive_optimization():
    fn, losses, w, b = _sgd_losses(True)
    _, plain_losses, plain_w, plain_b = _sgd_losses(False)
    assert fn.report.fired["fuse_elementwise"] + fn.report.fired["fuse_reduction"] >= 1
    assert losses[2] < losses[0]  # it trains
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-12)
    np.testing.assert_allclose(w, plain_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b, plain_b, rtol=1e-12, atol=1e-14)
    assert not np.array_equal(b, np.zeros(3))
