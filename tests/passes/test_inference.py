"""The inference phase: frozen params, dropout removed, batch norm folded into its layer."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import graphc as gx
from graphc.graph import Graph
from graphc.ops.fused import Composite
from graphc.passes import run_pipeline
from tests.passes.rules import check_rule, ops_in

RNG = np.random.default_rng(7)

INFERENCE_RULES = ("freeze_param", "remove_dropout", "fold_batch_norm_dense",
                   "fold_batch_norm_conv", "fold_channel_scale", "fold_channel_shift")


def param(name: str, *shape: int, dtype: str = "float64", positive: bool = False,
          scale: float = 1.0) -> gx.Param:
    """A param of random values: normal with std ``scale``, or in [0.5, 1.5) when ``positive``
    (a variance, a scale)."""
    value = RNG.random(shape) + 0.5 if positive else scale * RNG.standard_normal(shape)
    return gx.param(name, value.astype(dtype))


def primitive_ops(graph: Graph) -> Counter:
    """How many nodes of each op ``graph`` computes, a composite (fused kernel, dense
    layer) counted as the primitive ops it stands for; leaves (inputs, constants) are left out."""
    counts: Counter = Counter()
    for node in graph.toposort():
        if isinstance(node.op, Composite):  # a fused kernel or a dense layer
            outside = set(gx.toposort(node.inputs))  # what the composite reads
            inside = gx.toposort([node.op.expand(node)])
            counts.update(n.op.name for n in inside if n.inputs and n not in outside)
        elif node.inputs:
            counts[node.op.name] += 1
    return counts


# -- freeze_param ------------------------------------------------------------------------------


def test_freeze_param_makes_params_constants_of_their_values():
    w = param("w", 3)
    optimized = check_rule("freeze_param", lambda x: x * w + w, RNG.standard_normal((2, 3)),
                           inference=True, gone=["param"], present=["constant"])
    assert not optimized.params


def test_a_compiled_inference_function_keeps_the_values_it_was_compiled_with():
    w = gx.param("w", np.array([1.0, 2.0]))
    x = gx.input("x", (2,), "float64")
    fn = gx.compile([x], x * w, mode="inference")
    w.value = np.array([5.0, 6.0])
    np.testing.assert_array_equal(fn(np.ones(2)), [1.0, 2.0])


# -- remove_dropout ----------------------------------------------------------------------------

#: Keep probability 1 − 2⁻⁵³: NumPy's uniform draws are multiples of 2⁻⁵³ below 1, so the mask
#: keeps every element except with probability 2⁻⁵³, and the unoptimized graph is
#: deterministic (x / (1 − 2⁻⁵³), x to 1 ulp): check_rule can compare values.
KEEP_ALL = 2.0 ** -53


def test_remove_dropout_replaces_inverted_dropout_by_its_input():
    check_rule("remove_dropout", lambda x: gx.exp(gx.dropout(x, KEEP_ALL)),
               RNG.standard_normal((3, 4)), inference=True, gone=["bernoulli_like", "div"],
               present=["exp"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_remove_dropout_gives_the_expectation_of_dropout(p, dtype):
    draws = 4000
    x = gx.input("x", ("rows", 5), dtype)
    y = gx.dropout(x, p) * 3.0
    fn = gx.compile([x], y, mode="inference")
    assert "bernoulli_like" not in ops_in(fn.graph)
    assert fn.report.fired["remove_dropout"] == 1
    row = RNG.standard_normal(5).astype(dtype)
    np.testing.assert_array_equal(fn(row[None]), 3 * row[None])
    # the unoptimized (random) graph has that expectation: the mean of many rows, each a draw
    mean = gx.compile([x], y, optimize=False)(np.tile(row, (draws, 1))).mean(0, dtype="float64")
    standard_error = 3.0 * np.abs(row) * np.sqrt(p / (1 - p) / draws)
    assert np.all(np.abs(mean - 3.0 * row) <= 5 * standard_error + 1e-5)


OTHER_MASKS = {
    "mask not rescaled": lambda x: x * gx.bernoulli_like(x, 0.5, key=1),
    "wrong divisor": lambda x: x * gx.bernoulli_like(x, 0.5, key=1) / 0.25,
    "mask of another tensor": lambda x: (x + 1.0) * gx.bernoulli_like(x, 0.5, key=1) / 0.5,
    "the mask itself": lambda x: gx.bernoulli_like(x, 0.5, key=1),
}


@pytest.mark.parametrize("build", OTHER_MASKS.values(), ids=OTHER_MASKS.keys())
def test_random_masks_other_than_inverted_dropout_are_kept(build):
    x = gx.input("x", (3, 4), "float64")
    optimized, report = run_pipeline(Graph.build([x], [build(x)]), inference=True)
    assert report.fired["remove_dropout"] == 0
    assert "bernoulli_like" in ops_in(optimized)


# -- batch norm folding, rule by rule ----------------------------------------------------------


def dense(x: gx.Tensor, units: int, bias: bool) -> gx.Tensor:
    w = param("W", x.shape[-1], units)
    return x @ w + param("b", units) if bias else x @ w


def conv(x: gx.Tensor, channels: int, bias: bool) -> gx.Tensor:
    w = param("W", channels, x.shape[1], 3, 3)
    return gx.conv2d(x, w, param("b", channels) if bias else None, padding=1)


def batch_norm(z: gx.Tensor, gamma: bool, beta: bool) -> gx.Tensor:
    c = z.shape[1]
    return gx.batch_norm(z, param("gamma", c) if gamma else None, param("beta", c) if beta
                         else None, param("mean", c), param("var", c, positive=True),
                         training=False)


LAYERS = {"dense": (dense, "matmul", (6, 5)), "conv": (conv, "conv2d", (2, 3, 5, 5))}


@pytest.mark.parametrize("gamma", [True, False], ids=["gamma", "no gamma"])
@pytest.mark.parametrize("beta", [True, False], ids=["beta", "no beta"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("kind", LAYERS)
def test_batch_norm_folds_into_the_layer_before_it(kind, bias, gamma, beta):
    layer, core, shape = LAYERS[kind]
    fired = [f"fold_batch_norm_{kind}"] + ["fold_channel_scale"] * gamma \
        + ["fold_channel_shift"] * beta
    x = RNG.standard_normal(shape)
    for rule in fired:
        optimized = check_rule(rule, lambda t: batch_norm(layer(t, 4, bias), gamma, beta), x,
                               inference=True, gone=["sqrt", "div", "sub", "mul", "param"],
                               rtol=1e-10, atol=1e-12)
        assert primitive_ops(optimized) == {core: 1, "add": 1}, ops_in(optimized)


@pytest.mark.parametrize("kind", LAYERS)
def test_a_constant_per_channel_scale_and_shift_fold_without_batch_norm(kind):
    layer, core, shape = LAYERS[kind]
    c = 4
    column = (1, c, 1, 1) if kind == "conv" else (c,)
    scale, shift = RNG.standard_normal(column), RNG.standard_normal(column)
    build = lambda t: layer(t, c, True) * scale + shift  # noqa: E731
    for rule in ("fold_channel_scale", "fold_channel_shift"):
        optimized = check_rule(rule, build, RNG.standard_normal(shape), inference=True,
                               gone=["mul"], rtol=1e-10, atol=1e-12)
        assert primitive_ops(optimized)[core] == 1


def no_fold(build, *shapes: tuple) -> None:
    """``build`` on inputs of ``shapes``, optimized for inference: no fold fires, and the
    values do not change."""
    arrays = [RNG.standard_normal(s) for s in shapes]
    xs = [gx.input(f"x{k}", s, "float64") for k, s in enumerate(shapes)]
    graph = Graph.build(xs, [build(*xs)])
    optimized, report = run_pipeline(graph, inference=True)
    folds = [r for r in INFERENCE_RULES[2:] if report.fired[r]]
    assert not folds, f"{folds} fired:\n{report}"
    np.testing.assert_allclose(gx.compile(xs, optimized.outputs, optimize=False)(*arrays),
                               gx.compile(xs, graph.outputs, optimize=False)(*arrays),
                               rtol=1e-12)


def test_no_fold_when_the_statistics_are_not_constants():
    # running statistics fed as inputs: only frozen params are known at compile time
    no_fold(lambda x, mean, var: gx.batch_norm(dense(x, 4, True), None, None, mean, var * var,
                                               training=False), (6, 5), (4,), (4,))


def test_no_fold_of_batch_statistics():
    no_fold(lambda x: gx.batch_norm(dense(x, 4, True), param("g", 4), param("b", 4)), (6, 5))


def test_no_fold_when_the_normalized_axis_is_not_the_layers_output_units():
    # (N, T, K) @ (K, C): batch norm normalizes axis 1 (T), each unit of C sees several scales
    no_fold(lambda x: batch_norm(dense(x, 4, True), True, True), (2, 3, 5))


def test_no_fold_of_a_scale_that_is_not_per_channel():
    no_fold(lambda x: dense(x, 4, True) * RNG.standard_normal((6, 4)), (6, 5))


# -- the acceptance test: train, then compile for inference ------------------------------------


def weight(name: str, fan_in: int, *shape: int, dtype: str) -> gx.Param:
    """Standard normal / √fan_in, so every layer's outputs start at about unit scale."""
    return gx.param(name, (RNG.standard_normal(shape) / np.sqrt(fan_in)).astype(dtype))


def dense_net(x: gx.Tensor, dtype: str) -> dict:
    k = x.shape[1]
    return {"W1": weight("W1", k, k, 8, dtype=dtype), "b1": param("b1", 8, dtype=dtype),
            "W2": weight("W2", 8, 8, 3, dtype=dtype), "b2": param("b2", 3, dtype=dtype)}


def conv_net(x: gx.Tensor, dtype: str) -> dict:
    c, pixels = x.shape[1], x.shape[2] * x.shape[3]
    return {"W1": weight("W1", c * 9, 4, c, 3, 3, dtype=dtype),
            "b1": param("b1", 4, dtype=dtype),
            "W2": weight("W2", 4 * pixels, 4 * pixels, 3, dtype=dtype),
            "b2": param("b2", 3, dtype=dtype)}


def forward(x: gx.Tensor, p: dict, bn: dict, kind: str, training: bool,
            dropout: bool) -> tuple[gx.Tensor, tuple]:
    """layer → batch norm → relu → dropout → dense; returns the output and the batch
    norm's new running statistics (training only)."""
    z = gx.conv2d(x, p["W1"], p["b1"], padding=1) if kind == "conv" else x @ p["W1"] + p["b1"]
    normalized = gx.batch_norm(z, bn["gamma"], bn["beta"], bn["mean"], bn["var"],
                               training=training, momentum=0.3)
    h, stats = (normalized[0], normalized[1:]) if training else (normalized, ())
    h = gx.relu(h)
    if dropout:
        h = gx.dropout(h, 0.25)
    h = gx.reshape(h, (-1, int(np.prod(h.shape[1:]))))
    return h @ p["W2"] + p["b2"], stats


def train(kind: str, dtype: str, shape: tuple) -> tuple[gx.Tensor, dict, dict]:
    """A few SGD steps of mean squared error on random data, running statistics updated."""
    x = gx.input("x", ("batch", *shape[1:]), dtype)
    target = gx.input("target", ("batch", 3), dtype)
    p = (conv_net if kind == "conv" else dense_net)(x, dtype)
    c = p["b1"].shape[0]
    bn = {"gamma": param("gamma", c, dtype=dtype, positive=True),
          "beta": param("beta", c, dtype=dtype, scale=0.1),
          "mean": gx.param("mean", np.zeros(c, dtype)), "var": gx.param("var", np.ones(c, dtype))}
    y, (new_mean, new_var) = forward(x, p, bn, kind, training=True, dropout=True)
    loss = gx.mean((y - target) ** 2)
    trained = {**p, "gamma": bn["gamma"], "beta": bn["beta"]}
    grads = gx.grad(loss, list(trained.values()))
    updates = {w: w - 0.02 * g for w, g in zip(trained.values(), grads, strict=True)}
    step = gx.compile([x, target], loss, updates={**updates, bn["mean"]: new_mean,
                                                  bn["var"]: new_var})
    before = {name: w.value.copy() for name, w in {**trained, **bn}.items()}
    for _ in range(4):
        step(RNG.standard_normal(shape).astype(dtype) + 1.0,
             RNG.standard_normal((shape[0], 3)).astype(dtype))
    for name, w in {**trained, **bn}.items():  # every param, statistics included, moved
        if name != "b1":  # but b1: batch norm subtracts the batch mean, so it gets no gradient
            assert not np.allclose(w.value, before[name]), name
    return x, p, bn


#: (network, training batch shape, the ops its folded inference graph computes before
#: fusion): layer 1 is one matmul/conv2d plus one add (its bias), then relu, (flatten,) and
#: the dense layer 2.
ACCEPTANCE = [("dense", (16, 6), {"matmul": 2, "add": 2, "relu": 1}),
              ("conv", (8, 2, 5, 5), {"conv2d": 1, "add": 2, "relu": 1, "reshape": 1,
                                      "matmul": 1})]


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("kind, shape, folded_ops", ACCEPTANCE, ids=[a[0] for a in ACCEPTANCE])
def test_a_trained_network_compiles_for_inference_with_batch_norm_folded(kind, shape, folded_ops,
                                                                       dtype, rtol):
    x, p, bn = train(kind, dtype, shape)
    y, _ = forward(x, p, bn, kind, training=False, dropout=True)
    folded = gx.compile([x], y, mode="inference")
    expected, _ = forward(x, p, bn, kind, training=False, dropout=False)
    reference = gx.compile([x], expected, optimize=False)
    for batch in (1, 5):
        xv = RNG.standard_normal((batch, *shape[1:])).astype(dtype) + 1.0
        got, want = folded(xv), reference(xv)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    assert np.ptp(want, axis=0).min() > 0.01  # relu is not dead: the output varies with x
    assert len(folded.graph) < len(reference.graph) < len(folded.unoptimized)
    assert not {"sqrt", "div", "sub", "mul", "bernoulli_like"} & set(primitive_ops(folded.graph))
    unfused = gx.compile([x], y, mode="inference", optimize=2).graph
    assert primitive_ops(unfused) == folded_ops, ops_in(unfused)
    assert "param" not in ops_in(folded.graph)


@pytest.mark.parametrize("kind, shape", [a[:2] for a in ACCEPTANCE],
                         ids=[a[0] for a in ACCEPTANCE])
def test_a_training_graph_is_left_alone(kind, shape):
    x, p, bn = train(kind, "float64", shape)
    train_y, (new_mean, new_var) = forward(x, p, bn, kind, training=True, dropout=True)
    inference_y, _ = forward(x, p, bn, kind, training=False, dropout=True)
    step = gx.compile([x], train_y, updates={bn["mean"]: new_mean, bn["var"]: new_var})
    evaluate = gx.compile([x], inference_y)  # mode="train": the inference graph as written
    for fn in (step, evaluate):
        assert not any(fn.report.fired[r] for r in INFERENCE_RULES), str(fn.report)
        names = ops_in(fn.graph)
        assert "param" in names and "bernoulli_like" in names
    xv = RNG.standard_normal((4, *shape[1:])) + 1.0
    assert not np.array_equal(evaluate(xv), evaluate(xv))  # dropout still draws
