"""matmul, dense and einsum on the llvm backend, against the numpy backend and NumPy."""

from __future__ import annotations

import os
import subprocess
import sys
import timeit

import numpy as np
import pytest

import graphc as gx

RNG = np.random.default_rng(0)
SIZES = {"n": 5}  # what a symbolic dim is bound to


def _concrete(shape: tuple) -> tuple[int, ...]:
    return tuple(SIZES.get(d, d) for d in shape)


def _array(shape: tuple, dtype: str) -> np.ndarray:
    values = RNG.standard_normal(_concrete(shape)) * 3
    return values.astype(dtype) if dtype != "int64" else np.round(values).astype(dtype)


def _compile_both(inputs, outputs, **kwargs):
    return (gx.compile(inputs, outputs, backend="numpy", **kwargs),
            gx.compile(inputs, outputs, backend="llvm", **kwargs))


def _tolerance(dtype: str) -> dict:
    return {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12},
            "float16": {"rtol": 1e-3, "atol": 1e-2}}.get(dtype, {"rtol": 0, "atol": 0})


def _check(inputs, output, arrays, dtype: str, reference: np.ndarray | None = None,
           **kwargs) -> None:
    """llvm == numpy backend (== ``reference``, when given), optimized and not."""
    for optimize in (True, False):
        ref, llvm = _compile_both(inputs, output, optimize=optimize, **kwargs)
        got = llvm(*arrays)
        expected = ref(*arrays)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, **_tolerance(dtype))
        if reference is not None:
            np.testing.assert_allclose(got, reference, **_tolerance(dtype))


# -- matmul -------------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),             # 1-D · 2-D
    ((3, 4), (4,)),             # 2-D · 1-D
    ((4,), (4,)),               # 1-D · 1-D
    ((2, 3, 4), (2, 4, 5)),     # batched
    ((2, 3, 4), (4, 5)),        # shared right operand: one product of all rows
    ((3, 4), (2, 4, 5)),        # shared left operand
    ((2, 1, 3, 4), (1, 3, 4, 5)),  # broadcast batch dims
    (("n", 4), (4, 6)),         # symbolic dims
    ((3, "n"), ("n", 2)),
    ((2, "n", 4), (4, "n")),
    ((0, 4), (4, 5)),           # empty dims
    ((3, 0), (0, 5)),
    ((3, 4), (4, 0)),
    ((0, 3, 4), (4, 2)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "float16"])
@pytest.mark.parametrize(("sa", "sb"), MATMUL_SHAPES)
def test_matmul_matches_numpy(sa: tuple, sb: tuple, dtype: str) -> None:
    a, b = gx.input("a", sa, dtype), gx.input("b", sb, dtype)
    arrays = [_array(sa, dtype), _array(sb, dtype)]
    _check([a, b], gx.matmul(a, b), arrays, dtype, reference=np.matmul(*arrays))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("ta", "tb"), [(True, False), (False, True), (True, True)])
def test_matmul_of_graph_transposes(ta: bool, tb: bool, dtype: str) -> None:
    """A transposed operand is read by BLAS with its transpose flag, not copied."""
    a = gx.input("a", (4, 3) if ta else (3, 4), dtype)
    b = gx.input("b", (5, 4) if tb else (4, 5), dtype)
    arrays = [_array(a.shape, dtype), _array(b.shape, dtype)]
    y = gx.matmul(gx.transpose(a) if ta else a, gx.transpose(b) if tb else b)
    expected = np.matmul(arrays[0].T if ta else arrays[0], arrays[1].T if tb else arrays[1])
    _check([a, b], y, arrays, dtype, reference=expected)


def test_batched_matmul_of_swapped_axes() -> None:
    a, b = gx.input("a", (2, 4, 3), "float32"), gx.input("b", (2, 5, 4), "float32")
    y = gx.matmul(gx.transpose(a, (0, 2, 1)), gx.transpose(b, (0, 2, 1)))
    arrays = [_array(a.shape, "float32"), _array(b.shape, "float32")]
    expected = np.matmul(arrays[0].transpose(0, 2, 1), arrays[1].transpose(0, 2, 1))
    _check([a, b], y, arrays, "float32", reference=expected)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_matmul_of_non_contiguous_arguments(dtype: str) -> None:
    """Arguments that are views (a transpose, a strided slice) give the same values."""
    a, b = gx.input("a", (3, 4), dtype), gx.input("b", (4, 5), dtype)
    y = gx.matmul(a, b)
    big_a, big_b = _array((4, 3), dtype), _array((8, 10), dtype)
    arrays = [big_a.T, big_b[::2, ::2]]
    _check([a, b], y, arrays, dtype, reference=np.matmul(*arrays))


def test_matmul_of_mixed_dtypes_promotes() -> None:
    a, b = gx.input("a", (3, 4), "float32"), gx.input("b", (4, 2), "int64")
    arrays = [_array((3, 4), "float32"), _array((4, 2), "int64")]
    _check([a, b], gx.matmul(a, b), arrays, "float64", reference=np.matmul(*arrays))


def test_matmul_of_broadcast_operand() -> None:
    """A broadcast operand (row stride 0) is copied, not handed to BLAS with ld = 0."""
    a, b = gx.input("a", (1, 4), "float64"), gx.input("b", (4, 5), "float64")
    y = gx.matmul(gx.broadcast_to(a, (3, 4)), b)
    arrays = [_array((1, 4), "float64"), _array((4, 5), "float64")]
    _check([a, b], y, arrays, "float64",
           reference=np.matmul(np.broadcast_to(arrays[0], (3, 4)), arrays[1]))


def test_float32_matmul_512_speed_against_numpy() -> None:
    """Prints llvm / numpy time for a 512×512 float32 product (no timed assertion)."""
    a, b = gx.input("a", (512, 512), "float32"), gx.input("b", (512, 512), "float32")
    fn = gx.compile([a, b], gx.matmul(a, b), backend="llvm")
    x, y = _array((512, 512), "float32"), _array((512, 512), "float32")
    np.testing.assert_allclose(fn(x, y), x @ y, rtol=1e-4, atol=1e-3)
    ours = min(timeit.repeat(lambda: fn(x, y), number=5, repeat=3))
    numpy = min(timeit.repeat(lambda: np.matmul(x, y), number=5, repeat=3))
    print(f"512x512 float32 matmul: llvm/numpy time ratio {ours / numpy:.2f}")


# -- dense ----------------------------------------------------------------------------------------

ACTIVATIONS = [None, "relu", "sigmoid", "tanh", ("leaky_relu", {"alpha": 0.2}), "gelu"]


def _activation(spec) -> tuple[str | None, dict]:
    return spec if isinstance(spec, tuple) else (spec, {})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", ACTIVATIONS, ids=str)
@pytest.mark.parametrize(("sx", "bias"), [((6, 4), True), ((2, 3, 4), True), ((4,), True),
                                          (("n", 4), False), ((0, 4), True)])
def test_dense_matches_numpy(sx: tuple, bias: bool, spec, dtype: str) -> None:
    activation, params = _activation(spec)
    x, w, b = gx.input("x", sx, dtype), gx.input("W", (4, 3), dtype), gx.input("b", (3,), dtype)
    y = gx.dense(x, w, b if bias else None, activation=activation, **params)
    inputs = [x, w, b] if bias else [x, w]
    arrays = [_array(t.shape, dtype) for t in inputs]
    _check(inputs, y, arrays, dtype)


def test_dense_of_transposed_weights() -> None:
    x, w, b = gx.input("x", (6, 4), "float32"), gx.input("W", (3, 4), "float32"), \
        gx.input("b", (1, 3), "float32")
    y = gx.dense(x, gx.transpose(w), b, activation="relu")
    arrays = [_array(t.shape, "float32") for t in (x, w, b)]
    expected = np.maximum(arrays[0] @ arrays[1].T + arrays[2], 0)
    _check([x, w, b], y, arrays, "float32", reference=expected)


@pytest.mark.parametrize("spec", [None, "relu", "sigmoid", "tanh"], ids=str)
def test_gradients_through_dense_and_matmul(spec) -> None:
    activation, params = _activation(spec)
    x, w, b = gx.input("x", (5, 4), "float64"), gx.input("W", (4, 3), "float64"), \
        gx.input("b", (3,), "float64")
    v = gx.input("v", (3, 2), "float64")
    hidden = gx.dense(x, w, b, activation=activation, **params)
    loss = gx.sum(gx.square(gx.matmul(hidden, v)))
    grads = gx.grad(loss, [x, w, b, v])
    arrays = [_array(t.shape, "float64") for t in (x, w, b, v)]
    for optimize in (True, False):
        ref, llvm = _compile_both([x, w, b, v], grads, optimize=optimize)
        for got, expected in zip(llvm(*arrays), ref(*arrays), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_gradient_of_batched_matmul() -> None:
    a, b = gx.input("a", (2, 3, 4), "float32"), gx.input("b", (4, 5), "float32")
    grads = gx.grad(gx.sum(gx.matmul(a, b)), [a, b])
    arrays = [_array(a.shape, "float32"), _array(b.shape, "float32")]
    ref, llvm = _compile_both([a, b], grads)
    for got, expected in zip(llvm(*arrays), ref(*arrays), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# -- einsum ---------------------------------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("ji,jk->ki", [(4, 3), (4, 5)]),    # output stored transposed
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,bkj->bki", [(2, 3, 4), (2, 5, 4)]),
    ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ijk,jkl->il", [(2, 3, 4), (3, 4, 5)]),  # folded contraction
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij->i", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("iij->ji", [(3, 3, 2)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,i->j", [(3, 4), (3,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ij,jk->ik", [(1, 4), (1, 5)]),      # a size-1 label broadcasts
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("ij,jk->ik", [("n", 4), (4, 3)]),
    ("ij,jk->ik", [(3, 0), (0, 2)]),
    ("ij,jk->ik", [(0, 4), (4, 2)]),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize(("spec", "shapes"), EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_matches_numpy(spec: str, shapes: list, dtype: str) -> None:
    xs = [gx.input(f"x{k}", s, dtype) for k, s in enumerate(shapes)]
    arrays = [_array(s, dtype) for s in shapes]
    _check(xs, gx.einsum(spec, *xs), arrays, dtype, reference=np.einsum(spec, *arrays))


def test_einsum_of_non_contiguous_arguments() -> None:
    a, b = gx.input("a", (3, 4), "float64"), gx.input("b", (4, 5), "float64")
    arrays = [_array((4, 3), "float64").T, _array((4, 10), "float64")[:, ::2]]
    _check([a, b], gx.einsum("ij,jk->ik", a, b), arrays, "float64",
           reference=np.einsum("ij,jk->ik", *arrays))


def test_gradient_through_einsum() -> None:
    a, b = gx.input("a", (2, 3, 4), "float64"), gx.input("b", (2, 4, 5), "float64")
    loss = gx.sum(gx.square(gx.einsum("bij,bjk->bik", a, b)))
    grads = gx.grad(loss, [a, b])
    arrays = [_array(a.shape, "float64"), _array(b.shape, "float64")]
    ref, llvm = _compile_both([a, b], grads)
    for got, expected in zip(llvm(*arrays), ref(*arrays), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_blas_is_found_without_importing_scipy(tmp_path):
    """A matmul graph finds sgemm in NumPy's own OpenBLAS (or the one SciPy's wheel
    bundles), so compiling and running it never imports SciPy (~0.4 s); the answer is
    NumPy's."""
    from graphc.backends.llvm import externs

    if externs.numpy_openblas() is None and externs.bundled_openblas() is None:
        pytest.skip("no bundled OpenBLAS here: BLAS comes from cython_blas")
    code = (
        "import sys, numpy as np, graphc as gx\n"
        "a = gx.input('a', (3, 4), 'float32'); b = gx.input('b', (4, 2), 'float64')\n"
        "f = gx.compile([a, b], [a @ a.T, b.T @ b], backend='llvm')\n"
        "x = np.arange(12, dtype=np.float32).reshape(3, 4); y = np.arange(8.0).reshape(4, 2)\n"
        "s, d = f(x, y)\n"
        "assert np.array_equal(s, x @ x.T) and np.array_equal(d, y.T @ y), (s, d)\n"
        "print('scipy' in sys.modules)\n")
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


@pytest.mark.parametrize("ilp64", [True, False])
def test_both_blas_integer_widths_give_numpys_products(ilp64):
    """BLAS with 64-bit ints (NumPy's OpenBLAS, shared with NumPy) and with 32-bit ints
    (SciPy's, and what exported libraries link): the same products, batched, transposed
    and in both float types."""
    from graphc.backends.llvm import externs
    from graphc.backends.llvm.compiled import LlvmCompiled
    from graphc.backends.llvm.lowering import lower

    if ilp64 and not externs.ilp64():
        pytest.skip("NumPy here has no bundled ILP64 OpenBLAS")
    a = gx.input("a", (2, 5, 3), "float32")
    b = gx.input("b", (4, 3), "float32")
    c = gx.input("c", (3, 6), "float64")
    graph = gx.Graph.build([a, b, c], [a @ b.T, c.T @ c])
    lowered = lower(graph, blas_ilp64=ilp64)
    assert set(lowered.layout.externs) == ({"sgemm64", "dgemm64"} if ilp64
                                          else {"sgemm", "dgemm"})
    fn = LlvmCompiled(graph, lowered)
    x, y, z = _array((2, 5, 3), "float32"), _array((4, 3), "float32"), _array((3, 6), "float64")
    got = fn(x, y, z)
    np.testing.assert_allclose(got[0], x @ y.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], z.T @ z, rtol=1e-12)


# -- addmm ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("beta,alpha", [(1.0, -0.1), (0.5, 2.0), (0.0, 1.0)])
@pytest.mark.parametrize("transposed", [False, True])
def test_addmm_matches_numpy(dtype, beta, alpha, transposed):
    rng = np.random.default_rng(5)
    c_val = rng.standard_normal((5, 3)).astype(dtype)
    a_val = rng.standard_normal((4, 5) if transposed else (5, 4)).astype(dtype)
    b_val = rng.standard_normal((4, 3)).astype(dtype)
    c, a, b = (gx.input(f"{n}_{dtype}_{transposed}", v.shape, dtype)
               for n, v in (("c", c_val), ("a", a_val), ("b", b_val)))
    y = gx.addmm(c, gx.transpose(a) if transposed else a, b, beta=beta, alpha=alpha)
    got = gx.compile([c, a, b], y, backend="llvm")(c_val, a_val, b_val)
    a_mat = a_val.T if transposed else a_val
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, beta * c_val + alpha * (a_mat @ b_val), rtol=tol, atol=tol)
    np.testing.assert_array_equal(c_val, c_val.copy())  # c is read, never written


def test_addmm_with_beta_zero_never_reads_c():
    c = gx.input("c_nan", (2, 2), "float64")
    a = gx.input("a_nan", (2, 2), "float64")
    fn = gx.compile([c, a], gx.addmm(c, a, a, beta=0.0), backend="llvm")
    np.testing.assert_array_equal(fn(np.full((2, 2), np.nan), np.eye(2)), np.eye(2))


def test_an_sgd_step_accumulates_into_the_weights_on_both_backends():
    """The optimizer turns w − lr·xᵀg into an addmm written in place into w."""
    rng = np.random.default_rng(1)
    start = rng.standard_normal((6, 4)).astype("float32")
    data = rng.standard_normal((9, 6)).astype("float32")
    results = []
    for backend in ("numpy", "llvm"):
        w = gx.param(f"w_{backend}", start.copy())
        x = gx.input(f"x_{backend}", ("n", 6), "float32")
        loss = gx.mean(gx.tanh(x @ w) ** 2)
        (g,) = gx.grad(loss, [w])
        fn = gx.compile([x], loss, updates={w: w - 0.3 * g}, backend=backend)
        assert [p.op.name for p, _ in fn.graph.updates] == ["param"]
        assert fn.graph.updates[0][1].op.name == "addmm"
        losses = [float(fn(data)) for _ in range(4)]
        results.append((losses, w.value.copy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-6)
