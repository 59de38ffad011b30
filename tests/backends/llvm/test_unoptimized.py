"""Cache entries keyed by the graph before optimization: a warm start skips the optimizer,
and everything the optimizer would have given is still there on first use."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
import graphc.passes
from graphc.backends.llvm import unoptimized
from graphc.compile import _lower

A = np.random.default_rng(3).standard_normal((7, 4)).astype("float32")
Y = np.array([0, 2, 1, 1, 0, 2, 2])


@pytest.fixture
def pipeline_runs(monkeypatch) -> list[int]:
    """Counts the optimizer's runs from here on (one entry per run)."""
    runs: list[int] = []
    real = graphc.passes.run_pipeline

    def counted(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(graphc.passes, "run_pipeline", counted)
    return runs


def _step(**options):
    """A fresh training step (new params, equal initial values), compiled as a new process
    would: the in-process memo is cleared first."""
    _lower.cache_clear()
    w = gx.param("w", np.linspace(-1, 1, 12, dtype="float32").reshape(4, 3))
    b = gx.param("b", np.zeros(3, "float32"))
    unused = gx.param("unused", np.ones(2, "float32"))
    x = gx.input("x", ("n", 4))
    y = gx.input("y", ("n",), "int64")
    loss = gx.cross_entropy(gx.relu(x @ w + b) * 2.0 + 0.5, y, reduction="mean")
    gw, gb = gx.grad(loss, [w, b])
    fn = gx.compile([x, y], loss, updates={w: w - 0.5 * gw, b: b - 0.5 * gb,
                                           unused: unused * 1.0}, backend="llvm", **options)
    return fn, (w, b, unused)


def _train(fn, params, steps: int = 3):
    losses = [float(fn(A, Y)) for _ in range(steps)]
    return losses, [p.value.copy() for p in params]


def test_a_warm_start_runs_no_optimizer_and_trains_alike(cache_dir, pipeline_runs):
    cold, params = _step()
    expected = _train(cold, params)
    assert len(pipeline_runs) == 1
    assert list(cache_dir.glob("*.pre.json"))

    warm, params = _step()
    assert len(pipeline_runs) == 1, "the optimizer ran on a warm start"
    assert warm.cache_hit
    losses, values = _train(warm, params)
    assert losses == expected[0]
    for got, want in zip(values, expected[1], strict=True):
        np.testing.assert_array_equal(got, want)


def test_the_optimized_graph_and_report_are_made_on_first_use(cache_dir, pipeline_runs):
    cold, _ = _step()
    warm, _ = _step()
    assert len(pipeline_runs) == 1
    assert [n.op.name for n in warm.nodes] == [n.op.name for n in cold.nodes]
    assert len(pipeline_runs) == 2
    assert len(warm.graph) == len(cold.graph)
    assert str(warm.report) and warm.report.passes
    assert len(pipeline_runs) == 2, "graph, report and nodes come from one optimizer run"
    assert "x, y" in repr(warm)


def test_other_optimizer_settings_make_their_own_entry(cache_dir, pipeline_runs):
    _step()
    _step(optimize=1)
    _step(exclude=["fuse"])
    assert len(pipeline_runs) == 3
    assert len(list(cache_dir.glob("*.pre.json"))) == 3


def test_inference_always_optimizes(cache_dir, pipeline_runs):
    for _ in range(2):
        _lower.cache_clear()
        w = gx.param("w", np.ones((4, 3), "float32"))
        x = gx.input("x", ("n", 4))
        fn = gx.compile([x], gx.relu(x @ w), backend="llvm", mode="inference")
        np.testing.assert_allclose(fn(A), np.maximum(A @ np.ones((4, 3)), 0), rtol=1e-6)
    assert len(pipeline_runs) == 2
    assert not list(cache_dir.glob("*.pre.json"))


def test_a_failure_after_a_warm_start_names_the_op(cache_dir, pipeline_runs):
    for _ in range(2):
        _lower.cache_clear()
        x = gx.input("x", (5, 3), "float32")
        i = gx.input("i", (3,), "int64")
        fn = gx.compile([x, i], gx.take(x * 2.0, i, axis=0), backend="llvm")
    assert len(pipeline_runs) == 1
    with pytest.raises(gx.GraphcError, match="take"):
        fn(np.ones((5, 3), np.float32), np.array([0, 9, 1]))


@pytest.mark.parametrize("damage", [b"{not json", b'{"graph": "0", "params": [99]}'])
def test_a_damaged_entry_is_ignored(cache_dir, pipeline_runs, damage):
    cold, params = _step()
    expected = _train(cold, params)
    for entry in cache_dir.glob("*.pre.json"):
        # a well-formed cache entry around a wrong payload: only the payload is checked here
        from graphc.backends.llvm import cache

        entry.write_bytes(cache.pack(damage))
    warm, params = _step()
    assert len(pipeline_runs) == 2
    assert _train(warm, params)[0] == expected[0]


def test_large_constants_make_no_entry(cache_dir, monkeypatch):
    monkeypatch.setattr(unoptimized, "MAX_CONSTANT_BYTES", 64)
    _lower.cache_clear()
    x = gx.input("x", (100,))
    fn = gx.compile([x], x * gx.constant(np.arange(100, dtype="float32")), backend="llvm")
    np.testing.assert_array_equal(fn(np.ones(100, "float32")), np.arange(100))
    assert list(cache_dir.glob("*.json"))
    assert not list(cache_dir.glob("*.pre.json"))


def test_constants_the_optimizer_made_come_back_exactly(cache_dir):
    def build():
        _lower.cache_clear()
        x = gx.input("x", (3,), "float64")
        folded = gx.constant(np.array([1.5, -2.0, np.pi])) * 3.0 + 1.0  # folded to one
        return gx.compile([x], x * folded, backend="llvm")

    first, second = build(), build()
    data = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(first(data), second(data))
    np.testing.assert_array_equal(second(data), data * (np.array([1.5, -2.0, np.pi]) * 3 + 1))
