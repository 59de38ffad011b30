"""Activations: values and gradients against torch (float32 and float64, huge inputs and
exact kinks included), finite-difference gradients, PReLU and RReLU, and graph shape:
one node per activation, derivatives that reuse the forward value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import graphc as gx
from graphc.graph import toposort
from graphc.ops import activations as act
from graphc.ops import elementwise as ew
from graphc.ops._generated import FORMULAS
from tests.helpers import assert_gradients, evaluate, requires_torch, torch

F = torch.nn.functional if torch is not None else None


@dataclass(frozen=True)
class Case:
    """An activation, its torch reference, and the points where it has a kink."""

    id: str
    fn: Callable
    reference: Callable  # torch tensor -> torch tensor, evaluated lazily
    kinks: tuple[float, ...] = ()
    torch_grad: bool = True  # torch.heaviside has no derivative
    torch_grad_rtol: float | None = None  # where torch's own gradient is less precise


CASES = [
    Case("identity", act.identity, lambda t: t * 1),
    Case("heaviside", act.heaviside, lambda t: torch.heaviside(t, t.new_zeros(())), (0.0,),
         torch_grad=False),
    Case("heaviside_half", lambda x: act.heaviside(x, at_zero=0.5),
         lambda t: torch.heaviside(t, t.new_full((), 0.5)), (0.0,), torch_grad=False),
    Case("threshold", lambda x: act.threshold(x, 0.5, -2.0), lambda t: F.threshold(t, 0.5, -2.0),
         (0.5,)),
    Case("sigmoid", act.sigmoid, lambda t: torch.sigmoid(t)),
    Case("sigmoid_c", lambda x: act.sigmoid(x, c=2.5), lambda t: torch.sigmoid(2.5 * t)),
    Case("logsigmoid", act.logsigmoid, lambda t: F.logsigmoid(t)),
    Case("relu", act.relu, lambda t: F.relu(t), (0.0,)),
    Case("relu6", act.relu6, lambda t: F.relu6(t), (0.0, 6.0)),
    Case("leaky_relu", lambda x: act.leaky_relu(x, 0.1), lambda t: F.leaky_relu(t, 0.1), (0.0,)),
    Case("rrelu_eval", act.rrelu, lambda t: F.rrelu(t, training=False), (0.0,)),
    Case("elu", lambda x: act.elu(x, 0.7), lambda t: F.elu(t, 0.7), (0.0,)),
    Case("selu", act.selu, lambda t: F.selu(t), (0.0,)),
    Case("celu", lambda x: act.celu(x, 1.5), lambda t: F.celu(t, 1.5), (0.0,)),
    Case("gelu", act.gelu, lambda t: F.gelu(t)),
    Case("gelu_tanh", lambda x: act.gelu(x, approximate="tanh"),
         lambda t: F.gelu(t, approximate="tanh")),
    Case("silu", act.silu, lambda t: F.silu(t)),
    Case("swish", lambda x: act.swish(x, beta=1.7), lambda t: t * torch.sigmoid(1.7 * t)),
    Case("mish", act.mish, lambda t: F.mish(t)),
    Case("softplus", act.softplus, lambda t: F.softplus(t)),
    Case("softplus_beta", lambda x: act.softplus(x, beta=2.0, threshold=5.0),
         lambda t: F.softplus(t, beta=2.0, threshold=5.0), (2.5,)),
    Case("softsign", act.softsign, lambda t: F.softsign(t), (0.0,)),
    Case("hardtanh", act.hardtanh, lambda t: F.hardtanh(t), (-1.0, 1.0)),
    Case("hardtanh_range", lambda x: act.hardtanh(x, -2.0, 1.5),
         lambda t: F.hardtanh(t, -2.0, 1.5), (-2.0, 1.5)),
    # torch's float64 hardsigmoid backward multiplies by a float32 1/6
    Case("hardsigmoid", act.hardsigmoid, lambda t: F.hardsigmoid(t), (-3.0, 3.0),
         torch_grad_rtol=1e-7),
    Case("hardswish", act.hardswish, lambda t: F.hardswish(t), (-3.0, 3.0)),
    Case("tanhshrink", act.tanhshrink, lambda t: F.tanhshrink(t)),
    Case("softshrink", lambda x: act.softshrink(x, 0.7), lambda t: F.softshrink(t, 0.7),
         (-0.7, 0.7)),
    Case("hardshrink", lambda x: act.hardshrink(x, 0.7), lambda t: F.hardshrink(t, 0.7),
         (-0.7, 0.7)),
    # the saturating ramp is hardtanh of the rescaled input, onto [0, 1]
    Case("piecewise_linear", act.piecewise_linear, lambda t: F.hardtanh(t + 0.5, 0.0, 1.0),
         (-0.5, 0.5)),
    Case("piecewise_linear_range", lambda x: act.piecewise_linear(x, lo=-1.0, hi=3.0),
         lambda t: F.hardtanh((t + 1.0) / 4.0, 0.0, 1.0), (-1.0, 3.0)),
]
PARAMS = [pytest.param(c, id=c.id) for c in CASES]

#: Huge magnitudes (overflow of exp), ordinary values, and none of them on a kink.
POINTS = np.array([-1000.0, -100.0, -30.0, -7.3, -2.9, -1.7, -1.2, -0.8, -0.3, -0.1, 0.2, 0.45,
                   0.9, 1.3, 2.6, 4.2, 7.7, 30.0, 100.0, 1000.0])
TOLERANCES = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


def _value_and_grad(fn: Callable, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xi = gx.input("x", x.shape, x.dtype)
    y = fn(xi)
    return gx.compile([xi], [y, gx.grad(gx.sum(y), xi)])(x)


def _torch_value_and_grad(case: Case, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    t = torch.tensor(x, requires_grad=case.torch_grad)
    y = case.reference(t)
    if not case.torch_grad:
        return y.numpy(), None
    y.sum().backward()
    return y.detach().numpy(), t.grad.numpy()


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", PARAMS)
def test_values_and_gradients_match_torch(case, dtype):
    x = np.concatenate([POINTS, case.kinks]).astype(dtype)
    value, grad = _value_and_grad(case.fn, x)
    want_value, want_grad = _torch_value_and_grad(case, x)
    assert value.dtype == grad.dtype == dtype
    assert np.isfinite(value).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(value, want_value, **TOLERANCES[dtype])
    if want_grad is not None:
        tolerance = TOLERANCES[dtype] | ({"rtol": case.torch_grad_rtol} if case.torch_grad_rtol
                                         and dtype == "float64" else {})
        np.testing.assert_allclose(grad, want_grad, **tolerance)


# -- the conventions at kinks, written out (they hold without torch too) ---------------------------
KINK_GRADIENTS = [
    ("relu", act.relu, [0.0], [0.0]),
    ("relu6", act.relu6, [0.0, 6.0], [0.0, 0.0]),
    ("leaky_relu", lambda x: act.leaky_relu(x, 0.2), [0.0], [0.2]),
    ("rrelu_eval", lambda x: act.rrelu(x, 0.1, 0.3), [0.0], [0.2]),
    ("elu", lambda x: act.elu(x, 0.5), [0.0], [0.5]),
    ("selu", act.selu, [0.0], [1.0507009873554805 * 1.6732632423543772]),
    ("celu", lambda x: act.celu(x, 2.0), [0.0], [1.0]),
    ("hardtanh", act.hardtanh, [-1.0, 1.0], [0.0, 0.0]),
    ("hardsigmoid", act.hardsigmoid, [-3.0, 3.0], [0.0, 0.0]),
    ("hardswish", act.hardswish, [-3.0, 3.0], [0.0, 1.0]),
    ("softshrink", act.softshrink, [-0.5, 0.5], [0.0, 0.0]),
    ("hardshrink", act.hardshrink, [-0.5, 0.5], [0.0, 0.0]),
    ("threshold", lambda x: act.threshold(x, 1.0, 5.0), [1.0], [0.0]),
    ("softplus", lambda x: act.softplus(x, beta=1.0, threshold=2.0), [2.0], [0.8807970779778823]),
    ("piecewise_linear", act.piecewise_linear, [-0.5, 0.5], [0.0, 0.0]),
    ("heaviside", act.heaviside, [0.0], [0.0]),
]


@pytest.mark.parametrize("fn, x, want", [row[1:] for row in KINK_GRADIENTS],
                         ids=[row[0] for row in KINK_GRADIENTS])
def test_gradient_at_kinks(fn, x, want):
    _, grad = _value_and_grad(fn, np.array(x))
    np.testing.assert_allclose(grad, want, rtol=1e-15)


def test_heaviside_value_at_zero_is_a_parameter():
    x = np.array([-2.0, 0.0, 3.0])
    for at_zero in (0.0, 0.5, 1.0):
        np.testing.assert_array_equal(evaluate(lambda v, h=at_zero: act.heaviside(v, h), x),
                                      [0.0, at_zero, 1.0])


# -- finite differences in float64 ----------------------------------------------------------------

def _away_from(kinks: tuple[float, ...], size=(2, 3), seed=0) -> np.ndarray:
    """Random points in (−4, 4), each at least 0.1 from every kink."""
    x = np.random.default_rng(seed).uniform(-4, 4, size)
    for k in kinks:
        x = np.where(np.abs(x - k) < 0.1, x + 0.25, x)
    return x


#: Second order everywhere: away from their kinks even the piecewise activations are
#: smooth, and the second order checks the derivatives written in terms of ``out``.
GRADIENT_TABLE = [pytest.param(c.fn, c.kinks, 2, id=c.id) for c in CASES]


@pytest.mark.parametrize("fn, kinks, order", GRADIENT_TABLE)
def test_gradients_by_finite_differences(fn, kinks, order):
    assert_gradients(fn, _away_from(kinks), order=order)


def test_gradients_on_both_sides_of_the_softplus_threshold():
    x = np.array([-3.0, -0.4, 0.3, 1.9, 2.2, 4.0])  # βx = 2x: threshold 4 lies at x = 2
    assert_gradients(lambda v: act.softplus(v, beta=2.0, threshold=4.0), x, order=2)


# -- stability ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exact_tails(dtype):
    x = np.array([-1000.0, 1000.0], dtype)
    assert evaluate(act.sigmoid, x).tolist() == [0.0, 1.0]
    assert evaluate(lambda v: act.sigmoid(v, c=3.0), x).tolist() == [0.0, 1.0]
    assert evaluate(act.logsigmoid, x).tolist() == [-1000.0, 0.0]
    assert evaluate(act.softplus, x).tolist() == [0.0, 1000.0]
    # above the torch default threshold softplus is x itself; below, still no overflow
    assert evaluate(lambda v: act.softplus(v, threshold=1e6), x).tolist() == [0.0, 1000.0]
    _, grad = _value_and_grad(act.sigmoid, x)
    assert grad.tolist() == [0.0, 0.0]


def test_small_tails_keep_their_relative_accuracy():
    x = np.array([-50.0, 50.0])
    np.testing.assert_allclose(evaluate(act.softplus, x)[0], np.exp(-50.0), rtol=1e-14)
    np.testing.assert_allclose(evaluate(act.logsigmoid, x)[1], -np.exp(-50.0), rtol=1e-14)
    _, grad = _value_and_grad(act.logsigmoid, x)  # σ(−x) from the output, −expm1(out)
    np.testing.assert_allclose(grad, [1.0, np.exp(-50.0)], rtol=1e-14)
    _, grad = _value_and_grad(act.softplus, np.array([-50.0]))
    np.testing.assert_allclose(grad, [np.exp(-50.0)], rtol=1e-14)
    # σ(x) = e^x/(1 + e^x) below zero: no overflow, and the tiny values stay exact
    np.testing.assert_allclose(evaluate(act.sigmoid, np.array([-700.0, -50.0])),
                               np.exp([-700.0, -50.0]) / (1 + np.exp([-700.0, -50.0])),
                               rtol=1e-14)


def test_gelu_tanh_is_x_sigmoid_2u_without_cancellation():
    """½(1 + tanh u) = σ(2u): equal to torch's formula where that is accurate, and still
    relatively accurate for x ≪ 0, where 1 + tanh u cancels to 0."""
    def torch_form(v):
        return 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3)))

    def exact(v):
        two_u = 2 * np.sqrt(2 / np.pi) * (v + 0.044715 * v**3)
        return v * np.exp(-np.logaddexp(0, -two_u))

    x = np.linspace(-4, 4, 81)
    np.testing.assert_allclose(evaluate(lambda v: act.gelu(v, approximate="tanh"), x),
                               torch_form(x), rtol=1e-14, atol=1e-15)
    tail = np.array([-8.0, -10.0, -20.0])
    assert np.all(torch_form(tail) == 0)
    np.testing.assert_allclose(evaluate(lambda v: act.gelu(v, approximate="tanh"), tail),
                               exact(tail), rtol=1e-13)
    assert np.all(exact(tail) < 0)


# -- PReLU and RReLU ------------------------------------------------------------------------------

def test_prelu_slope_broadcasts_and_gets_a_gradient():
    x = np.random.default_rng(1).standard_normal((4, 3))
    alpha = np.array([0.1, 0.25, -0.5])
    np.testing.assert_allclose(evaluate(act.prelu, x, alpha), np.where(x > 0, x, alpha * x))
    assert_gradients(act.prelu, x, alpha, order=2)
    xi, ai = gx.input("x", x.shape, "float64"), gx.input("a", alpha.shape, "float64")
    g_alpha = gx.compile([xi, ai], gx.grad(gx.sum(act.prelu(xi, ai)), ai))(x, alpha)
    np.testing.assert_allclose(g_alpha, np.where(x > 0, 0.0, x).sum(axis=0))


@requires_torch
def test_prelu_matches_torch_per_channel():
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    x[0, 0, 0, :2] = 0.0  # the kink: gradients go to the slope's branch
    alpha = np.array([0.1, 0.25, -0.5])
    xi, ai = gx.input("x", x.shape, "float64"), gx.input("a", (3, 1, 1), "float64")
    y = act.prelu(xi, ai)
    value, gx_, ga = gx.compile([xi, ai], [y, *gx.grad(gx.sum(y), [xi, ai])])(
        x, alpha.reshape(3, 1, 1))
    t, w = torch.tensor(x, requires_grad=True), torch.tensor(alpha, requires_grad=True)
    ty = F.prelu(t, w)
    ty.sum().backward()
    np.testing.assert_allclose(value, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gx_, t.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ga.reshape(3), w.grad.numpy(), rtol=1e-12)


def test_prelu_keeps_a_python_slope_weakly_typed():
    x = gx.input("x", (3,), "float32")
    assert act.prelu(x, 0.25).dtype == "float32"


def test_rrelu_in_training_draws_a_slope_per_element():
    x = np.concatenate([-np.linspace(0.5, 3.0, 200), np.linspace(0.5, 3.0, 50)])
    xi = gx.input("x", x.shape, "float64")
    y = act.rrelu(xi, lower=0.1, upper=0.4, training=True, key=11)
    fn = gx.compile([xi], [y, gx.grad(gx.sum(y), xi)])
    value, grad = fn(x)
    slopes = value[:200] / x[:200]
    assert np.all((slopes >= 0.1) & (slopes < 0.4)) and np.std(slopes) > 0.05
    np.testing.assert_array_equal(value[200:], x[200:])
    np.testing.assert_allclose(grad, np.concatenate([slopes, np.ones(50)]))  # the same draw
    again, _ = fn(x)
    assert not np.allclose(again, value)  # every call draws anew
    other = gx.compile([xi], act.rrelu(xi, 0.1, 0.4, training=True, key=11))(x)
    np.testing.assert_array_equal(other, value)  # reproducible from the key


def test_rrelu_graphs():
    x = gx.input("x", (5,), "float32")
    train = act.rrelu(x, training=True)
    assert train.op.name == "prelu" and train.inputs[1].op.name == "uniform_like"
    assert train.inputs[1].attr["low"] == 1 / 8 and train.inputs[1].attr["high"] == 1 / 3
    assert act.rrelu(x, training=True).inputs[1].attr["key"] != train.inputs[1].attr["key"]
    inference = act.rrelu(x, 0.1, 0.3)
    assert inference.op.name == "leaky_relu" and inference.attr["alpha"] == pytest.approx(0.2)
    assert train.dtype == inference.dtype == "float32"


# -- graph shape ----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_each_activation_is_one_node(case):
    x = gx.input("x", (3,), "float32")
    y = case.fn(x)
    assert toposort([y]) == [x, y]
    assert y.op is ew.ELEMENTWISE[y.op.name] and y.op.name in FORMULAS


def _reads_out(name: str) -> bool:
    """Whether some derivative program of the formula reads the forward value ``out``."""
    return any(d.result == "out" or any("out" in args for _, _, args in d.instrs)
               for d in FORMULAS[name].derivatives if d is not None)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_derivative_graphs_reuse_the_output_where_the_formula_says(case):
    x, g = gx.input("x", (3,), "float64"), gx.input("g", (3,), "float64")
    y = case.fn(x)
    backward = toposort([gx.vjp(y, x, g)])  # a fed cotangent: y enters only through the rule
    assert (y in backward) == _reads_out(y.op.name)


def test_out_hints_are_used():
    uses_out = {name for name in FORMULAS if name in act.ACTIVATIONS and _reads_out(name)}
    assert {"sigmoid", "logsigmoid", "elu", "selu", "celu", "silu", "softplus"} <= uses_out


def test_sigmoid_derivative_is_built_from_the_sigmoid_node():
    x, g = gx.input("x", (3,), "float32"), gx.input("g", (3,), "float32")
    s = act.sigmoid(x)
    backward = toposort([gx.vjp(s, x, g)])
    ops = {n.op.name for n in backward}
    assert s in backward and "exp" not in ops
    assert [n for n in backward if n.op.name == "sigmoid"] == [s]


def test_activations_stay_in_their_dtype_under_double_differentiation():
    for case in CASES:
        x = gx.input("x", (3,), "float32")
        y = case.fn(x)
        g = gx.grad(gx.sum(y), x)
        gg = gx.grad(gx.sum(g * g), x, allow_unused=True)
        assert all(n.dtype in ("float32", "bool") for n in toposort([gg])), case.id


def test_integer_inputs():
    x = np.array([-2, 0, 3, 9])
    assert evaluate(act.relu, x).tolist() == [0, 0, 3, 9]
    assert evaluate(act.relu6, x).tolist() == [0, 0, 3, 6]
    assert evaluate(act.identity, x).dtype == x.dtype
    np.testing.assert_allclose(evaluate(act.sigmoid, x), 1 / (1 + np.exp(-x)))
    assert evaluate(act.sigmoid, x).dtype == np.float64


def test_broadcasting_and_symbolic_dims():
    x = gx.input("x", ("batch", 3), "float64")
    y = act.leaky_relu(x, 0.5)
    assert y.shape == ("batch", 3)
    a = np.array([[-2.0, 0.5, 1.0], [3.0, -4.0, 0.0]])
    np.testing.assert_allclose(gx.compile([x], y)(a), np.where(a > 0, a, 0.5 * a))


# -- the public API -------------------------------------------------------------------------------

def test_registry_and_namespace():
    assert act.ACTIVATIONS["tanh"] is gx.tanh is ew.tanh
    assert act.ACTIVATIONS["sign"] is gx.sign is ew.sign
    assert set(act.__all__) | {"tanh", "sign"} == set(act.ACTIVATIONS)
    for name in act.__all__:
        assert getattr(gx, name) is act.ACTIVATIONS[name] is getattr(act, name)
        assert act.ACTIVATIONS[name].__doc__


def test_every_registered_activation_builds():
    x = gx.input("x", (2,), "float64")
    needs = {"prelu": (0.25,), "threshold": (0.0, -1.0)}
    for name, fn in act.ACTIVATIONS.items():
        y = fn(x, *needs.get(name, ()))
        assert y.shape == (2,) and y.dtype == "float64", name


def test_parameter_variants_build_the_plain_node():
    x = gx.input("x", (2,), "float32")
    assert act.sigmoid(x, c=1.0) is act.sigmoid(x)
    assert act.swish(x) is act.silu(x) and act.swish(x, beta=2).op.name == "swish"
    assert act.leaky_relu(x, 1) is act.leaky_relu(x, 1.0)  # attrs are floats


@pytest.mark.parametrize("call, match", [
    (lambda x: act.hardtanh(x, 1.0, -1.0), "min_val"),
    (lambda x: act.gelu(x, approximate="fast"), "approximate"),
    (lambda x: act.softplus(x, beta=0.0), "beta"),
    (lambda x: act.piecewise_linear(x, 1.0, 1.0), "lo"),
    (lambda x: act.rrelu(x, 0.5, 0.1), "lower"),
    (lambda x: act.softshrink(x, -0.1), "lambd"),
    (lambda x: act.celu(x, 0.0), "alpha"),
])
def test_bad_parameters_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call(gx.input("x", (2,), "float32"))
