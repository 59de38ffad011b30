"""Fixtures the llvm backend's tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh, empty disk cache for this test (and no debug output)."""
    where = tmp_path / "cache"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(where))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    monkeypatch.delenv("GRAPHC_DEBUG", raising=False)
    return where
