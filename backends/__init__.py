"""Backends turn an optimized ``Graph`` into a ``Compiled`` callable.

Each backend is a sub-package exposing ``lower(graph) -> Compiled``. graphc's
core reaches them only through ``get``, so a backend's dependencies load only
when it is used. A backend with a disk cache may also expose ``load_unoptimized`` and
``remember_unoptimized`` (``optional``): code found by the graph before optimization,
so a warm start skips the optimizer (see ``backends/llvm/unoptimized.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from graphc.errors import CompileError

#: backend name -> module path; a module provides ``lower(graph)``.
BACKENDS: dict[str, str] = {"numpy": "graphc.backends.numpy", "llvm": "graphc.backends.llvm"}


def get(name: str) -> Callable[[Any], Any]:
    """The ``lower`` function of backend ``name``."""
    if name not in BACKENDS:
        raise CompileError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name]).lower


def optional(name: str, function: str) -> Callable[..., Any] | None:
    """Backend ``name``'s ``function``, or None when it has none."""
    get(name)  # an unknown backend is refused here too
    return getattr(importlib.import_module(BACKENDS[name]), function, None)
