"""ONNX elementwise ops as graphc graph."""

from __future__ import annotations

import graphc as gx
from graphc.onnx.registry import handler


@handler("Add", since=1)
def add(node):
    return gx.add(node.input(0), node.input(1))


@handler("Relu", since=1)
def relu(node):
    return gx.relu(node.input(0))
