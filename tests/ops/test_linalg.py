"""matmul, dot, outer, tensordot, einsum: values against NumPy and torch, type errors,
and a gradient table checked by finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from tests.helpers import against_torch, assert_gradients, evaluate

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


# -- matmul ------------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 1, 2, 3), (4, 3, 2)),
    ((1, 2, 3), (6, 3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
]


@pytest.mark.parametrize("a_shape,b_shape", MATMUL_SHAPES)
def test_matmul_matches_numpy(a_shape, b_shape):
    a, b = rand(*a_shape), rand(*b_shape)
    out = evaluate(lambda x, y: x @ y, a, b)
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-12)
    assert out.shape == np.matmul(a, b).shape


def test_matmul_with_arrays_on_either_side():
    a, w = rand(2, 3), rand(3, 4)
    x = gx.input("x", (2, 3), "float64")
    np.testing.assert_allclose(gx.compile([x], x @ w)(a), a @ w)
    np.testing.assert_allclose(gx.compile([x], gx.matmul(w.T, x.T))(a), w.T @ a.T)
    np.testing.assert_allclose(gx.compile([x], x.__rmatmul__(w.T[:, :2]))(a), w.T[:, :2] @ a)


def test_matmul_symbolic_batch():
    x = gx.input("x", ("batch", 4), "float64")
    w = gx.input("w", (4, 3), "float64")
    y = x @ w
    assert y.shape == ("batch", 3)
    a, b = rand(7, 4), rand(4, 3)
    np.testing.assert_allclose(gx.compile([x, w], y)(a, b), a @ b)
    batched = gx.input("m", ("batch", 4, "n"), "float64") @ gx.input("v", ("n",), "float64")
    assert batched.shape == ("batch", 4)


def test_matmul_dtype_promotion():
    a = gx.input("a", (2, 3), "float32")
    assert (a @ gx.input("b", (3, 2), "float32")).dtype == "float32"
    assert (a @ gx.input("c", (3, 2), "float64")).dtype == "float64"
    assert (gx.input("i", (2, 3), "int32") @ gx.input("j", (3,), "int32")).dtype == "int32"


@pytest.mark.parametrize("a_shape,b_shape,needle", [
    ((2, 3), (4, 5), "(2, 3) @ (4, 5)"),
    ((3,), (4,), "3 vs 4"),
    ((2, 2, 3), (3, 3, 4), "batch dims"),
    (("n", 2, 3), ("m", 3, 4), "batch dims"),
    ((4, "k"), (5, 2), "k vs 5"),
    ((), (3,), "at least 1 dim"),
])
def test_matmul_type_errors_name_shapes(a_shape, b_shape, needle):
    a, b = gx.input("a", a_shape), gx.input("b", b_shape)
    with pytest.raises(gx.GraphcTypeError, match="matmul") as info:
        a @ b
    assert needle in str(info.value)
    assert "test_linalg.py" in str(info.value)  # names the user's line


def test_matmul_of_vectors_is_a_scalar_node():
    v = gx.input("v", (3,), "float64")
    assert (v @ v).shape == ()


# -- dot, outer, tensordot -----------------------------------------------------------------------


@pytest.mark.parametrize("a_shape,b_shape", [
    ((), (3,)), ((3,), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
    ((2, 3, 4), (4,)), ((2, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)),
])
def test_dot_matches_numpy(a_shape, b_shape):
    a, b = rand(*a_shape), rand(*b_shape)
    out = evaluate(gx.dot, a, b)
    np.testing.assert_allclose(out, np.dot(a, b), rtol=1e-12)
    assert out.shape == np.dot(a, b).shape


@pytest.mark.parametrize("a_shape,b_shape", [((3,), (4,)), ((2, 3), (4,)), ((2,), (2, 2))])
def test_outer_matches_numpy(a_shape, b_shape):
    a, b = rand(*a_shape), rand(*b_shape)
    np.testing.assert_allclose(evaluate(gx.outer, a, b), np.outer(a, b))


@pytest.mark.parametrize("a_shape,b_shape,axes", [
    ((2, 3, 4), (3, 4, 5), 2),
    ((2, 3), (3, 4), 1),
    ((2, 3), (4, 5), 0),
    ((3, 2, 4), (4, 3), ([0, 2], [1, 0])),
    ((3, 2), (5, 3), (0, 1)),
])
def test_tensordot_matches_numpy(a_shape, b_shape, axes):
    a, b = rand(*a_shape), rand(*b_shape)
    out = evaluate(lambda x, y: gx.tensordot(x, y, axes), a, b)
    np.testing.assert_allclose(out, np.tensordot(a, b, axes), rtol=1e-12)


# -- einsum ------------------------------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),
    ("i,i", [(3,), (3,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("ijk->kij", [(2, 3, 4)]),
    ("ij", [(2, 3)]),
    ("ji", [(2, 3)]),
    ("Ba,ab", [(2, 3), (3, 4)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("...ij,...jk", [(2, 1, 2, 3), (4, 3, 2)]),
    ("i...->...", [(2, 3, 4)]),
    (" ij , jk -> ik ", [(2, 3), (3, 4)]),
    ("ii,i->i", [(3, 3), (3,)]),
]


@pytest.mark.parametrize("subscripts,shapes", EINSUM_CASES)
def test_einsum_matches_numpy(subscripts, shapes):
    arrays = [rand(*s) for s in shapes]
    out = evaluate(lambda *xs: gx.einsum(subscripts, *xs), *arrays)
    expected = np.einsum(subscripts, *arrays)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)


def test_einsum_symbolic_dims():
    x = gx.input("x", ("batch", 3, 4), "float64")
    w = gx.input("w", (4, 5), "float64")
    y = gx.einsum("bij,jk->bki", x, w)
    assert y.shape == ("batch", 5, 3)
    a, b = rand(2, 3, 4), rand(4, 5)
    np.testing.assert_allclose(gx.compile([x, w], y)(a, b), np.einsum("bij,jk->bki", a, b))


def test_einsum_permutation_is_a_transpose():
    x = gx.input("x", (2, 3, 4))
    assert gx.einsum("ijk->kij", x).op.name == "transpose"
    assert gx.einsum("ij->ij", gx.input("y", (2, 3))).op.name == "input"


@pytest.mark.parametrize("subscripts,shapes,needle", [
    ("ij,jk->ik", [(2, 3)], "2 operands"),
    ("ij,jk->ik", [(2, 3), (4, 5)], "label 'j' has sizes 3 and 4"),
    ("ij->k", [(2, 3)], "output subscripts"),
    ("ij->ii", [(2, 3)], "output subscripts"),
    ("ijk", [(2, 3)], "name 3 dims"),
    ("i1", [(2, 3)], "letters"),
    ("...i->i", [(2, 3)], "'...'"),
])
def test_einsum_type_errors(subscripts, shapes, needle):
    xs = [gx.input(f"x{k}", s) for k, s in enumerate(shapes)]
    with pytest.raises(gx.GraphcTypeError, match="einsum") as info:
        gx.einsum(subscripts, *xs)
    assert needle in str(info.value)


# -- gradients: one table, checked by finite differences ------------------------------------------

def _einsum(subscripts):
    return lambda *xs: gx.einsum(subscripts, *xs)


GRADIENTS = [
    # (id, function, input shapes, order)
    ("matmul-vv", gx.matmul, [(3,), (3,)], 2),
    ("matmul-vm", gx.matmul, [(3,), (3, 2)], 2),
    ("matmul-mv", gx.matmul, [(2, 3), (3,)], 2),
    ("matmul-mm", gx.matmul, [(2, 3), (3, 2)], 2),
    ("matmul-batch-broadcast", gx.matmul, [(2, 1, 2, 3), (3, 3, 2)], 2),
    ("matmul-batch-one", gx.matmul, [(1, 2, 3), (2, 3, 1)], 2),
    ("matmul-v-batch", gx.matmul, [(3,), (2, 3, 2)], 2),
    ("matmul-square", lambda a: a @ a, [(3, 3)], 2),
    ("dot-nd", gx.dot, [(2, 2, 3), (2, 3, 2)], 2),
    ("outer", gx.outer, [(3,), (2, 2)], 2),
    ("tensordot", lambda a, b: gx.tensordot(a, b, ([0, 2], [1, 0])), [(3, 2, 2), (2, 3)], 2),
    ("einsum-matmul", _einsum("ij,jk->ik"), [(2, 3), (3, 2)], 2),
    ("einsum-trace", _einsum("ii"), [(3, 3)], 2),
    ("einsum-diagonal", _einsum("ii->i"), [(3, 3)], 2),
    ("einsum-diag-times", _einsum("ii,i->i"), [(3, 3), (3,)], 2),
    ("einsum-sum-only", _einsum("ij,k->k"), [(2, 3), (2,)], 2),
    ("einsum-broadcast-label", _einsum("ij,ij->j"), [(1, 3), (2, 3)], 2),
    ("einsum-three", _einsum("ij,jk,kl->il"), [(2, 3), (3, 2), (2, 2)], 2),
    ("einsum-ellipsis", _einsum("...ij,...jk"), [(2, 2, 3), (3, 2)], 2),
    ("einsum-square", lambda a: gx.einsum("ij,jk->ik", a, a), [(2, 2)], 2),
    ("addmm", lambda c, a, b: gx.addmm(c, a, b, beta=0.5, alpha=-1.5),
     [(2, 2), (2, 3), (3, 2)], 2),
    ("addmm-beta0", lambda c, a, b: gx.addmm(c, a, b, beta=0.0), [(2, 2), (2, 3), (3, 2)], 2),
    ("addmm-shared", lambda c, a: gx.addmm(c, a, a, alpha=2.0), [(3, 3), (3, 3)], 2),
]


@pytest.mark.parametrize("f,shapes,order", [pytest.param(f, s, o, id=name)
                                            for name, f, s, o in GRADIENTS])
def test_gradients(f, shapes, order):
    assert_gradients(f, *(rand(*s) for s in shapes), order=order)


# -- against torch: values and gradients ----------------------------------------------------------

@pytest.mark.parametrize("a_shape,b_shape", MATMUL_SHAPES[1:])
def test_matmul_against_torch(a_shape, b_shape):
    torch = pytest.importorskip("torch")
    against_torch(gx.matmul, torch.matmul, rand(*a_shape), rand(*b_shape))


@pytest.mark.parametrize("subscripts,shapes", [
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),
    ("ii->i", [(3, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("ij,k->kj", [(2, 3), (4,)]),
])
def test_einsum_against_torch(subscripts, shapes):
    torch = pytest.importorskip("torch")
    against_torch(_einsum(subscripts), lambda *ts: torch.einsum(subscripts, *ts),
                  *(rand(*s) for s in shapes))


def test_einsum_diagonal_gradient_of_symbolic_size_is_refused():
    x = gx.input("x", ("n", "n"), "float64")
    with pytest.raises(gx.GradientError, match="static size"):
        gx.grad(gx.sum(gx.einsum("ii->i", x)), x)


# -- addmm -------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta,alpha", [(1.0, 1.0), (0.5, -2.0), (0.0, 3.0), (1.0, -0.01)])
def test_addmm_matches_numpy(beta, alpha):
    c, a, b = rand(3, 2), rand(3, 4), rand(4, 2)
    got = evaluate(lambda c, a, b: gx.addmm(c, a, b, beta=beta, alpha=alpha), c, a, b)
    np.testing.assert_allclose(got, beta * c + alpha * (a @ b), rtol=1e-12)


def test_addmm_with_beta_zero_ignores_c_as_torch_does():
    c = np.full((2, 2), np.nan)
    got = evaluate(lambda c, a, b: gx.addmm(c, a, b, beta=0.0), c, np.eye(2), np.ones((2, 2)))
    np.testing.assert_array_equal(got, np.ones((2, 2)))


@pytest.mark.parametrize("shapes,dtypes,needle", [
    ([(3, 2), (3, 4), (3, 2)], ["float64"] * 3, "contraction dims differ"),
    ([(2, 2), (3, 4), (4, 2)], ["float64"] * 3, "must have the product's shape"),
    ([(2,), (2, 4), (4, 2)], ["float64"] * 3, "must have the product's shape"),
    ([(3, 2), (3, 4, 1), (4, 2)], ["float64"] * 3, "must be matrices"),
    ([(3, 2), (3, 4), (4, 2)], ["float32", "float64", "float64"], "one float dtype"),
    ([(3, 2), (3, 4), (4, 2)], ["int64"] * 3, "one float dtype"),
])
def test_addmm_type_errors_name_the_problem(shapes, dtypes, needle):
    c, a, b = (gx.input(f"t{k}", s, d) for k, (s, d) in enumerate(zip(shapes, dtypes,
                                                                       strict=True)))
    with pytest.raises(gx.GraphcTypeError, match=needle) as error:
        gx.addmm(c, a, b)
    assert "addmm" in str(error.value)


def test_addmm_against_torch():
    torch = pytest.importorskip("torch")
    against_torch(lambda c, a, b: gx.addmm(c, a, b, beta=0.5, alpha=-2.0),
                  lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=-2.0),
                  rand(3, 2), rand(3, 4), rand(4, 2))
