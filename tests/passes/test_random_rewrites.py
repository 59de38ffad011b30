"""Random graphs: the optimized graph computes what the unoptimized one does.

Hypothesis draws a program of elementwise ops (including forms the rules rewrite:
``x * 1``, ``x ** 2``, ``log(1 + x²)``, ``exp(x) − 1``, ``log(softmax(x))``),
broadcasts, reductions, matmuls and shape ops over a few inputs. Each program is
compiled with and without the optimizer; values, several outputs at once (so fused
producers are shared), and gradients must agree, and no argument may be modified.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gx
from tests.test_random_graphs import _broadcasts

UNARY: dict[str, Callable] = {
    "tanh": gx.tanh,
    "sigmoid": gx.sigmoid,
    "square_pow": lambda a: a ** 2,
    "cube_pow": lambda a: a ** 3,
    "times_one": lambda a: a * 1.0 + 0.0,
    "log1p_form": lambda a: gx.log(1.0 + gx.square(a)),
    "expm1_form": lambda a: gx.exp(gx.tanh(a)) - 1.0,
    "relu": gx.relu,
    "neg_neg": lambda a: gx.neg(gx.neg(a)),
    "log_softmax_form": lambda a: gx.log(gx.softmax(a, -1)) if a.ndim else a,
    "transpose": lambda a: gx.transpose(a),
    "self_matmul": lambda a: a @ gx.transpose(a) if a.ndim == 2 else a,
    "flatten": lambda a: gx.reshape(a, (-1,)),
    "sum_last": lambda a: gx.sum(a, -1, keepdims=True) if a.ndim else a,
    "max_all": lambda a: gx.max(a),
    "divide_const": lambda a: a / 4.0,
}
BINARY: dict[str, Callable] = {
    "add": gx.add,
    "mul": gx.mul,
    "sub": gx.sub,
    "maximum": gx.maximum,
    "where": lambda a, b: gx.where(a > b, a, b * 0.5),
}


@st.composite
def programs(draw):
    """(input shapes, steps): each step an op name and indices of earlier values."""
    full = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    shapes = [tuple(full)] + [tuple(full[len(full) - r:]) for r in
                              draw(st.lists(st.integers(0, len(full)), max_size=2))]
    steps = []
    for _ in range(draw(st.integers(2, 10))):
        if draw(st.booleans()):
            steps.append(("unary", draw(st.sampled_from(sorted(UNARY))),
                          draw(st.integers(0, 100))))
        else:
            steps.append(("binary", draw(st.sampled_from(sorted(BINARY))),
                          draw(st.integers(0, 100)), draw(st.integers(0, 100))))
    return shapes, steps


def build(shapes, steps, xs):
    values = list(xs)
    for step in steps:
        if step[0] == "unary":
            values.append(UNARY[step[1]](values[step[2] % len(values)]))
        else:
            a = values[step[2] % len(values)]
            partners = [v for v in values if _broadcasts(v.shape, a.shape)]
            values.append(BINARY[step[1]](a, partners[step[3] % len(partners)]))
    return values


def instantiate(program, dtype: str = "float64"):
    """Inputs for the program's shapes and its last value."""
    shapes, steps = program
    xs = [gx.input(f"x{k}", s, dtype) for k, s in enumerate(shapes)]
    return xs, build(shapes, steps, xs)


def _arrays(shapes, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-2, 2, s) for s in shapes]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), seed=st.integers(0, 2**16), picks=st.lists(st.integers(0, 100),
                                                                       max_size=3))
def test_optimized_graphs_compute_the_same_values(program, seed, picks):
    shapes, steps = program
    xs = [gx.input(f"x{k}", s, "float64") for k, s in enumerate(shapes)]
    values = build(shapes, steps, xs)
    outputs = [values[-1]] + [values[p % len(values)] for p in picks]
    arrays = _arrays(shapes, seed)
    copies = [a.copy() for a in arrays]
    expected = gx.compile(xs, outputs, optimize=False)(*arrays)
    got = gx.compile(xs, outputs)(*arrays)
    for a, c in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, c)  # arguments are never written
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), seed=st.integers(0, 2**16))
def test_gradients_of_optimized_graphs_are_the_same(program, seed):
    xs, values = instantiate(program)
    y = values[-1]
    weights = np.random.default_rng(seed).standard_normal(y.shape)
    grads = gx.grad(gx.sum(y * weights), xs, allow_unused=True)
    grads = [g if g is not None else gx.zeros_like(x) for g, x in zip(grads, xs, strict=True)]
    arrays = _arrays(program[0], seed)
    expected = gx.compile(xs, grads, optimize=False)(*arrays)
    got = gx.compile(xs, grads)(*arrays)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-11)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), seed=st.integers(0, 2**16))
def test_float32_optimized_graphs_stay_close(program, seed):
    xs, values = instantiate(program, "float32")
    y = values[-1]
    arrays = [a.astype(np.float32) for a in _arrays(program[0], seed)]
    expected = gx.compile(xs, y, optimize=False)(*arrays)
    got = gx.compile(xs, y)(*arrays)
    assert got.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)
