"""Elementwise primitives: values against NumPy and torch, gradients (second order) by
finite differences, dtype rules, broadcasting, and clip / where / cast / comparisons /
logic."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gx
from graphc.graph import toposort
from graphc.ops import elementwise as ew
from tests.helpers import assert_gradients, evaluate, requires_torch, torch

rng = np.random.default_rng(0)


def _real(shape=(2, 3)):
    return rng.uniform(-2.0, 2.0, shape)


def _positive(shape=(2, 3)):
    return rng.uniform(0.3, 2.5, shape)


def _away_from_zero(shape=(2, 3)):
    x = _real(shape)
    return np.where(np.abs(x) < 0.2, x + 0.5, x)


def _off_integers(shape=(2, 3)):
    """Away from floor's jumps: every fractional part in [0.15, 0.85]."""
    return rng.integers(-3, 3, shape) + rng.uniform(0.15, 0.85, shape)


def _distinct_pair(shape=(2, 3)):
    x, y = _real(shape), _real(shape)
    return x, np.where(np.abs(x - y) < 0.2, y + 0.5, y)


def _unit(shape=(2, 3)):
    """Inside (−1, 1), away from the ends where asin, acos and atanh blow up."""
    return rng.uniform(-0.9, 0.9, shape)


def _above_one(shape=(2, 3)):
    return rng.uniform(1.2, 3.0, shape)


def _off_half_integers(shape=(2, 3)):
    """Away from round's jumps at k + 1/2."""
    return rng.integers(-3, 3, shape) + rng.uniform(-0.35, 0.35, shape)


def _quotient_pair(shape=(2, 3)):
    """x, y with x/y away from integers, where fmod and mod jump."""
    y = rng.uniform(0.7, 1.3, shape) * rng.choice([-1.0, 1.0], shape)
    return y * (rng.integers(-3, 3, shape) + rng.uniform(0.15, 0.85, shape)), y


_erf = np.vectorize(math.erf)

# name, graphc op, NumPy reference, input generator
UNARY = [
    ("neg", gx.neg, np.negative, _real),
    ("abs", gx.abs, np.abs, _away_from_zero),
    ("sign", gx.sign, np.sign, _away_from_zero),
    ("floor", gx.floor, np.floor, _off_integers),
    ("exp", gx.exp, np.exp, _real),
    ("log", gx.log, np.log, _positive),
    ("log1p", gx.log1p, np.log1p, _positive),
    ("expm1", gx.expm1, np.expm1, _real),
    ("sqrt", gx.sqrt, np.sqrt, _positive),
    ("square", gx.square, np.square, _real),
    ("reciprocal", gx.reciprocal, np.reciprocal, _away_from_zero),
    ("sin", gx.sin, np.sin, _real),
    ("cos", gx.cos, np.cos, _real),
    ("tanh", gx.tanh, np.tanh, _real),
    ("erf", gx.erf, _erf, _real),
    ("atan", gx.atan, np.arctan, lambda: 3 * _real()),
    ("round", gx.round, np.round, _off_half_integers),
    ("ceil", gx.ceil, np.ceil, _off_integers),
    ("trunc", gx.trunc, np.trunc, _off_integers),
    ("tan", gx.tan, np.tan, lambda: 0.7 * _real()),
    ("sinh", gx.sinh, np.sinh, _real),
    ("cosh", gx.cosh, np.cosh, _real),
    ("asin", gx.asin, np.arcsin, _unit),
    ("acos", gx.acos, np.arccos, _unit),
    ("asinh", gx.asinh, np.arcsinh, lambda: 3 * _real()),
    ("acosh", gx.acosh, np.arccosh, _above_one),
    ("atanh", gx.atanh, np.arctanh, _unit),
]
BINARY = [
    ("add", gx.add, np.add, lambda: (_real(), _real())),
    ("sub", gx.sub, np.subtract, lambda: (_real(), _real())),
    ("mul", gx.mul, np.multiply, lambda: (_real(), _real())),
    ("div", gx.div, np.divide, lambda: (_real(), _away_from_zero())),
    ("pow", gx.pow, np.power, lambda: (_positive(), _real())),
    ("maximum", gx.maximum, np.maximum, _distinct_pair),
    ("minimum", gx.minimum, np.minimum, _distinct_pair),
    ("fmod", gx.fmod, np.fmod, _quotient_pair),
    ("mod", gx.mod, np.mod, _quotient_pair),
]


def _unary_params():
    return [pytest.param(f, ref, make, id=name) for name, f, ref, make in UNARY]


def _binary_params():
    return [pytest.param(f, ref, make, id=name) for name, f, ref, make in BINARY]


# -- values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("f, ref, make", _unary_params())
def test_unary_values_match_numpy(f, ref, make, dtype):
    x = make().astype(dtype)
    got = evaluate(f, x)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref(x), rtol=1e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("f, ref, make", _binary_params())
def test_binary_values_match_numpy(f, ref, make, dtype):
    x, y = (a.astype(dtype) for a in make())
    got = evaluate(f, x, y)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref(x, y), rtol=1e-6 if dtype == "float32" else 1e-13)


def test_operators_spell_the_primitives():
    x, y, base = _real(), _away_from_zero(), _positive()
    got = evaluate(lambda a, b, c: [a + b, a - b, a * b, a / b, -a, abs(a), 2.0 - a, 1.0 / b,
                                    c ** a, 2.0 ** a, +a], x, y, base)
    want = [x + y, x - y, x * y, x / y, -x, np.abs(x), 2.0 - x, 1.0 / y, base ** x, 2.0 ** x, x]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-14)


# -- gradients by finite differences, to second order --------------------------------------------

#: op, inputs, order, check_grad options
GRADIENTS = [
    *(pytest.param(f, lambda make=make: (make(),), 2, {}, id=name) for name, f, _, make in UNARY),
    *(pytest.param(f, make, 2, {}, id=name) for name, f, _, make in BINARY),
    pytest.param(lambda x: gx.clip(x, -0.5, 0.7), lambda: (_away_from_zero(),), 2, {}, id="clip"),
    pytest.param(lambda c, x, y: gx.where(c > 0, x, y), lambda: (_real(), _real(), _real()), 2,
                 {}, id="where"),
    # through float32 and back: finite differences at float32 resolution
    pytest.param(lambda x: gx.cast(gx.cast(x, "float32") * 3.0, "float64"), lambda: (_real(),), 2,
                 dict(eps=1e-3, rtol=1e-3, atol=1e-4), id="cast"),
    pytest.param(lambda x, y: x * gx.exp(y) / (1.0 + x * x), lambda: (_real(), _real()), 3, {},
                 id="composite_third_order"),
]


@pytest.mark.parametrize("f, make, order, options", GRADIENTS)
def test_gradients_by_finite_differences(f, make, order, options):
    assert_gradients(f, *make(), order=order, **options)


def test_gradients_of_broadcast_inputs_are_summed_back():
    x, b = _real((4, 3)), _real((3,))
    assert_gradients(lambda u, v: gx.tanh(u * v + v), x, b, order=2)
    xi, bi = gx.input("x", (4, 3), "float64"), gx.input("b", (3,), "float64")
    g = gx.compile([xi, bi], gx.grad(gx.sum(xi * bi), bi))(x, b)
    np.testing.assert_allclose(g, x.sum(axis=0))


# -- torch: values and gradients ------------------------------------------------------------------

TORCH = {
    "neg": torch.neg, "abs": torch.abs, "sign": torch.sign,
    "floor": torch.floor, "exp": torch.exp, "log": torch.log,
    "log1p": torch.log1p, "expm1": torch.expm1, "sqrt": torch.sqrt, "square": torch.square,
    "reciprocal": torch.reciprocal, "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh,
    "erf": torch.erf, "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum,
    "atan": torch.atan, "round": torch.round, "ceil": torch.ceil, "trunc": torch.trunc,
    "tan": torch.tan, "sinh": torch.sinh, "cosh": torch.cosh, "asin": torch.asin,
    "acos": torch.acos, "asinh": torch.asinh, "acosh": torch.acosh, "atanh": torch.atanh,
    "fmod": torch.fmod, "mod": torch.remainder,
} if torch is not None else {}


def _torch_params():
    rows = [(name, f, lambda make=make: (make(),)) for name, f, _, make in UNARY]
    rows += [(name, f, make) for name, f, _, make in BINARY]
    return [pytest.param(name, f, make, id=name) for name, f, make in rows]


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, f, make", _torch_params())
def test_values_and_gradients_match_torch(name, f, make, dtype):
    arrays = [a.astype(dtype) for a in make()]
    xs = [gx.input(f"a{k}", a.shape, dtype) for k, a in enumerate(arrays)]
    y = f(*xs)
    got = gx.compile(xs, [y, *gx.grad(gx.sum(y), xs)])(*arrays)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ty = TORCH[name](*ts)
    ty.sum().backward()
    want = [ty.detach().numpy(), *(t.grad.numpy() for t in ts)]
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, **tol)


@requires_torch
def test_conventions_at_kinks_and_ties_match_torch():
    x = np.array([0.0, -1.0, 2.0, 2.0])
    y = np.array([0.0, 1.0, 2.0, -3.0])
    xs = [gx.input("x", (4,), "float64"), gx.input("y", (4,), "float64")]
    exprs = {"abs": lambda a, b: gx.abs(a), "maximum": gx.maximum, "minimum": gx.minimum,
             "clip": lambda a, b: gx.clip(a, -1.0, 2.0), "sign": lambda a, b: gx.sign(a),
             "floor": lambda a, b: gx.floor(a)}
    refs = {"abs": lambda a, b: torch.abs(a), "maximum": torch.maximum,
            "minimum": torch.minimum, "clip": lambda a, b: torch.clamp(a, -1.0, 2.0),
            "sign": lambda a, b: torch.sign(a), "floor": lambda a, b: torch.floor(a)}
    for name, f in exprs.items():
        got = gx.compile(xs, gx.grad(gx.sum(f(*xs)), xs, allow_unused=True))(x, y)
        ts = [torch.tensor(a, requires_grad=True) for a in (x, y)]
        refs[name](*ts).sum().backward()
        for g, t in zip(got, ts, strict=True):
            want = t.grad.numpy() if t.grad is not None else np.zeros(4)
            np.testing.assert_array_equal(g, want, err_msg=name)


def test_ties_split_the_gradient_evenly():
    x = gx.input("x", (2,), "float64")
    y = gx.input("y", (2,), "float64")
    gxs, gys = gx.compile([x, y], gx.grad(gx.sum(gx.maximum(x, y)), [x, y]))(
        np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    assert gxs.tolist() == [0.5, 1.0] and gys.tolist() == [0.5, 0.0]


# -- dtype rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sin", "reciprocal"])
def test_float_results_promote_integers_to_float64(name):
    op = ew.ELEMENTWISE[name]
    assert op(gx.input("i", (2,), "int32")).dtype == "float64"
    assert op(gx.input("f", (2,), "float32")).dtype == "float32"
    assert op(gx.input("h", (2,), "float16")).dtype == "float16"
    np.testing.assert_allclose(evaluate(op, np.array([1, 2], np.int32)),
                               getattr(np, name)(np.array([1.0, 2.0])) if name != "reciprocal"
                               else [1.0, 0.5])


@pytest.mark.parametrize("a, b", [("int32", "int32"), ("int8", "int64"), ("int32", "float32"),
                                  ("uint8", "int8"), ("float32", "float64"), ("bool", "int16")])
def test_same_results_follow_numpy_promotion(a, b):
    x, y = gx.input("x", (2,), a), gx.input("y", (2,), b)
    want = np.result_type(a, b).name
    for op in (gx.add, gx.mul, gx.maximum, gx.minimum):
        assert op(x, y).dtype == want
    xv, yv = np.array([3, 1], a), np.array([2, 1], b)
    assert evaluate(gx.add, xv, yv).dtype == want
    np.testing.assert_array_equal(evaluate(gx.add, xv, yv), xv + yv)


def test_integer_arithmetic_stays_integer_and_division_is_true_division():
    i, j = np.array([7, -3, 4]), np.array([2, 2, 4])
    assert evaluate(gx.square, i).tolist() == [49, 9, 16]
    assert evaluate(gx.square, i).dtype == i.dtype
    assert evaluate(gx.abs, i).tolist() == [7, 3, 4]
    assert evaluate(gx.sign, i).tolist() == [1, -1, 1]
    assert evaluate(gx.floor, i).tolist() == [7, -3, 4]
    assert evaluate(gx.floor, i).dtype == i.dtype
    assert evaluate(gx.pow, i, j).tolist() == [49, 9, 256]
    div = evaluate(gx.div, i, j)
    assert div.dtype == np.float64 and div.tolist() == [3.5, -1.5, 1.0]


def test_python_scalars_take_the_tensor_dtype():
    x = gx.input("x", (2,), "float32")
    assert (x * 0.1).dtype == (0.1 + x).dtype == gx.maximum(x, 0.0).dtype == "float32"
    assert gx.where(x > 0, x, 0.0).dtype == "float32"
    assert gx.clip(x, -1, 1).dtype == "float32"
    got = evaluate(lambda v: v * 0.1, np.array([1.0, 2.0], np.float32))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array([1.0, 2.0], np.float32) * np.float32(0.1))


def test_float32_gradients_stay_float32():
    x, y = gx.input("x", (3,), "float32"), gx.input("y", (3,), "float32")
    loss = gx.sum(gx.clip(x, -1, 1) * gx.exp(y) / gx.sqrt(y * y + 1.0) + gx.maximum(x, y))
    grads = gx.grad(loss, [x, y])
    second = gx.grad(gx.sum(grads[0] * grads[1]), [x, y], allow_unused=True)
    assert all(n.dtype in ("float32", "bool") for n in toposort([*grads, *second]))


# -- broadcasting ---------------------------------------------------------------------------------

def test_broadcasting_values_and_shapes():
    a, b = _real((3, 1)), _real((1, 4))
    got = evaluate(lambda u, v: gx.maximum(u, v) * 2.0, a, b)
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, np.maximum(a, b) * 2.0)
    assert (gx.input("s", ()) + gx.input("v", (5, 2))).shape == (5, 2)


def test_symbolic_dims_broadcast():
    x = gx.input("x", ("batch", 1), "float64")
    y = gx.input("y", (4,), "float64")
    assert (x * y).shape == ("batch", 4)
    f = gx.compile([x, y], x * y)
    assert f(np.ones((3, 1)), np.arange(4.0)).shape == (3, 4)


def test_incompatible_shapes_are_a_type_error_naming_them():
    x, y = gx.input("x", (3, 2), "float32"), gx.input("y", (4,), "float32")
    with pytest.raises(gx.GraphcTypeError, match=r"add.*2 vs 4"):
        gx.add(x, y)
    with pytest.raises(gx.GraphcTypeError, match="batch"):
        gx.input("a", ("batch",)) * gx.input("b", ("time",))


def test_wrong_arity_or_attributes_are_type_errors():
    x = gx.input("x", (2,), "float64")
    with pytest.raises(gx.GraphcTypeError, match="takes 2 inputs"):
        ew.ELEMENTWISE["add"](x)
    with pytest.raises(gx.GraphcTypeError, match="needs attributes"):
        ew.ELEMENTWISE["clip"](x, lo=0.0)


# -- clip, where, cast ----------------------------------------------------------------------------

def test_clip():
    x = np.array([-3.0, -1.0, 0.2, 2.0, 5.0])
    np.testing.assert_array_equal(evaluate(lambda v: gx.clip(v, -1, 2), x), np.clip(x, -1, 2))
    xi = gx.input("x", (5,), "float64")
    grad = gx.compile([xi], gx.grad(gx.sum(gx.clip(xi, -1, 2)), xi))(x)
    assert grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # 1 on the closed interval (torch.clamp)
    assert evaluate(lambda v: gx.clip(v, 0, 3), np.array([-2, 1, 7])).tolist() == [0, 1, 3]
    with pytest.raises(ValueError, match="lo=2"):
        gx.clip(xi, 2, 1)


def test_where():
    c = np.array([[True], [False]])
    x, y = _real((2, 3)), _real((3,))
    np.testing.assert_array_equal(evaluate(gx.where, c, x, y), np.where(c, x, y))
    xi, yi = gx.input("x", (2, 3), "float64"), gx.input("y", (3,), "float64")
    ci = gx.input("c", (2, 1), "bool")
    gx_, gy = gx.compile([ci, xi, yi], gx.grad(gx.sum(gx.where(ci, xi, yi)), [xi, yi]))(c, x, y)
    np.testing.assert_array_equal(gx_, np.where(c, 1.0, 0.0) * np.ones((2, 3)))
    np.testing.assert_array_equal(gy, [1.0, 1.0, 1.0])  # summed back over the broadcast rows
    assert gx.where(ci, xi, 0).dtype == "float64"
    with pytest.raises(gx.GradientError):
        gx.grad(gx.sum(gx.where(ci, xi, yi)), ci)


def test_where_condition_may_be_numeric():
    c = np.array([0.0, 2.0, -1.0])
    np.testing.assert_array_equal(evaluate(lambda k: gx.where(k, 1.0, -1.0), c), [-1, 1, 1])


def test_cast():
    x = np.array([1.7, -2.5, 3.0])
    got = evaluate(lambda v: gx.cast(v, "int32"), x)
    assert got.dtype == np.int32 and got.tolist() == [1, -2, 3]
    xi = gx.input("x", (3,), "float64")
    assert gx.cast(xi, "float64") is xi and xi.astype(np.float64) is xi
    y = gx.cast(xi, "float32")
    assert y.dtype == "float32"
    g = gx.compile([xi], gx.grad(gx.sum(gx.cast(y * 2.0, "float64")), xi))(x)
    assert g.dtype == np.float64 and g.tolist() == [2.0, 2.0, 2.0]
    through_int = gx.cast(gx.cast(xi, "int64"), "float64") + xi
    assert gx.compile([xi], gx.grad(gx.sum(through_int), xi))(x).tolist() == [1.0, 1.0, 1.0]


def test_full_like_family():
    xi = gx.input("x", (2, "n"), "float32")
    f = gx.compile([xi], [gx.zeros_like(xi), gx.ones_like(xi, "int32"), gx.full_like(xi, 2.5)])
    zeros, ones, full = f(np.empty((2, 3), np.float32))
    assert zeros.dtype == np.float32 and zeros.shape == (2, 3) and not zeros.any()
    assert ones.dtype == np.int32 and (ones == 1).all()
    assert (full == 2.5).all()


# -- comparisons and logic ------------------------------------------------------------------------

COMPARISONS = [
    ("less", gx.less, np.less, lambda a, b: a < b),
    ("less_equal", gx.less_equal, np.less_equal, lambda a, b: a <= b),
    ("greater", gx.greater, np.greater, lambda a, b: a > b),
    ("greater_equal", gx.greater_equal, np.greater_equal, lambda a, b: a >= b),
    ("equal", gx.equal, np.equal, None),
    ("not_equal", gx.not_equal, np.not_equal, None),
]


@pytest.mark.parametrize("f, ref, operator", [row[1:] for row in COMPARISONS],
                         ids=[row[0] for row in COMPARISONS])
def test_comparisons(f, ref, operator):
    x = np.array([1.0, 2.0, 3.0, np.nan])
    y = np.array([2.0, 2.0, 1.0, 0.0])
    got = evaluate(f, x, y)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, ref(x, y))
    if operator is not None:
        np.testing.assert_array_equal(evaluate(operator, x, y), ref(x, y))
    assert evaluate(lambda a: f(a, 2), np.array([1, 2, 3])).tolist() == ref([1, 2, 3], 2).tolist()
    assert not f.differentiable


LOGIC = [
    ("logical_and", gx.logical_and, np.logical_and, lambda a, b: a & b),
    ("logical_or", gx.logical_or, np.logical_or, lambda a, b: a | b),
    ("logical_xor", gx.logical_xor, np.logical_xor, lambda a, b: a ^ b),
]


@pytest.mark.parametrize("f, ref, operator", [row[1:] for row in LOGIC],
                         ids=[row[0] for row in LOGIC])
def test_logic(f, ref, operator):
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    for got in (evaluate(f, a, b), evaluate(operator, a, b)):
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, ref(a, b))
    numbers = np.array([0.0, 2.0, -1.0, 0.0]), np.array([1, 0, 5, 0])
    np.testing.assert_array_equal(evaluate(f, *numbers), ref(*numbers))  # nonzero is true


def test_logical_not():
    a = np.array([True, False])
    assert evaluate(gx.logical_not, a).tolist() == [False, True]
    assert evaluate(lambda v: ~v, a).tolist() == [False, True]
    assert evaluate(gx.logical_not, np.array([0.0, 3.0])).tolist() == [True, False]


def test_comparisons_block_gradients_but_not_the_values_they_select():
    xi = gx.input("x", (4,), "float64")
    y = gx.where(xi > 0, xi * xi, -xi)
    x = np.array([-2.0, -0.5, 0.5, 3.0])
    g = gx.compile([xi], gx.grad(gx.sum(y), xi))(x)
    np.testing.assert_array_equal(g, np.where(x > 0, 2 * x, -1.0))
    with pytest.raises(gx.GradientError):
        gx.grad(gx.sum(gx.cast(xi > 0, "float64")), xi)


# -- integer ops: bitwise logic, shifts, remainders, truncating division ----------------------

def test_bitwise_ops_and_shifts_match_numpy():
    a = np.array([-7, -1, 0, 3, 100, 127], np.int8)
    b = np.array([3, 5, -2, 6, 9, -128], np.int8)
    counts = np.array([0, 1, 7, 8, 9, -1], np.int8)  # past the width: 0 (or −1 right)
    got = evaluate(lambda x, y, n: [gx.bitwise_and(x, y), gx.bitwise_or(x, y),
                                    gx.bitwise_xor(x, y), gx.bitwise_not(x),
                                    gx.left_shift(x, n), gx.right_shift(x, n)], a, b, counts)
    want = [a & b, a | b, a ^ b, ~a, np.left_shift(a, counts), np.right_shift(a, counts)]
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    u = np.array([1, 128, 255], np.uint8)
    got = evaluate(lambda x, n: [gx.left_shift(x, n), gx.right_shift(x, n)], u,
                   np.array([1, 1, 8], np.uint8))
    assert got[0].tolist() == [2, 0, 0] and got[1].tolist() == [0, 64, 0]  # ONNX BitShift
    t, f = np.array([True, True, False]), np.array([True, False, False])
    assert evaluate(gx.bitwise_xor, t, f).tolist() == [False, True, False]
    assert evaluate(gx.bitwise_not, t).tolist() == [False, False, True]


def test_integer_remainders_and_division_match_numpy_and_c():
    a = np.array([7, -7, 7, -7, 5, 0, -128], np.int8)
    b = np.array([2, 2, -2, -2, 0, 3, -1], np.int8)
    got = evaluate(lambda x, y: [gx.fmod(x, y), gx.mod(x, y), gx.trunc_div(x, y)], a, b)
    with np.errstate(all="ignore"):
        assert got[0].tolist() == np.fmod(a, b).tolist() == [1, -1, 1, -1, 0, 0, 0]
        assert got[1].tolist() == np.mod(a, b).tolist() == [1, 1, -1, -1, 0, 0, 0]
    assert got[2].tolist() == [3, -3, -3, 3, 0, 0, -128]  # toward zero; x/0 = 0; wraps
    assert all(g.dtype == np.int8 for g in got)


@pytest.mark.parametrize("op", [gx.bitwise_and, gx.left_shift, gx.trunc_div])
def test_integer_ops_refuse_floats(op):
    x = gx.input("x", (2,), "float32")
    with pytest.raises(gx.GraphcTypeError, match="integer"):
        op(x, x)


@pytest.mark.parametrize("op", [gx.fmod, gx.mod, gx.left_shift])
def test_arithmetic_integer_ops_refuse_bool(op):
    b = gx.input("b", (2,), "bool")
    with pytest.raises(gx.GraphcTypeError, match="bool"):
        op(b, b)


def test_isnan_isinf_and_round_half_to_even():
    x = np.array([np.nan, np.inf, -np.inf, 0.5, 1.5, 2.5, -0.5, -2.5], np.float32)
    isnan, isinf, rounded = evaluate(lambda v: [gx.isnan(v), gx.isinf(v), gx.round(v)], x)
    np.testing.assert_array_equal(isnan, np.isnan(x))
    np.testing.assert_array_equal(isinf, np.isinf(x))
    np.testing.assert_array_equal(rounded, np.round(x))
    assert rounded.dtype == np.float32 and not gx.isnan.differentiable
    assert evaluate(gx.isinf, np.array([1, 2])).tolist() == [False, False]


def test_inverse_functions_outside_their_domain_and_far_out():
    with np.errstate(all="ignore"):
        for f, ref, x in [(gx.asin, np.arcsin, [-2.0, -1.0, 1.0, 2.0, np.nan]),
                          (gx.acos, np.arccos, [-2.0, -1.0, 1.0, 2.0]),
                          (gx.acosh, np.arccosh, [-1e30, 0.5, 1.0, 1e30, np.inf]),
                          (gx.asinh, np.arcsinh, [-1e300, -1e10, -0.0, 1e-300, 1e300, np.inf]),
                          (gx.atanh, np.arctanh, [-2.0, -1.0, 1.0, 1e-300, 2.0]),
                          (gx.sinh, np.sinh, [-700.0, -1e-10, 1e-300, 700.0]),
                          (gx.cosh, np.cosh, [-700.0, 0.0, 700.0, np.inf])]:
            x = np.array(x)
            np.testing.assert_allclose(evaluate(f, x), ref(x), rtol=1e-14, err_msg=f.name)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("src, dst", [("float32", "int32"), ("int64", "float64"),
                                      ("uint16", "int16"), ("bool", "uint8"),
                                      ("float16", "uint16")])
def test_bitcast_reads_the_same_bits(backend, src, dst):
    values = np.array([[0, 1, -2.5], [3.25, 65504, -0.0]]).astype(src)
    x = gx.input("x", values.shape, src)
    got = gx.compile([x], gx.bitcast(x, dst), backend=backend)(values)
    assert got.dtype == np.dtype(dst)
    np.testing.assert_array_equal(got, values.view(dst))


def test_bitcast_needs_one_item_size_and_no_bool_target():
    x = gx.input("x", (3,), "float32")
    with pytest.raises(gx.GraphcTypeError, match="bitcast.*one size"):
        gx.bitcast(x, "float64")
    with pytest.raises(gx.GraphcTypeError, match="bitcast.*no bool"):
        gx.bitcast(gx.input("b", (3,), "uint8"), "bool")
    assert not gx.bitcast(x, "int32").op.differentiable
