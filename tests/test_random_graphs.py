"""Random graphs: the numpy backend against NumPy, and gradients against finite differences.

Hypothesis draws a *recipe*: input shapes that broadcast together (ranks 0-3), then a
list of steps, each an elementwise op or a reduction applied to earlier values. The
same recipe is run twice, once building graphc nodes and once calling NumPy directly,
and the results must agree. Smooth recipes are also differentiated and checked by
central differences in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphc as gx
from tests.helpers import assert_gradients

# name -> (graphc builder, NumPy reference, smooth?). Domains are kept safe by construction:
# exp sees tanh's range, a divisor is at least 1.
UNARY: dict[str, tuple[Callable, Callable, bool]] = {
    "neg": (gx.neg, np.negative, True),
    "square": (gx.square, np.square, True),
    "sin": (gx.sin, np.sin, True),
    "tanh": (gx.tanh, np.tanh, True),
    "exp": (lambda a: gx.exp(gx.tanh(a)), lambda a: np.exp(np.tanh(a)), True),
    "abs": (gx.abs, np.abs, False),
}
BINARY: dict[str, tuple[Callable, Callable, bool]] = {
    "add": (gx.add, np.add, True),
    "sub": (gx.sub, np.subtract, True),
    "mul": (gx.mul, np.multiply, True),
    "div": (lambda a, b: a / (1.0 + gx.square(b)), lambda a, b: a / (1.0 + np.square(b)), True),
    "maximum": (gx.maximum, np.maximum, False),
    "minimum": (gx.minimum, np.minimum, False),
}
# Reductions that exist so far; each is (gx.<name>, np.<name>, smooth?).
REDUCTIONS: dict[str, tuple[Callable, Callable, bool]] = {
    name: (getattr(gx, name), getattr(np, name), smooth)
    for name, smooth in [("sum", True), ("mean", True), ("max", False), ("min", False)]
    if hasattr(gx, name)
}


@dataclass(frozen=True)
class Step:
    kind: str  # "unary" | "binary" | "reduce"
    name: str
    args: tuple[int, ...]  # indices of earlier values (inputs first)
    axis: tuple[int, ...] | None = None
    keepdims: bool = False


@dataclass(frozen=True)
class Recipe:
    shapes: tuple[tuple[int, ...], ...]
    steps: tuple[Step, ...]

    def run(self, leaves: list, library: int) -> list:
        """Every value of the recipe; ``library`` 0 builds graphc nodes, 1 calls NumPy."""
        values = list(leaves)
        for step in self.steps:
            args = [values[k] for k in step.args]
            if step.kind == "unary":
                values.append(UNARY[step.name][library](*args))
            elif step.kind == "binary":
                values.append(BINARY[step.name][library](*args))
            else:
                reduce = REDUCTIONS[step.name][library]
                values.append(reduce(*args, axis=step.axis, keepdims=step.keepdims))
        return values


def _broadcasts(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


@st.composite
def input_shapes(draw) -> tuple[tuple[int, ...], ...]:
    """1-3 shapes that broadcast together: suffixes of one full shape, some dims set to 1."""
    full = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3))
    shapes = []
    for _ in range(draw(st.integers(1, 3))):
        rank = draw(st.integers(0, len(full)))
        suffix = full[len(full) - rank:]
        shapes.append(tuple(d if draw(st.booleans()) else 1 for d in suffix))
    return tuple(shapes)


@st.composite
def recipes(draw, smooth_only: bool = False, max_steps: int = 8) -> Recipe:
    """A recipe whose every binary step takes broadcast-compatible values."""
    def usable(table):
        return sorted(n for n, (_, _, smooth) in table.items() if smooth or not smooth_only)

    shapes = draw(input_shapes())
    value_shapes = list(shapes)
    steps = []
    kinds = ["unary", "binary"] + (["reduce"] if usable(REDUCTIONS) else [])
    for _ in range(draw(st.integers(1, max_steps))):
        kind = draw(st.sampled_from(kinds))
        a = draw(st.integers(0, len(value_shapes) - 1))
        if kind == "unary":
            step = Step(kind, draw(st.sampled_from(usable(UNARY))), (a,))
            shape = value_shapes[a]
        elif kind == "binary":
            partners = [k for k, s in enumerate(value_shapes) if _broadcasts(s, value_shapes[a])]
            b = draw(st.sampled_from(partners))
            step = Step(kind, draw(st.sampled_from(usable(BINARY))), (a, b))
            shape = np.broadcast_shapes(value_shapes[a], value_shapes[b])
        else:
            ndim = len(value_shapes[a])
            axis = draw(st.none() | st.lists(st.integers(0, max(ndim - 1, 0)), unique=True,
                                             max_size=ndim).map(lambda xs: tuple(sorted(xs))))
            step = Step(kind, draw(st.sampled_from(usable(REDUCTIONS))), (a,), axis,
                        draw(st.booleans()))
            shape = np.sum(np.zeros(value_shapes[a]), axis=axis, keepdims=step.keepdims).shape
        steps.append(step)
        value_shapes.append(tuple(shape))
    return Recipe(shapes, tuple(steps))


def arrays_for(shapes, dtype="float64"):
    return st.tuples(*(hnp.arrays(dtype, s, elements=st.floats(-2, 2, width=64 if dtype ==
                                                               "float64" else 32))
                       for s in shapes))


def _bounded(values: list[np.ndarray], limit: float) -> bool:
    return all(np.all(np.abs(v) < limit) for v in values)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), recipe=recipes(), dtype=st.sampled_from(["float64", "float32"]),
       second=st.integers(0, 10))
def test_random_graphs_match_numpy(data, recipe, dtype, second):
    arrays = data.draw(arrays_for(recipe.shapes, dtype))
    expected = recipe.run(list(arrays), 1)
    assume(_bounded(expected, 1e6))
    xs = [gx.input(f"x{k}", a.shape, dtype) for k, a in enumerate(arrays)]
    nodes = recipe.run(xs, 0)
    other = second % len(nodes)  # a second output: any value, even an input
    got = gx.compile(xs, [nodes[-1], nodes[other]])(*arrays)
    tol = {"float64": 1e-12, "float32": 1e-5}[dtype]
    for value, want, node in zip(got, (expected[-1], expected[other]),
                                 (nodes[-1], nodes[other]), strict=True):
        want = np.asarray(want)
        assert node.shape == want.shape and node.dtype == want.dtype.name
        assert value.shape == want.shape and value.dtype == want.dtype
        np.testing.assert_allclose(value, want, rtol=tol, atol=tol)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), recipe=recipes(smooth_only=True, max_steps=6))
def test_random_smooth_graphs_have_correct_gradients(data, recipe):
    arrays = data.draw(arrays_for(recipe.shapes))
    assume(_bounded(recipe.run(list(arrays), 1), 1e3))

    def f(*xs):
        return recipe.run(list(xs), 0)[-1]

    assert_gradients(f, *arrays, order=1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), recipe=recipes(smooth_only=True, max_steps=3))
def test_random_smooth_graphs_have_correct_second_derivatives(data, recipe):
    arrays = data.draw(arrays_for(recipe.shapes))
    assume(_bounded(recipe.run(list(arrays), 1), 1e2))
    assert_gradients(lambda *xs: recipe.run(list(xs), 0)[-1], *arrays, order=2)
