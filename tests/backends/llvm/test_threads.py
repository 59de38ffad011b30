"""One llvm-compiled function called from several Python threads at once.

ctypes releases the GIL during the native call, and the runtime keeps its scratch
buffers per thread and per shape signature, so calls overlap for real. Each thread uses
its own shapes of a symbolic-dim graph; every result must equal the one computed by a
single thread beforehand (bit for bit: the same code on the same data).
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from tests.helpers import run_threads

THREADS = 4
CALLS = 40
SHAPES = [(1, 3), (7, 5), (64, 33), (1031, 513)]  # (n, m) per thread; the last splits
# its loops across native threads too (2 * parallel.MIN_PER_THREAD = 2**19 elements or more)


def _graph() -> tuple[list[gx.Tensor], list[gx.Tensor]]:
    x = gx.input("x", ("n", "m"), "float32")
    y = gx.input("y", ("m",), "float32")
    h = gx.tanh(x * y) + x
    return [x, y], [gx.sum(h, axis=1), gx.max(h, axis=0), h * 2.0]


def _arguments(seed: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, m)).astype("float32"),
            rng.standard_normal(m).astype("float32"))


def _run_threads(work) -> None:
    run_threads(work, THREADS)


@pytest.mark.parametrize("optimize", [True, False])
def test_threads_calling_at_once_get_the_single_threaded_results(optimize: bool) -> None:
    inputs, outputs = _graph()
    fn = gx.compile(inputs, outputs, backend="llvm", optimize=optimize)
    reference = gx.compile(inputs, outputs, backend="numpy", optimize=optimize)
    args = [_arguments(k, *shape) for k, shape in enumerate(SHAPES)]
    alone = [fn(*a) for a in args]  # single-threaded, before any thread starts
    for got, a in zip(alone, args, strict=True):
        for g, want in zip(got, reference(*a), strict=True):
            np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-4)  # float32 sums

    results: list[list] = [[] for _ in range(THREADS)]

    def work(k: int) -> None:
        results[k] = [fn(*args[k]) for _ in range(CALLS)]

    _run_threads(work)
    for k in range(THREADS):
        for outputs_of_call in results[k]:
            for got, want in zip(outputs_of_call, alone[k], strict=True):
                np.testing.assert_array_equal(got, want)


def test_threads_sharing_one_shape_do_not_share_buffers() -> None:
    """Same dims in every thread (one shape signature), different data."""
    inputs, outputs = _graph()
    fn = gx.compile(inputs, outputs, backend="llvm")
    args = [_arguments(10 + k, 128, 31) for k in range(THREADS)]
    alone = [fn(*a) for a in args]
    mismatches: list[int] = []

    def work(k: int) -> None:
        for _ in range(CALLS):
            got = fn(*args[k])
            if not all(np.array_equal(g, w) for g, w in zip(got, alone[k], strict=True)):
                mismatches.append(k)

    _run_threads(work)
    assert mismatches == []


@pytest.mark.parametrize("threads", [1, 3])
def test_every_thread_count_compiles_static_and_symbolic_loops(monkeypatch, threads):
    """With one thread, a loop of static size takes its range as constants and one of
    symbolic size as arguments; with three, large loops split. All give NumPy's values."""
    monkeypatch.setenv("GRAPHC_NUM_THREADS", str(threads))
    x = gx.input(f"x_sym{threads}", ("n", "m"), "float32")
    s = gx.input(f"x_static{threads}", (1024, 600), "float32")
    fn = gx.compile([x, s], [gx.tanh(x) * 2.0 + x, gx.exp(s * 0.5) - s], backend="llvm")
    rng = np.random.default_rng(threads)
    a = rng.standard_normal((1031, 513)).astype("float32")
    b = rng.standard_normal((1024, 600)).astype("float32")
    got_a, got_b = fn(a, b)
    np.testing.assert_allclose(got_a, np.tanh(a) * 2 + a, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_b, np.exp(b * 0.5) - b, rtol=1e-6, atol=1e-6)
