"""Reverse mode (grad, vjp), forward mode (jvp), Jacobians and Hessians."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.autodiff import grad, hessian, jacobian, jvp, substitute, vjp
from graphc.errors import GradientError
from graphc.ops.base import Op


def scalars(*names: str) -> list[gx.Tensor]:
    return [gx.input(n, (), "float64") for n in names]


# -- grad: the worked examples -----------------------------------------------------------------

def test_product_of_sum_and_difference():
    x, y, z = scalars("x", "y", "z")
    f = (x + y) * (y - z)
    fn = gx.compile([x, y, z], [f, *grad(f, [x, y, z])])
    value, dx, dy, dz = fn(1.0, 2.0, 3.0)
    assert value == -3.0
    assert (dx, dy, dz) == (-1.0, 2.0, -3.0)


def test_logistic_neuron():
    x0, x1, w0, w1, w2 = scalars("x0", "x1", "w0", "w1", "w2")
    out = gx.sigmoid(w0 * x0 + w1 * x1 + w2)
    wrt = [x0, w0, x1, w1, w2]
    fn = gx.compile([x0, x1, w0, w1, w2], [out, *grad(out, wrt)])
    value, *grads = fn(-1.0, -2.0, 2.0, -3.0, -3.0)
    np.testing.assert_allclose(value, 0.731, atol=5e-4)
    np.testing.assert_allclose(grads, [0.393, -0.197, -0.590, -0.393, 0.197], atol=5e-4)


def test_grad_of_grad_of_cube_is_6x():
    (x,) = scalars("x")
    d2 = grad(grad(x**3, x), x)
    fn = gx.compile([x], d2)
    for v in (-2.0, 0.5, 3.0):
        np.testing.assert_allclose(fn(v), 6 * v)


def test_fan_out_accumulates():
    (x,) = scalars("x")
    assert gx.compile([x], grad(x * x + x, x))(3.0) == 7.0  # 2x + 1


def test_bias_gradient_sums_over_symbolic_batch():
    h = gx.input("h", ("batch", 3), "float64")
    b = gx.input("b", (3,), "float64")
    loss = gx.sum((h + b) * (h + b))
    db = grad(loss, b)
    assert db.shape == (3,)
    fn = gx.compile([h, b], db)
    rng = np.random.default_rng(0)
    for batch in (1, 4, 7):
        hv, bv = rng.standard_normal((batch, 3)), rng.standard_normal(3)
        np.testing.assert_allclose(fn(hv, bv), (2 * (hv + bv)).sum(axis=0))


def test_integer_inputs_get_no_gradient():
    x = gx.input("x", (), "float64")
    n = gx.input("n", (), "int64")
    y = x * gx.cast(n, "float64")
    assert gx.compile([x, n], grad(y, x))(2.0, 5) == 5.0
    with pytest.raises(GradientError, match="int64"):
        grad(y, n)


def test_disconnected_wrt_raises_unless_allowed():
    x, z = scalars("x", "z")
    y = x * x
    with pytest.raises(GradientError, match="does not depend"):
        grad(y, [x, z])
    dx, dz = grad(y, [x, z], allow_unused=True)
    fn = gx.compile([x, z], [dx, dz])
    assert fn(3.0, 1.0) == (6.0, 0.0)


def test_grad_of_non_scalar_raises():
    x = gx.input("x", (3,), "float64")
    with pytest.raises(GradientError, match="scalar"):
        grad(x * x, x)


def test_grad_of_integer_output_raises():
    n = gx.input("n", (), "int64")
    with pytest.raises(GradientError, match="not float"):
        vjp(n * n, n, 1)


def test_grad_wrt_intermediate_node():
    (x,) = scalars("x")
    h = x * 2.0
    y = h * h + x
    dh, dx = grad(y, [h, x])
    fn = gx.compile([x], [dh, dx])
    assert fn(1.5) == (6.0, 13.0)  # ∂y/∂h = 2h; dy/dx = 2h·2 + 1


def test_vjp_with_cotangent():
    x = gx.input("x", (3,), "float64")
    ct = np.array([1.0, -2.0, 0.5])
    g = vjp(gx.sin(x) * x, x, ct)
    xv = np.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(gx.compile([x], g)(xv), ct * (np.cos(xv) * xv + np.sin(xv)))


def test_deep_chain_has_no_recursion_limit():
    (x,) = scalars("x")
    y = x
    for _ in range(10_000):
        y = y * 0.9999 + 0.0001
    fn = gx.compile([x], [y, grad(y, x)])
    value, slope = fn(2.0)
    expected = 2.0
    for _ in range(10_000):
        expected = expected * 0.9999 + 0.0001
    np.testing.assert_allclose(value, expected)
    np.testing.assert_allclose(slope, 0.9999**10_000)


def test_grad_is_hash_consed():
    x = gx.input("x", (4,), "float64")
    f = gx.sum(gx.exp(x) * x)
    assert grad(f, x) is grad(f, x)


# -- jvp ---------------------------------------------------------------------------------------

def _finite_difference_jvp(fn, xv: np.ndarray, v: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return (fn(xv + eps * v) - fn(xv - eps * v)) / (2 * eps)


def test_jvp_matches_finite_differences():
    x = gx.input("x", (3,), "float64")
    y = gx.sin(x) * gx.sum(x * x)
    v = np.array([0.5, -1.0, 2.0])
    xv = np.array([0.2, 1.1, -0.7])
    forward = gx.compile([x], y)
    np.testing.assert_allclose(gx.compile([x], jvp(y, x, v))(xv),
                               _finite_difference_jvp(forward, xv, v), rtol=1e-7)


def test_jvp_equals_jacobian_times_tangent():
    x = gx.input("x", (3,), "float64")
    a = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    y = gx.tanh(gx.constant(a) @ x) * gx.sum(x)
    v = np.array([1.0, 0.25, -0.5])
    xv = np.array([0.3, -0.4, 0.9])
    y_dot, jac = gx.compile([x], [jvp(y, x, v), jacobian(y, x)])(xv)
    np.testing.assert_allclose(y_dot, jac @ v)


def test_jvp_dummy_cotangent_drops_out():
    x = gx.input("x", (2, 3), "float64")
    y = gx.exp(x) * x + gx.sum(x * x, axis=0)
    leaves = [n for n in gx.toposort([jvp(y, x, np.ones((2, 3)))]) if n.op.name == "input"]
    assert leaves == [x]


def test_jvp_several_wrt_with_tensor_tangents():
    x, w = scalars("x", "w")
    vx, vw = scalars("vx", "vw")
    y = gx.sin(x * w)
    y_dot = jvp(y, [x, w], [vx, vw])
    fn = gx.compile([x, w, vx, vw], y_dot)
    xv, wv = 0.7, -1.3
    np.testing.assert_allclose(fn(xv, wv, 2.0, 0.5), np.cos(xv * wv) * (wv * 2.0 + xv * 0.5))


def test_jvp_with_symbolic_shape():
    x = gx.input("x", ("n",), "float64")
    y_dot = jvp(gx.exp(x), x, 2.0)  # a scalar tangent broadcasts to x's shape
    assert y_dot.shape == ("n",)
    xv = np.array([0.0, 1.0, -1.0, 0.5])
    np.testing.assert_allclose(gx.compile([x], y_dot)(xv), 2 * np.exp(xv))


def test_jvp_of_disconnected_wrt():
    x, z = scalars("x", "z")
    with pytest.raises(GradientError, match="does not depend"):
        jvp(x * x, z, 1.0)
    y_dot = jvp(x * x, [x, z], [1.0, 1.0], allow_unused=True)
    assert gx.compile([x], y_dot)(3.0) == 6.0
    zero = jvp(x * x, z, 1.0, allow_unused=True)
    assert [n.op.name for n in gx.toposort([zero]) if not n.inputs] == ["input"]
    assert gx.compile([x], zero)(3.0) == 0.0


def test_jvp_checks_tangents():
    x = gx.input("x", (3,), "float64")
    with pytest.raises(GradientError, match="one tangent per wrt"):
        jvp(x * x, [x], [np.ones(3), np.ones(3)])
    with pytest.raises(GradientError, match="does not fit"):
        jvp(x * x, x, np.ones(4))


class ShapeReadingTriple(Op):
    """3x, with a VJP that is linear in g but reads g's shape in a product with g:
    g·3 + zeros_like(g)·g. Transposing it keeps the dummy cotangent in the graph."""

    name = "test_autodiff_shape_reading_triple"

    def infer(self, inputs, **attrs):
        return inputs[0]

    def vjp(self, node, g):
        return (g * 3.0 + gx.zeros_like(g) * g,)

    def impl(self, x):
        return 3 * x


_triple = ShapeReadingTriple()


def test_jvp_substitutes_a_dummy_that_stays():
    x = gx.input("x", (2,), "float64")
    y_dot = jvp(_triple(x * x), x, np.array([1.0, -1.0]))
    assert [n for n in gx.toposort([y_dot]) if n.op.name == "input"] == [x]
    np.testing.assert_allclose(gx.compile([x], y_dot)(np.array([2.0, 5.0])), [12.0, -30.0])


def test_substitute_rebuilds_only_what_depends_on_the_key():
    x, z = scalars("x", "z")
    a = gx.exp(z)
    y = x * x + a
    (new,) = substitute([y], {x: z})
    assert gx.compile([z], new)(2.0) == pytest.approx(4.0 + np.exp(2.0))
    assert a in gx.toposort([new])
    with pytest.raises(ValueError, match="types differ"):
        substitute([y], {x: gx.input("v", (2,), "float64")})


# -- jacobian and hessian ----------------------------------------------------------------------

def test_jacobian_of_elementwise_is_diagonal():
    x = gx.input("x", (2, 2), "float64")
    jac = jacobian(gx.exp(x) * x, x)
    assert jac.shape == (2, 2, 2, 2)
    xv = np.array([[0.1, -0.5], [1.0, 2.0]])
    expected = np.zeros((2, 2, 2, 2))
    for i in np.ndindex(2, 2):
        expected[i + i] = np.exp(xv[i]) * (1 + xv[i])
    np.testing.assert_allclose(gx.compile([x], jac)(xv), expected)


def test_jacobian_of_matmul():
    a = gx.input("a", (2, 3), "float64")
    b = gx.input("b", (3, 4), "float64")
    ja, jb = jacobian(a @ b, [a, b])
    assert ja.shape == (2, 4, 2, 3) and jb.shape == (2, 4, 3, 4)
    rng = np.random.default_rng(1)
    av, bv = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    ja_v, jb_v = gx.compile([a, b], [ja, jb])(av, bv)
    # (AB)[i,l] = Σ_k A[i,k] B[k,l]: ∂/∂A[j,k] = δ_ij B[k,l], ∂/∂B[k,m] = A[i,k] δ_lm
    np.testing.assert_allclose(ja_v, np.einsum("ij,kl->iljk", np.eye(2), bv))
    np.testing.assert_allclose(jb_v, np.einsum("ik,lm->ilkm", av, np.eye(4)))


def test_jacobian_of_scalar_is_gradient():
    x = gx.input("x", (3,), "float64")
    y = gx.sum(gx.sin(x))
    xv = np.array([0.1, 0.2, 0.3])
    jac, g = gx.compile([x], [jacobian(y, x), grad(y, x)])(xv)
    np.testing.assert_allclose(jac, g)


def test_jacobian_wrt_symbolic_shape():
    x = gx.input("x", ("n",), "float64")
    jac = jacobian(gx.stack([gx.sum(x), gx.sum(x * x)]), x)
    assert jac.shape == (2, "n")
    xv = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(gx.compile([x], jac)(xv), [np.ones(3), 2 * xv])


def test_jacobian_of_empty_output():
    x = gx.input("x", (0,), "float64")
    jac = gx.compile([x], jacobian(x * 2.0, x))(np.zeros(0))
    assert jac.shape == (0, 0)


def test_jacobian_needs_static_output_shape():
    x = gx.input("x", ("n",), "float64")
    with pytest.raises(GradientError, match="static"):
        jacobian(x * x, x)


def test_jacobian_of_disconnected():
    x, z = scalars("x", "z")
    with pytest.raises(GradientError, match="does not depend"):
        jacobian(x * x, z)
    assert gx.compile([z], jacobian(x * 2.0, z, allow_unused=True))(1.0) == 0.0


def test_hessian_of_quadratic_form():
    a = np.array([[1.0, 2.0, 0.0], [-1.0, 3.0, 4.0], [0.5, 0.0, -2.0]])
    x = gx.input("x", (3,), "float64")
    quad = gx.sum(x * (gx.constant(a) @ x))  # xᵀAx
    h = hessian(quad, x)
    assert h.shape == (3, 3)
    np.testing.assert_allclose(gx.compile([x], h)(np.array([0.3, -1.0, 2.0])), a + a.T)


def test_hessian_of_non_quadratic_matches_analytic():
    x = gx.input("x", (2,), "float64")
    first, second = (gx.sum(x * gx.constant(e)) for e in np.eye(2))
    y = gx.exp(first) * gx.sin(second)
    xv = np.array([0.4, 1.3])
    e, s, c = np.exp(xv[0]), np.sin(xv[1]), np.cos(xv[1])
    np.testing.assert_allclose(gx.compile([x], hessian(y, x))(xv),
                               [[e * s, e * c], [e * c, -e * s]])


def test_hessian_of_linear_function_is_zero():
    x = gx.input("x", (2,), "float64")
    h = hessian(gx.sum(x * 3.0), x)
    np.testing.assert_array_equal(gx.compile([x], h)(np.array([1.0, 2.0])), np.zeros((2, 2)))


def test_jvp_through_a_derived_symbolic_dim():
    # x[1:] has the derived size "n-1": the dummy cotangent must take it at run time
    x = gx.input("x", ("n",), "float64")
    y = gx.sin(x[1:] * x[:-1])
    v = np.array([1.0, -2.0, 0.5, 3.0])
    point = np.array([0.3, -1.2, 0.7, 2.0])
    t = gx.input("t", ("n",), "float64")
    got = jvp(y, x, t).eval({x: point, t: v})
    # d sin(a_i a_{i+1}) = cos(a_i a_{i+1}) (v_i a_{i+1} + a_i v_{i+1})
    prod = point[1:] * point[:-1]
    expected = np.cos(prod) * (v[:-1] * point[1:] + point[:-1] * v[1:])
    np.testing.assert_allclose(got, expected)
