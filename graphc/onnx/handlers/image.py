"""ONNX image ops (resize, grid sampling, RoI align) as graphc graph."""

from __future__ import annotations

from graphc.onnx.registry import handler  # noqa: F401
