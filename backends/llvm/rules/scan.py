"""LLVM lowering rules for graphc/ops/scan.py."""

from __future__ import annotations
