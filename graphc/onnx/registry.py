"""Which function imports which ONNX op, by op type, domain and opset.

A handler is registered for the opset version that introduced the semantics it
implements (``since``); an import picks, for each node, the handler with the
greatest ``since`` not above the model's opset for that domain, which is how the
ONNX spec versions ops (an op keeps its meaning until a newer version changes it).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any], Any]

#: (domain, op_type) -> sorted [(since, handler)]
HANDLERS: dict[tuple[str, str], list[tuple[int, Handler]]] = {}

_DEFAULT_DOMAINS = ("", "ai.onnx")


def handler(*op_types: str, since: int = 1, domain: str = "") -> Callable[[Handler], Handler]:
    """Register ``fn(node) -> value | tuple of values`` importing ``op_types`` from opset
    ``since`` on (``node`` is a ``graphc.onnx.importer.NodeContext``)."""
    def register(fn: Handler) -> Handler:
        for op_type in op_types:
            versions = HANDLERS.setdefault((domain, op_type), [])
            if any(s == since for s, _ in versions):
                raise ValueError(f"{op_type} already has a handler since opset {since}")
            bisect.insort(versions, (since, fn), key=lambda v: v[0])
        return fn
    return register


def lookup(domain: str, op_type: str, opset: int) -> Handler | None:
    """The handler for ``op_type`` at ``opset``, or ``None`` if graphc has none."""
    domain = "" if domain in _DEFAULT_DOMAINS else domain
    versions = HANDLERS.get((domain, op_type), [])
    chosen = None
    for since, fn in versions:
        if since <= opset:
            chosen = fn
    return chosen


def supported_ops() -> list[str]:
    """Every ONNX op type graphc imports (default domain first)."""
    return sorted(op if not d else f"{d}.{op}" for d, op in HANDLERS)
