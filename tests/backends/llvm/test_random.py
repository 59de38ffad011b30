"""Random draws on the llvm backend: the Philox generator against its published test
vectors and a Python model, the distributions by moments and Kolmogorov–Smirnov, fresh
numbers each call, reproducibility from the key, and dropout's forward/backward mask."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import graphc as gx
from graphc.backends.llvm.rules.random import PHILOX_M, PHILOX_W, stream_key

N = 100_000  # draws per statistical test
#: significance of the Kolmogorov–Smirnov tests (the draws are fixed by the keys, so a
#: test that passes once passes always)
ALPHA = 1e-4


def philox_reference(counter: list[int], key: tuple[int, int]) -> list[int]:
    """Philox4x32-10 in Python, written from the paper."""
    c, (k0, k1) = list(counter), key
    for r in range(10):
        if r:
            k0, k1 = (k0 + PHILOX_W[0]) & 0xFFFFFFFF, (k1 + PHILOX_W[1]) & 0xFFFFFFFF
        p0, p1 = PHILOX_M[0] * c[0], PHILOX_M[1] * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & 0xFFFFFFFF, (p0 >> 32) ^ c[3] ^ k1, p0 & 0xFFFFFFFF]
    return c


@pytest.mark.parametrize("counter,key,expected", [  # Random123's known-answer tests
    ([0, 0, 0, 0], (0, 0), [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, (0xFFFFFFFF, 0xFFFFFFFF),
     [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], (0xA4093822, 0x299F31D0),
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
])
def test_philox_reference_matches_the_published_vectors(counter, key, expected) -> None:
    assert philox_reference(counter, key) == expected


def _draw(like_shape, op, like_dtype="float64", **kwargs):
    """A compiled draw of ``op`` like an input of ``like_shape`` (its first dim symbolic)."""
    x = gx.input("x", tuple("n" if k == 0 else d for k, d in enumerate(like_shape)), like_dtype)
    return x, gx.compile([x], op(x, **kwargs), backend="llvm")


def test_native_uniforms_are_the_philox_stream() -> None:
    """Element i of call c is built from philox((i, 0, c, 0), stream_key(key)): 53 bits
    for float64, the top 24 for float32."""
    key = 1234
    words = [[philox_reference([i, 0, call, 0], stream_key(key)) for i in range(16)]
             for call in range(2)]
    x, f64 = _draw((16,), gx.uniform_like, key=key)
    _, f32 = _draw((16,), gx.uniform_like, "float32", key=key)
    zeros = np.zeros(16)
    for call in range(2):
        want64 = [((w[0] << 21) | (w[1] >> 11)) * 2.0 ** -53 for w in words[call]]
        want32 = [(w[0] >> 8) * 2.0 ** -24 for w in words[call]]
        np.testing.assert_array_equal(f64(zeros), want64)
        np.testing.assert_array_equal(f32(zeros.astype("float32")), np.float32(want32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("low,high", [(0.0, 1.0), (-2.0, 3.0)])
def test_uniform_moments_and_ks(dtype: str, low: float, high: float) -> None:
    _, f = _draw((1000, 100), gx.uniform_like, dtype, low=low, high=high, key=7)
    u = f(np.zeros((1000, 100), dtype))
    assert u.dtype == dtype and u.shape == (1000, 100)
    assert u.min() >= low and u.max() < high
    width = high - low
    # 5 standard errors of the mean and of the variance (var of (u-m)^2 is w^4/180)
    assert abs(u.mean() - (low + high) / 2) < 5 * width / np.sqrt(12 * N)
    assert abs(u.var() - width ** 2 / 12) < 5 * width ** 2 / np.sqrt(180 * N)
    assert stats.kstest(u.ravel(), "uniform", args=(low, width)).pvalue > ALPHA


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (3.0, 0.5)])
def test_normal_moments_and_ks(dtype: str, mean: float, std: float) -> None:
    _, f = _draw((N,), gx.normal_like, dtype, mean=mean, std=std, key=11)
    z = f(np.zeros(N, dtype)).astype("float64")
    assert abs(z.mean() - mean) < 5 * std / np.sqrt(N)
    assert abs(z.var() - std ** 2) < 5 * std ** 2 * np.sqrt(2 / N)
    assert abs(stats.skew(z)) < 5 * np.sqrt(6 / N)
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24 / N)
    assert stats.kstest(z, "norm", args=(mean, std)).pvalue > ALPHA


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_bernoulli_frequency(dtype: str, p: float) -> None:
    _, f = _draw((N,), gx.bernoulli_like, "float32", p=p, key=5, dtype=dtype)
    b = f(np.zeros(N, "float32"))
    assert b.dtype == dtype
    assert set(np.unique(b.astype("float64"))) <= {0.0, 1.0}
    assert abs(b.mean() - p) <= 5 * np.sqrt(p * (1 - p) / N)


def test_each_call_draws_fresh_numbers_and_fresh_compiles_repeat_them() -> None:
    calls = []
    for _ in range(2):  # two graphs: two compiled functions, each with its own counter
        _, f = _draw((50,), gx.normal_like, key=3)
        calls.append([f(np.zeros(50)) for _ in range(3)])
    first, second = calls
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])


def test_different_keys_and_draws_sharing_a_key_differ() -> None:
    x = gx.input("x", (200,), "float64")
    draws = [gx.uniform_like(x, key=1), gx.uniform_like(x, key=2),
             gx.normal_like(x, key=1), gx.uniform_like(x * 1.0, key=1, low=0.5)]
    u1, u2, z1, u1b = gx.compile([x], draws, backend="llvm")(np.zeros(200))
    assert abs(np.corrcoef(u1, u2)[0, 1]) < 0.25
    assert abs(np.corrcoef(u1, u1b)[0, 1]) < 0.25  # the same key, another node
    assert abs(np.corrcoef(u1, z1)[0, 1]) < 0.25


def test_the_draw_takes_a_symbolic_shape() -> None:
    _, f = _draw((4, 3), gx.uniform_like, key=9)
    for n in (0, 1, 7):
        assert f(np.zeros((n, 3))).shape == (n, 3)


@pytest.mark.parametrize("optimize", [True, False])
def test_dropout_uses_one_mask_forward_and_backward(optimize: bool) -> None:
    x = gx.input("x", ("n", 64), "float32")
    y = gx.dropout(x, p=0.25, key=21)
    g = gx.grad(gx.sum(y * y), [x])[0]
    f = gx.compile([x], [y, g], backend="llvm", optimize=optimize)
    a = np.random.default_rng(0).uniform(1, 2, (500, 64)).astype("float32")
    out, grad = f(a)
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 5 * np.sqrt(0.75 * 0.25 / a.size)
    np.testing.assert_allclose(out[kept], a[kept] / 0.75, rtol=1e-6)
    # d/dx Σ (m x / (1-p))² = 2 m² x / (1-p)²: zero exactly where the forward dropped
    np.testing.assert_array_equal(grad != 0, kept)
    np.testing.assert_allclose(grad[kept], 2 * a[kept] / 0.75 ** 2, rtol=1e-5)
    out2, _ = f(a)
    assert not np.array_equal(out, out2)  # a new mask each call
