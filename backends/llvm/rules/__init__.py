"""Lowering rules, keyed by op name.

A rule writes one node's value: ``rule(ctx, node, out, inputs)`` emits IR into
``ctx.builder`` that fills the ``View`` ``out`` from the input ``View``s. A view
rule (``view_rule``) instead returns a ``View`` of its input without copying, or
``None`` when the strides do not allow it (the copying rule then runs).
Elementwise ops need no rule of their own: ``rules.elementwise`` lowers every
scalar formula and fused kernel.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

RULES: dict[str, Callable] = {}
VIEW_RULES: dict[str, Callable] = {}

_MODULES = ("elementwise", "reduce", "linalg", "conv", "shape", "indexing", "nn", "random",
            "scan", "scatter")


def rule(*names: str) -> Callable:
    """Register a rule writing ``node``'s value into ``out``."""
    def register(fn: Callable) -> Callable:
        for name in names:
            RULES[name] = fn
        return fn
    return register


def view_rule(*names: str) -> Callable:
    """Register a rule returning a view of an input (or ``None`` to copy instead)."""
    def register(fn: Callable) -> Callable:
        for name in names:
            VIEW_RULES[name] = fn
        return fn
    return register


def load_all() -> None:
    """Import every rule module (each registers its rules on import)."""
    for name in _MODULES:
        importlib.import_module(f"{__name__}.{name}")
