"""Shared test helpers: evaluate a graph-building function, check its gradients, compare
values and gradients with torch."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gx

try:  # torch is a test oracle only; its comparisons skip when it is absent
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def inputs_like(*arrays: np.ndarray) -> list[gx.Tensor]:
    """One ``gx.input`` per array, with its shape and dtype."""
    return [gx.input(f"a{k}", np.shape(a), np.asarray(a).dtype) for k, a in enumerate(arrays)]


def evaluate(f: Callable[..., Any], *arrays: Any) -> Any:
    """Build ``f`` on inputs shaped like ``arrays`` and run it with the numpy backend."""
    arrays = tuple(np.asarray(a) for a in arrays)
    xs = inputs_like(*arrays)
    out = f(*xs)
    return gx.compile(xs, out)(*arrays)


def assert_gradients(f: Callable[..., Any], *arrays: Any, order: int = 2, **kwargs: Any) -> None:
    """Symbolic gradients (and higher orders) agree with float64 finite differences."""
    report = gx.check_grad(f, arrays, order=order, **kwargs)
    assert report.ok, str(report)


def against_torch(f_gx: Callable[..., Any], f_torch: Callable[..., Any], *arrays: np.ndarray,
                  rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """Values and gradients agree with torch, in float64; skips when torch is absent.

    ``f_gx`` builds the graph on float64 inputs shaped like ``arrays``, ``f_torch``
    computes the same from torch tensors. The gradients compared are those of
    ``sum(y * r)`` for a fixed random ``r`` of the output's shape (a random cotangent,
    so every output element's derivative counts, each differently).
    """
    if torch is None:
        pytest.skip("torch is not installed")
    arrays = tuple(np.asarray(a, np.float64) for a in arrays)
    xs = [gx.input(f"x{k}", a.shape, "float64") for k, a in enumerate(arrays)]
    y = f_gx(*xs)
    r = np.random.default_rng(0).standard_normal(y.shape)
    value, *grads = gx.compile(xs, [y, *gx.grad(gx.sum(y * r), xs)])(*arrays)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ty = f_torch(*ts)
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(value, ty.detach().numpy(), rtol=rtol, atol=atol)
    for mine, t in zip(grads, ts, strict=True):
        np.testing.assert_allclose(mine, t.grad.numpy(), rtol=rtol, atol=atol)


_RNG = np.random.default_rng(1)


def rand(*shape: int) -> np.ndarray:
    """Standard normal test data of ``shape``."""
    return _RNG.standard_normal(shape)


def distinct(*shape: int) -> np.ndarray:
    """Values at least 0.1 apart, shuffled: no ties, so max and its gradient are unambiguous."""
    return _RNG.permutation(np.arange(int(np.prod(shape)), dtype=float) * 0.1).reshape(shape)


def functional():
    """torch.nn.functional, skipping the test when torch is absent."""
    return pytest.importorskip("torch").nn.functional


def run_threads(work: Callable[[int], Any], count: int) -> None:
    """``work(k)`` for k in range(count), on as many threads started together; re-raise
    what any of them raised."""
    import threading

    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            start.wait()
            work(k)
        except BaseException as e:  # noqa: BLE001 - reported by the calling thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def kernel_bodies(ir_text: str) -> dict[str, str]:
    """The llvm backend's kernel functions (``k<n>.<op>``, thread workers included) in the
    IR text ``ir_text``: name -> the whole definition."""
    return {m.group(1): m.group(0) for m in
            re.finditer(r'^define [^@]*@"?(k\d+\.[\w.]*)"?\(.*?^}', ir_text, re.S | re.M)}
