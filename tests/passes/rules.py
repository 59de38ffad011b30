"""Checking one rewrite rule: it fires, its pattern is gone, and values do not change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import graphc as gx
from graphc.graph import Graph
from graphc.passes import run_pipeline


def ops_in(graph: Graph) -> list[str]:
    """The op names of every node of ``graph``, in topological order."""
    return [n.op.name for n in graph.toposort()]


def check_rule(rule: str, build: Callable[..., Any], *arrays: Any, level: int = 2,
               inference: bool = False, gone: Sequence[str] = (), present: Sequence[str] = (),
               rtol: float = 1e-12, atol: float = 1e-12) -> Graph:
    """Build ``build(*inputs)`` on inputs shaped like ``arrays``, optimize it, and check:

    * ``rule`` fired (by name, in the report);
    * no node of an op in ``gone`` is left, every op in ``present`` is there;
    * the optimized graph computes what the unoptimized one does (same NaN/inf places).

    Returns the optimized graph for further checks.
    """
    arrays = [np.asarray(a) for a in arrays]
    xs = [gx.input(f"x{k}", a.shape, a.dtype) for k, a in enumerate(arrays)]
    out = build(*xs)
    outs = list(out) if isinstance(out, list | tuple) else [out]
    graph = Graph.build(xs, outs)
    optimized, report = run_pipeline(graph, level=level, inference=inference)
    assert report.fired[rule] >= 1, f"{rule} did not fire:\n{report}"
    names = ops_in(optimized)
    for op in gone:
        assert op not in names, f"{op} is still in the optimized graph: {names}"
    for op in present:
        assert op in names, f"{op} is missing from the optimized graph: {names}"
    expected = gx.compile(xs, outs, optimize=False)(*arrays)
    got = gx.compile(xs, optimized.outputs, optimize=False)(*arrays)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, tuple) else (got,)
    for e, g in zip(expected, got, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    return optimized
