"""Placeholder: filled in by the ONNX work (scan ops)."""

from __future__ import annotations

__all__: list[str] = []
