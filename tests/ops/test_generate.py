"""The generator: the checked-in module is current, hints are checked against sympy.diff,
and every generated program means what its sympy formula says."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import graphc as gx
from graphc.graph import toposort
from graphc.ops import generate
from graphc.ops._generated import FORMULAS
from graphc.ops.elementwise import ELEMENTWISE
from graphc.ops.formulas import SPECS, Spec, out, x
from graphc.ops.scalar import NUMPY_PRIMITIVES, Program


def test_checked_in_module_is_what_the_generator_writes():
    assert generate.generate() == generate.TARGET.read_text(), (
        "graphc/ops/_generated.py is stale: run `python -m graphc.ops.generate`")


def test_a_hint_that_disagrees_with_sympy_diff_is_refused():
    wrong = Spec("bad_sigmoid", (x,), 1 / (1 + sp.exp(-x)), hints={x: out * (1 + out)})
    with pytest.raises(ValueError, match="bad_sigmoid: hint d/dx"):
        generate.build_formula(wrong)


def test_a_hint_that_agrees_is_used():
    spec = Spec("s", (x,), 1 / (1 + sp.exp(-x)), hints={x: out * (1 - out)})
    assert generate.derivative(spec, x) == out * (1 - out)
    assert generate.build_formula(spec).derivatives[0].ops == ("sub", "mul")


def test_derivatives_are_rewritten_in_terms_of_out_when_cheaper():
    spec = Spec("e", (x,), 3 * sp.exp(x))
    assert generate.derivative(spec, x) == out


def test_every_formula_is_generated_once_in_spec_order():
    assert list(FORMULAS) == [s.name for s in SPECS]


def _programs():
    for name, f in FORMULAS.items():
        yield name, "value", f, f.value
        for var, d in zip(f.inputs, f.derivatives, strict=True):
            if d is not None:
                yield name, f"d/d{var}", f, d


def test_programs_are_made_of_primitives():
    for name, label, _, program in _programs():
        assert set(program.ops) <= set(NUMPY_PRIMITIVES), (name, label)
    for name in NUMPY_PRIMITIVES:  # a primitive is its own single instruction
        assert FORMULAS[name].value.ops == (name,)


@pytest.mark.parametrize("name", [n for n, f in FORMULAS.items() if f.params])
def test_attribute_params_take_the_working_dtype(name):
    """Params are Python floats in the node's attrs; values and derivatives of a float32
    op must still be float32 (where() would type a bare float from its condition)."""
    f = FORMULAS[name]
    attrs = dict(zip(f.params, (0.25, 1.5, 2.5, 3.5), strict=False))
    xs = [gx.input(v, (3,), "float32") for v in f.inputs]
    y = ELEMENTWISE[name](*xs, **attrs)
    assert y.dtype == "float32"
    wrt = [x for x, d in zip(xs, f.derivatives, strict=True) if d is not None]
    arrays = [np.linspace(-2, 2, 3, dtype="float32") for _ in xs]
    for value in gx.compile(xs, [y, *gx.grad(y.sum(), wrt)])(*arrays):
        assert value.dtype == np.float32, name


def test_numeric_factors_become_one_constant():
    assert generate.to_program(sp.sqrt(2) * x / 2) == Program(
        (("t0", "mul", (float(np.sqrt(0.5)), "x")),), "t0")
    assert generate.to_program(x / 6).instrs == (("t0", "div", ("x", 6.0)),)
    assert generate.to_program(2 * x / 3).ops == ("mul", "div")


def test_the_derivative_of_a_step_is_zero_through_the_chain_rule():
    assert generate.sympy_derivative(sp.floor(x), x) == 0
    assert generate.sympy_derivative(sp.floor(x**2), x) == 0
    assert generate.sympy_derivative(x * sp.floor(x**2), x) == sp.floor(x**2)
    assert generate.sympy_derivative(sp.Heaviside(x), x) == 0
    assert generate.to_program(sp.floor(x / 2)).ops == ("div", "floor")


def test_unknown_sympy_functions_are_refused():
    with pytest.raises(NotImplementedError, match="gamma"):
        generate.to_program(sp.gamma(x))


# -- every program against its sympy formula, at random points -----------------------------------

_PARAM_VALUES = (0.6, 1.7, 2.3, 3.1)  # increasing: lo < hi, min_val < max_val
_SYMBOLS = {s.name: s for spec in SPECS for s in (*spec.inputs, *spec.params)}


def _points(spec: Spec, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    params = dict(zip((p.name for p in spec.params), _PARAM_VALUES, strict=False))
    low = 0.2 if spec.name in ("log", "sqrt", "pow") else -2.5
    return [{**{v.name: float(rng.uniform(low, 2.5)) for v in spec.inputs}, **params}
            for _ in range(6)]


def _sympy_value(expr: sp.Expr, point: dict[str, float]) -> float | None:
    z = complex(expr.subs({_SYMBOLS[k]: v for k, v in point.items()}).evalf())
    return z.real if z.imag == 0 and np.isfinite(z.real) else None


def _run(program: Program, env: dict[str, float]) -> float:
    arrays = {k: np.float64(v) for k, v in env.items()}
    return float(program.evaluate(arrays, "float64"))


@pytest.mark.parametrize("spec", [s for s in SPECS if s.result != "bool"], ids=lambda s: s.name)
def test_programs_compute_their_formula_and_its_derivatives(spec):
    formula = FORMULAS[spec.name]
    for point in _points(spec, seed=len(spec.name)):
        want = _sympy_value(spec.value, point)
        if want is None:
            continue
        value = _run(formula.value, point)
        np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-12)
        for var, program in zip(spec.inputs, formula.derivatives, strict=True):
            if program is None:
                continue
            slope = _sympy_value(generate.sympy_derivative(spec.value, var), point)
            np.testing.assert_allclose(_run(program, {**point, "out": value}), slope,
                                       rtol=1e-9, atol=1e-12, err_msg=f"d/d{var}")


def test_comparisons_and_logic_are_gradient_free():
    for spec in SPECS:
        if spec.result == "bool":
            assert FORMULAS[spec.name].derivatives == (None,) * len(spec.inputs)
            assert not ELEMENTWISE[spec.name].differentiable


@pytest.mark.parametrize("name", [n for n, f in FORMULAS.items() if f.params])
def test_param_formulas_keep_float32_through_second_derivatives(name):
    formula = FORMULAS[name]
    inputs = [gx.input(v, (3,), "float32") for v in formula.inputs]
    attrs = dict(zip(formula.params, _PARAM_VALUES, strict=False))
    y = ELEMENTWISE[name](*inputs, **attrs)
    first = gx.grad(gx.sum(y), inputs)
    second = gx.grad(gx.sum(first[0] * first[0]), inputs, allow_unused=True)
    for node in toposort([y, *first, *second]):
        assert node.dtype in ("float32", "bool"), (name, node)
