"""Fusion: which elementwise groups become one kernel, what is recomputed and what is not,
and that fused graphs compute (and differentiate to) what the unfused ones do."""

from __future__ import annotations

import re

import numpy as np
import pytest

import graphc as gx
from graphc.graph import Graph
from graphc.passes import run_pipeline
from graphc.passes.fusion import MAX_MEMBERS, compute_dtype, fuse, is_cheap
from tests.helpers import assert_gradients
from tests.passes.rules import ops_in

RNG = np.random.default_rng(11)


def kernels(graph: Graph) -> list[gx.Tensor]:
    """The fused nodes of ``graph``, in execution order."""
    return [n for n in graph.toposort() if n.op.name == "fused"]


def computed(graph: Graph, name: str) -> int:
    """How many times ``graph`` computes the primitive ``name``: as nodes or inside kernels."""
    inside = sum(k.attr["program"].ops.count(name) for k in kernels(graph))
    return inside + ops_in(graph).count(name)


def optimized(inputs: list[gx.Tensor], outputs: list[gx.Tensor]):
    """The level-3 pipeline's graph and report."""
    return run_pipeline(Graph.build(inputs, outputs))


def assert_same_values(inputs, outputs, *arrays, rtol=1e-13, atol=1e-15):
    """The fully optimized function computes what the unoptimized one does."""
    got = gx.compile(inputs, outputs)(*arrays)
    expected = gx.compile(inputs, outputs, optimize=False)(*arrays)
    got, expected = (got, expected) if isinstance(got, tuple) else ((got,), (expected,))
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def matrix(name: str = "x", dtype: str = "float64") -> gx.Tensor:
    return gx.input(name, (3, 4), dtype)


def test_a_chain_becomes_one_kernel_named_after_its_ops():
    x, b = matrix(), gx.input("b", (4,), "float64")
    graph, report = optimized([x, b], [gx.tanh(x * 2 + b)])
    (kernel,) = graph.outputs
    assert ops_in(graph) == ["input", "input", "fused"]
    assert re.fullmatch(r"fused_mul_add_tanh_\d+", kernel.attr["kernel"])
    assert kernel.inputs == (x, b)  # b is broadcast by the kernel, 2 is a literal of its body
    assert kernel.attr["program"].ops == ("mul", "add", "tanh")
    assert (kernel.attr["shape"], kernel.attr["dtype"], kernel.attr["reduce"]) == \
        ((3, 4), "float64", None)
    assert report.fired["fuse_elementwise"] == 1
    assert_same_values([x, b], [gx.tanh(x * 2 + b)], RNG.standard_normal((3, 4)),
                       RNG.standard_normal(4))


def test_long_kernel_names_are_cut_short():
    x = matrix()
    (kernel,) = optimized([x], [gx.sin(gx.exp(gx.tanh(x * 2) + 1)) - x])[0].outputs
    assert re.fullmatch(r"fused_mul_tanh_add_exp_etc_\d+", kernel.attr["kernel"])


def test_a_long_chain_is_cut_into_bounded_kernels():
    x = matrix()
    y = x
    for k in range(150):
        y = y * 1.01 + 0.001 * (k + 1)  # 300 cheap ops
    graph, _ = optimized([x], [y])
    sizes = [len(k.attr["program"].instrs) for k in kernels(graph)]
    assert sum(sizes) == 300 and len(sizes) >= 5 and max(sizes) <= MAX_MEMBERS
    assert ops_in(graph) == ["input"] + ["fused"] * len(sizes)
    assert_same_values([x], [y], RNG.standard_normal((3, 4)), rtol=1e-12)


def test_an_expensive_producer_with_two_consumers_is_computed_once():
    x = matrix()
    e = gx.exp(x * 3)
    outputs = [gx.tanh(e + 1), gx.sin(e * 2)]
    graph, report = optimized([x], outputs)
    assert computed(graph, "exp") == 1
    assert len(kernels(graph)) == 3  # exp(3x), tanh(e + 1), sin(2e)
    assert "recompute_cheap" not in report.fired
    assert_same_values([x], outputs, RNG.uniform(-1, 1, (3, 4)))


def test_a_cheap_producer_with_two_consumers_is_recomputed_in_both():
    x = matrix()
    c = x * 2
    outputs = [gx.tanh(c + 1), gx.sin(c - 1)]
    graph, report = optimized([x], outputs)
    assert ops_in(graph) == ["input", "fused", "fused"]  # c itself is not computed
    assert computed(graph, "mul") == 2
    assert all(k.inputs == (x,) for k in kernels(graph))
    assert report.fired["recompute_cheap"] == 2
    assert_same_values([x], outputs, RNG.standard_normal((3, 4)))


def test_recomputation_is_one_op_deep():
    """c = 2x + 1 read twice: both kernels recompute the add, and read 2x, computed once."""
    x = matrix()
    doubled = x * 2
    c = doubled + 1
    outputs = [gx.tanh(c + 1), gx.sin(c - 1)]
    graph, _ = optimized([x], outputs)
    assert computed(graph, "mul") == 1 and doubled in graph.toposort()
    for k in kernels(graph):
        assert k.inputs == (doubled,) and k.attr["program"].instrs[0] == ("t0", "add",
                                                                        ("in0", 1.0))
    assert_same_values([x], outputs, RNG.standard_normal((3, 4)))


def test_the_report_counts_the_kernels_the_graph_has():
    x = matrix()
    c = x * 2 + 1
    graph, report = optimized([x], [gx.tanh(c), gx.sin(c)])
    names = [k.attr["kernel"] for k in kernels(graph)]
    assert report.fired["fuse_elementwise"] == len(names) == 2
    assert sorted(int(n.rsplit("_", 1)[1]) for n in names) == [0, 1]


@pytest.mark.parametrize("reduce, name", [(gx.sum, "sum"), (gx.max, "max"), (gx.min, "min"),
                                          (gx.prod, "prod")])
@pytest.mark.parametrize("axis, keepdims, axes", [(None, False, (0, 1)), (-1, True, (1,)),
                                                  (0, False, (0,))])
def test_a_reduction_of_an_elementwise_group_is_one_kernel(reduce, name, axis, keepdims, axes):
    x = matrix()
    y = reduce(gx.square(x - 1), axis, keepdims=keepdims)
    graph, report = optimized([x], [y])
    (kernel,) = graph.outputs
    assert ops_in(graph) == ["input", "fused"]
    assert kernel.attr["reduce"] == (name, axes, keepdims)
    assert kernel.attr["shape"] == (3, 4) and kernel.shape == y.shape
    assert re.fullmatch(rf"fused_sub_square_{name}_\d+", kernel.attr["kernel"])
    assert report.fired == {"fuse_reduction": 1}
    assert_same_values([x], [y], RNG.uniform(0, 2, (3, 4)))


def test_a_reduction_whose_input_is_also_read_elsewhere_is_not_fused_into():
    x = matrix()
    squares = gx.square(x - 1)
    graph, _ = optimized([x], [gx.sum(squares), squares])
    assert "sum" in ops_in(graph)
    assert all(k.attr["reduce"] is None for k in kernels(graph))


@pytest.mark.parametrize("build", [
    lambda x: gx.tanh(x),
    lambda x: gx.sum(x),
    lambda x: gx.exp(x) @ gx.transpose(x),
])
def test_a_lone_op_is_not_wrapped_in_a_kernel(build):
    x = matrix()
    graph, report = optimized([x], [build(x)])
    assert not kernels(graph) and not report.fired


def test_an_expensive_output_is_kept_and_read_by_the_kernel_after_it():
    x = matrix()
    e = gx.exp(x)
    graph, _ = optimized([x], [e, gx.tanh(e + 1)])
    kept, kernel = graph.outputs
    assert kept is e
    assert kernel.inputs == (e,) and computed(graph, "exp") == 1
    assert_same_values([x], [e, gx.tanh(e + 1)], RNG.standard_normal((3, 4)))


def test_a_cheap_output_is_kept_and_may_be_recomputed_by_a_kernel():
    x = matrix()
    a = x * 2
    graph, report = optimized([x], [a, gx.tanh(a + 1)])
    kept, kernel = graph.outputs
    assert kept is a and kernel.op.name == "fused" and kernel.inputs == (x,)
    assert report.fired["recompute_cheap"] == 1
    assert_same_values([x], [a, gx.tanh(a + 1)], RNG.standard_normal((3, 4)))


def test_an_update_value_is_never_absorbed():
    x = matrix()
    w = gx.param("w", np.full((3, 4), 0.5))
    new_w = gx.tanh(w * 0.5 + x)
    graph, _ = fuse(Graph.build([x], [new_w * 2 + 1], {w: new_w}))
    ((param, value),) = graph.updates
    assert param is w and value.op.name == "fused"
    (out,) = graph.outputs
    assert out.inputs == (value,) and computed(graph, "tanh") == 1
    fn = gx.compile([x], new_w * 2 + 1, updates={w: new_w})
    a = RNG.standard_normal((3, 4))
    np.testing.assert_allclose(fn(a), np.tanh(0.25 + a) * 2 + 1, rtol=1e-15)
    np.testing.assert_allclose(w.value, np.tanh(0.25 + a), rtol=1e-15)


def test_bool_logic_and_where_join_a_float_kernel():
    x = matrix()
    y = gx.where((x > 0) & (x < 1), x, 0.1 * x) * 2
    graph, _ = optimized([x], [y])
    (kernel,) = graph.outputs
    assert ops_in(graph) == ["input", "fused"]
    assert {"greater", "less", "logical_and", "where"} <= set(kernel.attr["program"].ops)
    assert_same_values([x], [y], RNG.uniform(-1, 2, (3, 4)))


def test_a_float32_chain_computes_in_float32():
    x = matrix("x", "float32")
    y = gx.sigmoid(x * 3 - 1)
    graph, _ = optimized([x], [y])
    (kernel,) = graph.outputs
    assert (kernel.attr["compute"], kernel.dtype) == ("float32", "float32")
    assert_same_values([x], [y], RNG.standard_normal((3, 4)).astype(np.float32), rtol=1e-6)


def test_constant_arrays_are_kernel_inputs_and_scalars_are_literals():
    x = matrix()
    row = gx.constant(np.arange(4.0))
    y = gx.exp(x * row + 0.5)
    graph, _ = optimized([x], [y])
    (kernel,) = graph.outputs
    assert kernel.inputs == (x, row)
    assert 0.5 in [a for _, _, args in kernel.attr["program"].instrs for a in args]
    assert_same_values([x], [y], RNG.standard_normal((3, 4)))


@pytest.mark.parametrize("build, dtypes", [
    (lambda i, f32, f64: (i * 3 + 1) * i - i, {}),
    (lambda i, f32, f64: gx.tanh(f32) + f64 * 2, {}),  # float32 + float64 in the middle
    (lambda i, f32, f64: (i + 2) * f64, {}),  # int + int, then int · float64
])
def test_int_and_mixed_dtype_arithmetic_is_left_unfused(build, dtypes):
    i = gx.input("i", (3, 4), "int32")
    f32, f64 = matrix("f32", "float32"), matrix("f64")
    y = build(i, f32, f64)
    inputs = [t for t in (i, f32, f64) if t in gx.toposort([y])]
    graph, _ = optimized(inputs, [y])
    assert not kernels(graph)
    arrays = {i: RNG.integers(-5, 5, (3, 4), dtype=np.int32),
              f32: RNG.standard_normal((3, 4)).astype(np.float32),
              f64: RNG.standard_normal((3, 4))}
    assert_same_values(inputs, [y], *(arrays[t] for t in inputs), rtol=1e-6)


@pytest.mark.parametrize("name, dtype", [("add", "float64"), ("greater", "float32"),
                                         ("logical_and", "")])
def test_compute_dtype_and_cheapness(name, dtype):
    x = matrix("x", dtype or "bool")
    node = {"add": lambda: x + x, "greater": lambda: x > 0,
            "logical_and": lambda: x & x}[name]()
    assert compute_dtype(node) == dtype
    assert is_cheap(node)
    assert not is_cheap(gx.exp(matrix()))
    assert compute_dtype(gx.sum(matrix())) is None


def test_the_second_derivative_of_a_3_norm_compiles_and_is_right():
    """Regression: a kernel recomputing a cheap node (|x|) read an expensive node another
    kernel had absorbed, so the expensive node was gone when the first kernel ran."""
    x, v = gx.input("x", (5,), "float64"), gx.input("v", (5,), "float64")
    (g,) = gx.grad(gx.norm(x, 3), [x])
    (hv,) = gx.grad(gx.sum(g * v), [x])
    hessian = gx.hessian(gx.norm(x, 3), x)
    a, b = RNG.standard_normal(5), RNG.standard_normal(5)
    fn = gx.compile([x, v], [hv, hessian])
    assert kernels(fn.graph)
    assert_same_values([x, v], [hv, hessian], a, b, rtol=1e-12, atol=1e-14)
    # n = (Σ rᵢ³)^⅓ with r = |a|, s = sign(a): ∂n/∂aᵢ = sᵢrᵢ²/n², so
    # ∂²n/∂aᵢ∂aⱼ = 2rᵢδᵢⱼ/n² − 2 sᵢrᵢ² sⱼrⱼ² / n⁵
    r, s = np.abs(a), np.sign(a)
    n = np.sum(r ** 3) ** (1 / 3)
    expected = 2 * np.diag(r) / n ** 2 - 2 * np.outer(s * r ** 2, s * r ** 2) / n ** 5
    np.testing.assert_allclose(fn(a, b)[1], expected, rtol=1e-10)


def test_gradients_flow_through_fused_kernels():
    x, w = matrix("x"), gx.input("w", (4,), "float64")
    y = gx.sum(gx.tanh(x * w + 1) * x, -1)
    fused = gx.optimize(y)
    assert any(n.op.name == "fused" for n in gx.toposort([fused]))
    grads = gx.grad(gx.sum(fused * gx.constant([1.0, -2.0, 0.5])), [x, w])
    expected = gx.grad(gx.sum(y * gx.constant([1.0, -2.0, 0.5])), [x, w])
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal(4)
    got = gx.compile([x, w], grads, optimize=False)(a, b)
    want = gx.compile([x, w], expected, optimize=False)(a, b)
    for g, e in zip(got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("build", [
    lambda x, w: gx.tanh(x * w + 1) * x,
    lambda x, w: gx.sum(gx.square(gx.sigmoid(x) - w), -1),
    lambda x, w: gx.where(x > w, gx.exp(x), x * w) - 1,
])
def test_fused_graphs_have_the_right_first_and_second_derivatives(build):
    def f(x, w):
        out = gx.optimize(build(x, w))
        assert any(n.op.name == "fused" for n in gx.toposort([out]))
        return out

    assert_gradients(f, RNG.standard_normal((3, 4)), RNG.standard_normal(4))


def test_a_kernel_keeps_the_users_line_and_scope():
    x = matrix()
    with gx.scope("layer"):
        y = gx.tanh(x * 2 + 1)
    kernel = gx.optimize(y)
    assert kernel.op.name == "fused"
    assert (kernel.location, kernel.scope) == (y.location, "layer")
