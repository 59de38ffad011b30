"""Shared test helpers: evaluate a graph-building function, check its gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gx


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


try:  # torch is a test oracle only; its comparisons skip when it is absent
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
