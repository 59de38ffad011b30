"""``GRAPHC_DEBUG=1..4``: what each level writes to stderr for one compile."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm import debug, lower
from graphc.graph import Graph

ALIVE: list = []  # see test_cache.ALIVE: compiled functions outlive the test


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)


def _compile():
    x = gx.input("x", ("n", 4))
    w = gx.param("w", np.ones(4, "float32"))
    graph = Graph.build([x], [(gx.maximum(x * w, 0.0) + 1.0).sum(axis=1)])
    fn = lower(graph)
    ALIVE.append(fn)
    return fn


@pytest.mark.parametrize(("value", "level"), [("", 0), ("0", 0), ("2", 2), ("x", 0), ("9", 9)])
def test_level_reads_the_environment(monkeypatch, value, level):
    monkeypatch.setenv("GRAPHC_DEBUG", value)
    assert debug.level() == level


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_each_level_adds_its_section(monkeypatch, capsys, level):
    monkeypatch.setenv("GRAPHC_DEBUG", str(level))
    fn = _compile()
    err = capsys.readouterr().err
    lines = err.splitlines()
    if level == 0:
        assert err == ""
        return
    assert lines[0].startswith("graphc llvm: ")
    assert f"{len(fn.nodes)} nodes" in lines[0] and "cache miss" in lines[0]
    assert f"{len(fn.kernel_names)} kernels" in lines[0] and "dims (n)" in lines[0]
    schedule = [line for line in lines if line.startswith("  [")]
    assert len(schedule) == (len(fn.nodes) if level >= 2 else 0)
    if level >= 2:
        assert any(" param 'w' (4,) float32" in line for line in schedule)
    assert ("--- optimized IR" in err) == (level >= 3)
    assert ("--- assembly" in err) == (level >= 4)
    if level >= 3:
        assert "define" in err


def test_a_cache_hit_says_so(monkeypatch, capsys):
    _compile()
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    capsys.readouterr()
    fn = _compile()
    (line,) = capsys.readouterr().err.splitlines()
    assert fn.cache_hit and "cache hit" in line
