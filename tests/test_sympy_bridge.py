"""``to_sympy`` / ``latex``: scalar graphs as sympy expressions, and a lean ``import graphc``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import graphc as gx
from graphc.errors import GraphcTypeError
from graphc.sympy_bridge import latex, to_sympy

sp = pytest.importorskip("sympy")

x_, y_, z_ = sp.symbols("x y z", real=True)


def scalars(*names: str) -> list[gx.Tensor]:
    return [gx.input(n, (), "float64") for n in names]


def same(a, b) -> bool:
    return sp.simplify(a - b) == 0


def test_import_graphc_loads_no_heavy_dependency():
    code = ("import graphc, sys; "
            "assert 'sympy' not in sys.modules and 'scipy' not in sys.modules "
            "and 'networkx' not in sys.modules, "
            "[m for m in ('sympy', 'scipy', 'networkx') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_sympy_bridge_does_not_load_sympy():
    code = ("import graphc.sympy_bridge, sys; assert 'sympy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_product_of_sum_and_difference():
    x, y, z = scalars("x", "y", "z")
    expr = to_sympy((x + y) * (y - z))
    assert same(expr, (x_ + y_) * (y_ - z_))
    assert expr.free_symbols == {x_, y_, z_}


def test_latex_structure():
    x, y, z = scalars("x", "y", "z")
    assert latex((x + y) * (y - z)) == r"\left(x + y\right) \left(y - z\right)"
    assert latex(gx.exp(x) / y) == r"\frac{e^{x}}{y}"
    assert latex(gx.sqrt(x)) == r"\sqrt{x}"


def test_constants_are_exact():
    (x,) = scalars("x")
    assert to_sympy(0.1 * x + 2.0) == x_ / 10 + 2
    assert to_sympy(gx.constant(3, "int64") * gx.cast(x, "int64")).has(sp.floor)


def test_sigmoid_and_tanh_closed_forms():
    (x,) = scalars("x")
    assert same(to_sympy(gx.sigmoid(x)), 1 / (1 + sp.exp(-x_)))
    assert same(to_sympy(1 / (1 + gx.exp(-x))), 1 / (1 + sp.exp(-x_)))
    assert same(to_sympy(gx.tanh(x)), sp.tanh(x_))
    assert same(to_sympy(gx.tanh(x)).rewrite(sp.exp),
                (sp.exp(x_) - sp.exp(-x_)) / (sp.exp(x_) + sp.exp(-x_)))


def test_activation_closed_forms():
    (x,) = scalars("x")
    assert same(to_sympy(gx.gelu(x)), x_ / 2 * (1 + sp.erf(x_ / sp.sqrt(2))))
    assert same(to_sympy(gx.silu(x)), x_ / (1 + sp.exp(-x_)))
    assert same(to_sympy(gx.mish(x)), x_ * sp.tanh(sp.log(1 + sp.exp(x_))))
    relu = to_sympy(gx.relu(x))
    assert all(relu.subs(x_, v) == max(v, 0) for v in (-2, 0, sp.Rational(1, 3), 5))


def test_float_constants_recover_closed_forms():
    (x,) = scalars("x")
    assert to_sympy(x * (2 ** -0.5)) == sp.sqrt(2) * x_ / 2
    assert to_sympy(x * float(np.pi)) == sp.pi * x_
    assert to_sympy(x * 0.7310585786300049) == sp.Rational("0.7310585786300049") * x_


def test_primitives_with_special_sympy_forms():
    x, y = scalars("x", "y")
    assert to_sympy(gx.log1p(x)) == sp.log(1 + x_)
    assert to_sympy(gx.expm1(x)) == sp.exp(x_) - 1
    assert to_sympy(gx.erf(x)) == sp.erf(x_)
    assert to_sympy(gx.maximum(x, y)) == sp.Max(x_, y_)
    assert to_sympy(gx.abs(x)) == sp.Abs(x_)
    assert to_sympy(gx.floor(x)) == sp.floor(x_)


def test_where_and_comparisons():
    x, y = scalars("x", "y")
    leaky = to_sympy(gx.where(x > 0, x, 0.01 * x))
    assert leaky == sp.Piecewise((x_, x_ > 0), (x_ / 100, True))
    assert to_sympy(gx.logical_and(x > 0, y <= 1)) == sp.And(x_ > 0, y_ <= 1)
    step = to_sympy(gx.cast(x >= y, "float64"))
    assert step.subs({x_: 2, y_: 1}) == 1 and step.subs({x_: 0, y_: 1}) == 0
    assert to_sympy(gx.clip(x, -1.0, 1.0)).subs(x_, 5) == 1


def test_expressions_evaluate_like_the_graph():
    x, y = scalars("x", "y")
    f = gx.where(x < y, gx.sin(x) * gx.exp(y), gx.sqrt(gx.abs(x - y)) / (1 + y * y))
    expr = to_sympy(f)
    fn = gx.compile([x, y], f)
    for xv, yv in [(0.3, 1.2), (2.0, -0.5), (-1.0, -1.0)]:
        assert float(expr.subs({x_: xv, y_: yv})) == pytest.approx(float(fn(xv, yv)))


DERIVATIVE_CASES = [
    ("product", lambda x, y: (x + y) * (y - 2.0 * x)),
    ("sigmoid", lambda x, y: gx.sigmoid(x * y)),
    ("exp_sigmoid", lambda x, y: 1 / (1 + gx.exp(-(x * y)))),
    ("gelu", lambda x, y: gx.gelu(x) * y),
    ("silu", lambda x, y: gx.silu(x + y)),
    ("tanh", lambda x, y: gx.tanh(x) * y),
    ("log_exp", lambda x, y: gx.log(1 + gx.exp(x)) + gx.sin(y) * x),
    ("power", lambda x, y: x**3 / y + gx.sqrt(y)),
]


@pytest.mark.parametrize("name, f", DERIVATIVE_CASES, ids=[c[0] for c in DERIVATIVE_CASES])
def test_graphc_gradient_equals_sympy_diff(name, f):
    x, y = scalars("x", "y")
    out = f(x, y)
    dx, dy = gx.grad(out, [x, y])
    expr = to_sympy(out)
    assert same(sp.diff(expr, x_), to_sympy(dx))
    assert same(sp.diff(expr, y_), to_sympy(dy))


def test_second_derivative_equals_sympy_diff():
    (x,) = scalars("x")
    out = gx.exp(-x * x) * gx.sin(x)
    assert same(sp.diff(to_sympy(out), x_, 2), to_sympy(gx.grad(gx.grad(out, x), x)))


def test_params_and_duplicate_names():
    w = gx.param("w", 2.0)
    a, b = gx.input("a", (), "float64"), gx.input("a", (), "float64")
    expr = to_sympy(w * a + b)
    assert {s.name for s in expr.free_symbols} == {"w", "a", "a_2"}


def test_symbols_override():
    (x,) = scalars("x")
    t = sp.Symbol("t", positive=True)
    assert to_sympy(gx.log(x), symbols={x: t}) == sp.log(t)


def test_one_element_shape_ops_are_identities():
    v = gx.input("v", (1,), "float64")
    assert to_sympy(gx.sum(gx.reshape(v * 2.0, (1, 1)))) == 2 * sp.Symbol("v", real=True)


def test_non_scalar_graph_is_rejected():
    v = gx.input("v", (3,), "float64")
    with pytest.raises(GraphcTypeError, match=r"one-element.*\(3,\)"):
        to_sympy(gx.sum(v))


def test_unsupported_op_is_named():
    a = gx.input("a", (1, 1), "float64")
    with pytest.raises(GraphcTypeError, match="'matmul' has no sympy translation"):
        to_sympy(gx.sum(a @ a))
    with pytest.raises(GraphcTypeError, match="'normal_like' has no sympy translation"):
        to_sympy(gx.normal_like(gx.input("x", (), "float64")))


def test_numeric_agreement_after_lambdify():
    x, y = scalars("x", "y")
    f = gx.tanh(x) * gx.log1p(y * y) - gx.maximum(x, y) + gx.expm1(x)
    fn = sp.lambdify((x_, y_), to_sympy(f), "math")
    compiled = gx.compile([x, y], f)
    for xv, yv in [(0.2, 0.7), (-1.5, 0.3)]:
        np.testing.assert_allclose(fn(xv, yv), compiled(xv, yv))
