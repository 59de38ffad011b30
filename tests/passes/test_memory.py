"""The memory plan: which kernel writes into which dead buffer, and which buffers it must
never touch; compiled functions never modify their arguments or params."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.graph import Graph
from graphc.ops.fused import fused, input_name
from graphc.ops.scalar import Program
from graphc.passes.memory import END, is_fresh, plan
from graphc.passes.pattern import constant_value
from graphc.types import broadcast_shapes

RNG = np.random.default_rng(3)


def kernel(op: str, *inputs: gx.Tensor) -> gx.Tensor:
    """A hand-made fused node applying the primitive ``op`` to its inputs."""
    program = Program((("t0", op, tuple(input_name(k) for k in range(len(inputs)))),), "t0")
    dtype = "bool" if op == "greater" else inputs[0].dtype
    return fused(inputs, kernel=f"k_{op}", program=program,
                 shape=broadcast_shapes(*(i.shape for i in inputs)), dtype=dtype,
                 compute=inputs[0].dtype)


def square(name: str = "x", dtype: str = "float64", n: int = 4) -> gx.Tensor:
    return gx.input(name, (n, n), dtype)


def compiled_values(graph: Graph, *arrays: np.ndarray):
    """Run ``graph`` as compiled by the numpy backend (which follows the plan), checking
    that no argument is modified."""
    copies = [a.copy() for a in arrays]
    outputs = graph.outputs[0] if len(graph.outputs) == 1 else list(graph.outputs)
    out = gx.compile(list(graph.inputs), outputs, optimize=False)(*arrays)
    for a, c in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, c)
    return out


def test_a_kernel_overwrites_an_input_that_dies_with_it():
    x = square()
    a = kernel("tanh", x)
    b = kernel("exp", a)
    graph = Graph.build([x], [b])
    memory = plan(graph)
    assert memory.out_buffer == {b: a} and memory.in_place == {b}
    assert memory.reused == 1
    assert memory.last_use[a] == memory.order.index(b) and memory.last_use[b] == END
    value = RNG.standard_normal((4, 4))
    np.testing.assert_allclose(compiled_values(graph, value), np.exp(np.tanh(value)))


def test_a_kernel_writes_into_a_dead_buffer_of_its_shape_and_dtype():
    x, w = square(), square("w")
    a = kernel("tanh", x)
    m = a @ w  # a dies here
    c = kernel("sin", x)  # reads only the input x: nothing of its own dies
    graph = Graph.build([x, w], [m, c])
    memory = plan(graph)
    assert memory.order == [x, a, w, m, c]
    assert memory.out_buffer == {c: a} and not memory.in_place
    xv, wv = RNG.standard_normal((4, 4)), RNG.standard_normal((4, 4))
    got_m, got_c = compiled_values(graph, xv, wv)
    np.testing.assert_allclose(got_m, np.tanh(xv) @ wv)
    np.testing.assert_allclose(got_c, np.sin(xv))


@pytest.mark.parametrize("shape, dtype, reused", [
    ((4, 4), "float64", True),  # the control: same shape and dtype
    ((4, 3), "float64", False),
    ((4, 4), "float32", False),
    ((16,), "float64", False),  # as many elements, another shape
])
def test_only_a_dead_buffer_of_the_kernels_shape_and_dtype_is_reused(shape, dtype, reused):
    y, w = gx.input("y", shape, dtype), gx.input("w", shape[-1:], dtype)
    a = kernel("tanh", y)
    dead = gx.sum(a * w)  # a dies in the product, the product in the sum
    c = kernel("sin", square())
    graph = Graph.build([y, w, c.inputs[0]], [dead, c])
    memory = plan(graph)
    assert (c in memory.out_buffer) is reused
    assert set(memory.out_buffer.values()) <= {a, a * w}


def test_scalar_kernels_get_no_buffer():
    s = gx.input("s", (), "float64")
    a = kernel("tanh", s)
    graph = Graph.build([s], [kernel("exp", a)])
    assert plan(graph).out_buffer == {}


@pytest.mark.parametrize("leaf", [
    lambda: square(),
    lambda: gx.param("p", RNG.standard_normal((4, 4))),
    lambda: gx.constant(RNG.standard_normal((4, 4))),
])
def test_inputs_params_and_constants_are_never_overwritten(leaf):
    x = leaf()
    b = kernel("exp", kernel("tanh", x))
    fed = x.op.name == "input"
    graph = Graph.build([x] if fed else [], [b])
    memory = plan(graph)
    assert x not in memory.out_buffer.values() and not is_fresh(x)
    value = RNG.standard_normal((4, 4)) if fed else \
        x.value if isinstance(x, gx.Param) else constant_value(x)
    before = value.copy()
    np.testing.assert_allclose(compiled_values(graph, *[value] * fed), np.exp(np.tanh(before)))
    np.testing.assert_array_equal(value, before)


def test_an_output_is_never_overwritten():
    x = square()
    a = kernel("tanh", x)
    b = kernel("exp", a)
    graph = Graph.build([x], [a, b])
    memory = plan(graph)
    assert memory.out_buffer == {} and memory.last_use[a] == END
    value = RNG.standard_normal((4, 4))
    got_a, got_b = compiled_values(graph, value)
    np.testing.assert_allclose(got_a, np.tanh(value))
    np.testing.assert_allclose(got_b, np.exp(np.tanh(value)))


def test_an_update_value_is_never_overwritten():
    x = square()
    p = gx.param("p", np.zeros((4, 4)))
    a = kernel("tanh", x)
    graph = Graph.build([x], [kernel("exp", a)], {p: a})
    assert plan(graph).out_buffer == {}


@pytest.mark.parametrize("view", [
    lambda a: gx.reshape(a, (16,)),
    lambda a: gx.transpose(a),
    lambda a: a[1:],
])
def test_a_buffer_still_visible_through_a_view_is_not_overwritten(view):
    x = square()
    a = kernel("tanh", x)
    b = kernel("exp", a)  # a's last direct reader
    v = view(a)
    c = kernel("sin", v)  # reads a's buffer after b
    graph = Graph.build([x], [b, c])
    memory = plan(graph)
    assert memory.order.index(b) < memory.order.index(c)
    assert memory.out_buffer == {}
    value = RNG.standard_normal((4, 4))
    got_b, got_c = compiled_values(graph, value)
    np.testing.assert_allclose(got_b, np.exp(np.tanh(value)))
    expected_view = {(16,): lambda t: t.reshape(16), (4, 4): lambda t: t.T,
                     (3, 4): lambda t: t[1:]}[v.shape]
    np.testing.assert_allclose(got_c, np.sin(expected_view(np.tanh(value))))


def test_a_buffer_whose_views_died_earlier_is_reused():
    x = square()
    a = kernel("tanh", x)
    total = gx.sum(gx.reshape(a, (16,)))  # the view of a dies here
    b = kernel("exp", a)
    graph = Graph.build([x], [total, b])
    memory = plan(graph)
    assert memory.order.index(total) < memory.order.index(b)
    assert memory.out_buffer == {b: a} and memory.in_place == {b}


def test_a_buffer_also_read_through_another_input_is_not_overwritten():
    """b = a + aᵀ: writing a in place would change aᵀ while it is read."""
    x = square()
    a = kernel("tanh", x)
    b = kernel("add", a, gx.transpose(a))
    graph = Graph.build([x], [b])
    assert plan(graph).out_buffer == {}
    value = RNG.standard_normal((4, 4))
    np.testing.assert_allclose(compiled_values(graph, value), np.tanh(value) + np.tanh(value).T)


def test_of_two_dying_inputs_one_is_overwritten_and_the_other_pooled():
    x = square()
    a, b = kernel("tanh", x), kernel("sin", x)
    c = kernel("mul", a, b)  # both die here
    d = kernel("exp", x)  # after c: takes the one c did not
    graph = Graph.build([x], [c, d])
    memory = plan(graph)
    assert memory.in_place == {c}
    assert {memory.out_buffer[c], memory.out_buffer[d]} == {a, b}
    value = RNG.standard_normal((4, 4))
    got_c, got_d = compiled_values(graph, value)
    np.testing.assert_allclose(got_c, np.tanh(value) * np.sin(value))
    np.testing.assert_allclose(got_d, np.exp(value))


def test_bool_kernels_reuse_bool_buffers_and_float_kernels_float_ones():
    x = square()
    half = x * 0.5  # a plain elementwise node: a fresh float buffer
    first = kernel("greater", x, half)
    negated = gx.logical_not(first)  # the bool buffer of `first` dies here
    t = kernel("tanh", x)  # half died before: its float buffer is free
    second = kernel("greater", t, x)  # t dies here, but is float: takes first's bool buffer
    graph = Graph.build([x], [negated & second])
    memory = plan(graph)
    assert memory.out_buffer == {t: half, second: first} and not memory.in_place
    value = RNG.standard_normal((4, 4))
    np.testing.assert_array_equal(compiled_values(graph, value),
                                  ~(value > value * 0.5) & (np.tanh(value) > value))


# -- end to end: the optimizer's kernels reuse buffers, and never the caller's --------------------

def _mlp(dtype: str):
    rng = np.random.default_rng(1)
    x = gx.input("x", ("batch", 6), dtype)
    w1 = gx.param("w1", rng.standard_normal((6, 6)).astype(dtype))
    b1 = gx.param("b1", rng.standard_normal(6).astype(dtype))
    w2 = gx.param("w2", rng.standard_normal((6, 6)).astype(dtype))
    h = gx.tanh(x @ w1 + b1)
    y = gx.exp(gx.sigmoid((h @ w2) * 2 + 1) @ w2 - 1) * 3
    return x, [w1, b1, w2], y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_functions_reuse_buffers_but_never_modify_arguments_or_params(dtype):
    x, params, y = _mlp(dtype)
    fn = gx.compile([x], y)
    assert plan(fn.graph).reused >= 1
    before = [p.value.copy() for p in params]
    arg = np.random.default_rng(2).standard_normal((5, 6)).astype(dtype)
    copy = arg.copy()
    got = fn(arg)
    np.testing.assert_array_equal(arg, copy)
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p.value, b)
    expected = gx.compile([x], y, optimize=False)(arg)
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == "float32" else 1e-13)


def test_params_change_only_through_their_updates():
    x, (w1, b1, w2), y = _mlp("float64")
    loss = gx.sum(gx.square(y))
    gw1, gb1 = gx.grad(loss, [w1, b1])
    fn = gx.compile([x], [loss, y], updates={w1: w1 - 1e-3 * gw1, b1: b1 - 1e-3 * gb1})
    plain = gx.compile([x], [loss, y, w1 - 1e-3 * gw1, b1 - 1e-3 * gb1], optimize=False)
    assert plan(fn.graph).reused >= 1
    arg = np.random.default_rng(4).standard_normal((3, 6))
    copy, w2_before = arg.copy(), w2.value.copy()
    expected_loss, expected_y, new_w1, new_b1 = plain(arg)
    got_loss, got_y = fn(arg)
    np.testing.assert_array_equal(arg, copy)
    np.testing.assert_array_equal(w2.value, w2_before)
    np.testing.assert_allclose(got_loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(got_y, expected_y, rtol=1e-12)
    np.testing.assert_allclose(w1.value, new_w1, rtol=1e-12)
    np.testing.assert_allclose(b1.value, new_b1, rtol=1e-12)


def _addmm_update(factor_is_param: bool):
    w = gx.param("w_mem", np.ones((3, 3)))
    x = gx.input("x_mem", (3, 3), "float64")
    value = gx.addmm(w, w if factor_is_param else x, x, alpha=-0.5)
    return w, x, Graph.build([x], [gx.sum(x)], {w: value}), value


def test_an_addmm_update_accumulates_in_place_into_its_param():
    w, _, graph, value = _addmm_update(factor_is_param=False)
    assert plan(graph).updates_in_place == {value: w}


def test_an_addmm_reading_its_param_as_a_factor_is_not_in_place():
    """BLAS would overwrite C while it still reads A from the same array."""
    w, x, graph, _ = _addmm_update(factor_is_param=True)
    assert plan(graph).updates_in_place == {}
    start = w.value.copy()
    data = np.arange(9.0).reshape(3, 3)
    gx.compile([x], gx.sum(x), updates={w: graph.updates[0][1]})(data)
    np.testing.assert_allclose(w.value, start - 0.5 * start @ data)
