"""Convolution, im2col/col2im and pooling on the llvm backend, against the numpy backend
(the reference), for both conv2d strategies (im2col + GEMM and the direct loop)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm.rules import conv as conv_rules
from graphc.ops import conv as conv_ops

RNG = np.random.default_rng(0)
TOL = {"float32": 1e-5, "float64": 1e-12}


def _compile_both(inputs, outputs, **kwargs):
    return (gx.compile(inputs, outputs, backend="numpy", **kwargs),
            gx.compile(inputs, outputs, backend="llvm", **kwargs))


def _assert_close(got, want, dtype: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.fixture(params=["gemm", "direct"])
def strategy(request, monkeypatch) -> str:
    """Force conv2d's lowering to one strategy (graphs are built fresh per test, so no
    compiled function is reused across strategies; the disk cache, which cannot see the
    choice, is off)."""
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    monkeypatch.setattr(conv_rules, "_prefer_gemm", lambda *_: request.param == "gemm")
    return request.param


# (batch, x shape (C, H, W), weight shape, conv2d keyword arguments, dtype)
CONV_CASES = [
    (1, (3, 8, 8), (4, 3, 3, 3), {}, "float32"),
    ("n", (3, 8, 8), (4, 3, 3, 3), {"padding": 1}, "float64"),
    ("n", (2, 9, 7), (5, 2, 3, 3), {"stride": 2, "padding": 2}, "float32"),
    (1, (2, 9, 9), (4, 2, 3, 3), {"dilation": 2, "padding": 1}, "float64"),
    ("n", (4, 7, 8), (6, 2, 2, 3), {"groups": 2, "stride": (1, 2), "padding": (1, 0)},
     "float32"),
    ("n", (4, 6, 6), (4, 1, 3, 3), {"groups": 4, "padding": 1}, "float64"),  # depthwise
    (1, (4, 6, 6), (8, 1, 3, 3), {"groups": 4, "stride": 2}, "float32"),  # multiplier 2
    ("n", (3, 5, 6), (8, 3, 1, 1), {}, "float32"),  # pointwise: the image is its columns
    (1, (3, 5, 6), (8, 3, 1, 1), {"stride": 2, "padding": 1}, "float64"),
    ("n", (1, 10, 9), (6, 1, 5, 3), {"padding": ((2, 1), (0, 2)), "dilation": (1, 2)},
     "float32"),
    ("n", (2, 6, 6), (3, 2, 3, 3), {"padding": "same", "stride": 2}, "float64"),
]


@pytest.mark.parametrize("batch,image,weight,kwargs,dtype", CONV_CASES)
def test_conv2d_matches_numpy(strategy, batch, image, weight, kwargs, dtype: str) -> None:
    x = gx.input("x", (batch, *image), dtype)
    w = gx.input("w", weight, dtype)
    ref, llvm = _compile_both([x, w], gx.conv2d(x, w, **kwargs))
    for n in ([1] if batch == 1 else [3, 1]):
        xv = RNG.standard_normal((n, *image)).astype(dtype)
        wv = RNG.standard_normal(weight).astype(dtype)
        _assert_close(llvm(xv, wv), ref(xv, wv), dtype)


@pytest.mark.parametrize("optimize", [True, False])
def test_conv2d_with_bias_and_activation(strategy, optimize: bool) -> None:
    x = gx.input("x", ("n", 3, 8, 8), "float32")
    w = gx.input("w", (5, 3, 3, 3), "float32")
    bias = gx.input("b", (5,), "float32")
    y = gx.maximum(gx.conv2d(x, w, bias, padding=1), 0.0)
    ref, llvm = _compile_both([x, w, bias], y, optimize=optimize)
    args = [RNG.standard_normal(s).astype("float32") for s in [(4, 3, 8, 8), (5, 3, 3, 3), (5,)]]
    _assert_close(llvm(*args), ref(*args), "float32")


def test_conv2d_mixed_dtypes_and_empty_batch(strategy) -> None:
    # float32 input, float64 weight: the result is float64 (the weight matrix is converted)
    x = gx.input("x", ("n", 2, 6, 6), "float32")
    w = gx.input("w", (4, 2, 3, 3), "float64")
    ref, llvm = _compile_both([x, w], gx.conv2d(x, w, padding=1))
    wv = RNG.standard_normal((4, 2, 3, 3))
    xv = RNG.standard_normal((2, 2, 6, 6)).astype("float32")
    _assert_close(llvm(xv, wv), ref(xv, wv), "float64")
    # (the numpy reference cannot reshape an empty batch: compare with the expected shape)
    empty = llvm(np.zeros((0, 2, 6, 6), "float32"), wv)
    assert empty.shape == (0, 4, 6, 6) and empty.dtype == np.float64


def test_conv2d_of_a_transposed_input(strategy) -> None:
    x = gx.input("x", ("n", 3, 7, 6), "float64")
    w = gx.input("w", (4, 3, 3, 2), "float64")
    y = gx.conv2d(gx.transpose(x, (0, 1, 3, 2)), w, padding=1)
    ref, llvm = _compile_both([x, w], y)
    xv, wv = RNG.standard_normal((2, 3, 7, 6)), RNG.standard_normal((4, 3, 3, 2))
    _assert_close(llvm(xv, wv), ref(xv, wv), "float64")


def test_conv2d_float16_accumulates_in_float32() -> None:
    x = gx.input("x", (2, 3, 6, 6), "float16")
    w = gx.input("w", (4, 3, 3, 3), "float16")
    ref, llvm = _compile_both([x, w], gx.conv2d(x, w, padding=1))
    xv = RNG.standard_normal((2, 3, 6, 6)).astype("float16")
    wv = RNG.standard_normal((4, 3, 3, 3)).astype("float16")
    got, want = llvm(xv, wv), ref(xv, wv)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2)


# -- im2col and col2im ----------------------------------------------------------------------

WINDOWS = [
    {"kernel": (3, 3), "stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1)},
    {"kernel": (3, 2), "stride": (2, 1), "padding": ((1, 2), (0, 1)), "dilation": (1, 2)},
    {"kernel": (2, 2), "stride": (2, 2), "padding": ((1, 1), (1, 1)), "dilation": (2, 1)},
    {"kernel": (4, 3), "stride": (1, 3), "padding": ((2, 0), (1, 1)), "dilation": (1, 1)},
]


@pytest.mark.parametrize("pad_value", [0.0, -np.inf])
@pytest.mark.parametrize("window", WINDOWS)
def test_im2col_and_col2im_match_numpy(window: dict, pad_value: float) -> None:
    x = gx.input("x", ("n", 3, 7, 6), "float32")
    cols = conv_ops._im2col(x, pad_value=pad_value, **window)
    # col2im of the windows sums overlapping patches: each pixel times its window count
    image = conv_ops._col2im(gx.where(cols > -np.inf, cols, 0.0), image_size=(7, 6), **window)
    ref, llvm = _compile_both([x], [cols, image], optimize=False)
    xv = RNG.standard_normal((2, 3, 7, 6)).astype("float32")
    for got, want in zip(llvm(xv), ref(xv), strict=True):
        np.testing.assert_array_equal(got, want)


def test_col2im_accumulates_overlapping_patches() -> None:
    window = {"kernel": (3, 3), "stride": (1, 1), "padding": ((1, 1), (1, 1)),
              "dilation": (1, 1)}
    cols = gx.input("c", (1, 1, 9, 4, 4), "float64")
    llvm = gx.compile([cols], conv_ops._col2im(cols, image_size=(4, 4), **window),
                      backend="llvm")
    counts = llvm(np.ones((1, 1, 9, 4, 4)))[0, 0]
    # how many 3x3 windows (stride 1, padding 1) cover each pixel of a 4x4 image
    along = np.array([2, 3, 3, 2])
    np.testing.assert_array_equal(counts, np.outer(along, along))


# -- pooling ----------------------------------------------------------------------------------

POOLS = [
    ("max", {"kernel": 2}),
    ("max", {"kernel": 3, "stride": 1, "padding": 1}),  # overlapping windows
    ("max", {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 1)}),
    ("max", {"kernel": 2, "stride": 1, "dilation": 2}),
    ("avg", {"kernel": 2}),
    ("avg", {"kernel": 3, "stride": 2, "padding": 1}),
    ("avg", {"kernel": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ("avg", {"kernel": (2, 3), "stride": 1, "padding": (1, 1), "count_include_pad": False}),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,kwargs", POOLS)
def test_pooling_matches_numpy_exactly(kind: str, kwargs: dict, dtype: str) -> None:
    pool = gx.max_pool2d if kind == "max" else gx.avg_pool2d
    x = gx.input("x", ("n", 3, 7, 8), dtype)
    ref, llvm = _compile_both([x], pool(x, **kwargs))
    xv = RNG.standard_normal((2, 3, 7, 8)).astype(dtype)
    # the same sums in the same order, the same float64 division: bit for bit
    np.testing.assert_array_equal(llvm(xv), ref(xv))


def test_max_pool_propagates_nan() -> None:
    x = gx.input("x", (1, 1, 4, 4), "float32")
    llvm = gx.compile([x], gx.max_pool2d(x, 2), backend="llvm")
    xv = np.arange(16, dtype="float32").reshape(1, 1, 4, 4)
    xv[0, 0, 1, 2] = np.nan
    np.testing.assert_array_equal(llvm(xv), [[[[5, np.nan], [13, 15]]]])


# -- gradients --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,optimize", [({"padding": 1}, True),
                                             ({"stride": 2, "dilation": 2, "padding": 2}, False),
                                             ({"groups": 2, "padding": (0, 1)}, True),
                                             ({"groups": 2, "padding": (0, 1)}, False)])
def test_conv2d_gradients_match_numpy(strategy, kwargs: dict, optimize: bool) -> None:
    x = gx.input("x", ("n", 4, 7, 7), "float64")
    w = gx.input("w", (6, 4 // kwargs.get("groups", 1), 3, 3), "float64")
    r = gx.input("r", gx.conv2d(x, w, **kwargs).shape, "float64")
    loss = gx.sum(gx.conv2d(x, w, **kwargs) * r)
    grads = gx.grad(loss, [x, w])
    ref, llvm = _compile_both([x, w, r], grads, optimize=optimize)
    xv, wv = RNG.standard_normal((2, 4, 7, 7)), RNG.standard_normal(w.shape)
    rv = RNG.standard_normal((2, *r.shape[1:]))
    for got, want in zip(llvm(xv, wv, rv), ref(xv, wv, rv), strict=True):
        _assert_close(got, want, "float64")


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("kind,kwargs", [POOLS[1], POOLS[3], POOLS[5], POOLS[6]])
def test_pooling_gradients_match_numpy(kind: str, kwargs: dict, optimize: bool) -> None:
    pool = gx.max_pool2d if kind == "max" else gx.avg_pool2d
    x = gx.input("x", ("n", 2, 7, 8), "float32")
    y = pool(x, **kwargs)
    r = gx.input("r", y.shape, "float32")
    ref, llvm = _compile_both([x, r], gx.grad(gx.sum(y * r), x), optimize=optimize)
    xv = RNG.standard_normal((3, 2, 7, 8)).astype("float32")
    rv = RNG.standard_normal((3, *y.shape[1:])).astype("float32")
    _assert_close(llvm(xv, rv), ref(xv, rv), "float32")


def test_conv2d_converts_a_transposed_float32_weight(strategy) -> None:
    # the GEMM needs a row-major float64 weight matrix: this one is copied and converted
    x = gx.input("x", ("n", 2, 6, 5), "float64")
    w = gx.input("w", (4, 2, 2, 3), "float32")
    y = gx.conv2d(x, gx.transpose(w, (0, 1, 3, 2)), stride=(1, 2))
    ref, llvm = _compile_both([x, w], y)
    xv = RNG.standard_normal((2, 2, 6, 5))
    wv = RNG.standard_normal((4, 2, 2, 3)).astype("float32")
    _assert_close(llvm(xv, wv), ref(xv, wv), "float64")
