"""ONNX shape ops as graphc graph."""

from __future__ import annotations

from graphc.onnx.registry import handler  # noqa: F401
