"""LLVM lowering rules for graphc/ops/scatter.py."""

from __future__ import annotations
