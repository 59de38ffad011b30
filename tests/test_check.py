"""``gx.check_grad`` catches wrong derivatives, at first and higher order, and says where."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.ops.base import Op


class SquareWithWrongVJP(Op):
    """x², with the derivative x instead of 2x: the bug check_grad must catch."""

    name = "test_check_square_wrong_vjp"

    def infer(self, inputs, **attrs):
        return inputs[0]

    def vjp(self, node, g):
        return (g * node.inputs[0],)

    def impl(self, x):
        return x * x


class CubeWithWrongSecondDerivative(Op):
    """x³ whose VJP 3·x² is right in value but built from the broken square, so the
    derivative of the derivative is wrong (3x instead of 6x)."""

    name = "test_check_cube_wrong_second"

    def infer(self, inputs, **attrs):
        return inputs[0]

    def vjp(self, node, g):
        return (g * 3.0 * _wrong_square(node.inputs[0]),)

    def impl(self, x):
        return x**3


_wrong_square = SquareWithWrongVJP()
_wrong_cube = CubeWithWrongSecondDerivative()

X = np.array([0.5, -1.2, 2.0])


def test_correct_gradient_passes():
    report = gx.check_grad(lambda x: gx.sum(x * x * x), [X], order=2)
    assert report.ok, str(report)
    assert report.orders == [1, 2] and report.args == [0, 0]
    assert max(report.abs_errors) < 1e-6


def test_wrong_first_derivative_is_detected():
    report = gx.check_grad(lambda x: gx.sum(_wrong_square(x)), [X])
    assert not report.ok
    # analytic x vs numeric 2x: the largest error is max|x|
    assert report.abs_errors[0] == pytest.approx(2.0, rel=1e-6)
    assert report.rel_errors[0] == pytest.approx(0.5, rel=1e-6)
    assert "MISMATCH" in str(report) and "order 1, arg 0" in str(report)


def test_wrong_second_derivative_is_detected_only_at_order_two():
    f = lambda x: gx.sum(_wrong_cube(x))  # noqa: E731
    assert gx.check_grad(f, [X], order=1).ok
    report = gx.check_grad(f, [X], order=2)
    assert not report.ok
    assert report.orders == [1, 2]
    assert report.abs_errors[0] < 1e-6 and report.abs_errors[1] > 0.1
    assert "order 2, arg 0" in str(report)


def test_non_scalar_output_is_checked_through_a_projection():
    assert not gx.check_grad(lambda x: _wrong_square(x) + x, [X]).ok
    assert gx.check_grad(lambda x: x * x + x, [X], order=2).ok


def test_only_the_wrong_argument_is_flagged():
    f = lambda x, y: gx.sum(_wrong_square(x) + y * y)  # noqa: E731
    report = gx.check_grad(f, [X, X])
    assert not report.ok
    assert report.args == [0, 1]
    assert report.abs_errors[0] > 0.1 and report.abs_errors[1] < 1e-6


def test_argnums_and_integer_arguments():
    labels = np.array([2, 0])

    def f(x, k):
        return gx.sum(x * gx.cast(k, "float64"))

    report = gx.check_grad(f, [np.array([1.0, 3.0]), labels])
    assert report.ok and report.args == [0]
    assert not gx.check_grad(lambda x, y: gx.sum(_wrong_square(x) + y), [X, X], argnums=[0]).ok
    assert gx.check_grad(lambda x, y: gx.sum(_wrong_square(x) + y), [X, X], argnums=[1]).ok


def test_large_values_are_not_false_alarms():
    # |f| ~ 4e8: f's rounding error divided by 2ε swamps rtol on the slope alone
    x = np.full(400, 1e3)
    report = gx.check_grad(lambda v: gx.sum(v * v), [x])
    assert report.ok, str(report)
    assert report.rel_errors[0] > 1e-5  # beyond the default rtol: only the noise floor passes it
    assert report.abs_errors[0] < 0.5  # the slopes are 2000; what remains is rounding noise
    assert not gx.check_grad(lambda v: gx.sum(_wrong_square(v)), [x]).ok


def test_scalar_arguments():
    report = gx.check_grad(lambda x, y: gx.sin(x) * y, [0.3, 2.0], order=3)
    assert report.ok, str(report)
    assert report.orders == [1, 1, 2, 2, 3, 3]
