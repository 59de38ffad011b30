"""Leaf ops: inputs (fed at call time), params (hold values) and constants."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ops.base import Op


class Literal:
    """A read-only array used as a node attribute, hashed and compared by value."""

    __slots__ = ("array", "_key")

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self._key = (array.dtype.name, array.shape, array.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Literal) and self._key == other._key

    def __repr__(self) -> str:
        return np.array2string(self.array, threshold=8)


class Leaf(Op):
    differentiable = True

    def vjp(self, node, g):
        return ()


class Input(Leaf):
    name = "input"

    def emit(self, args: list[str], attrs: dict[str, Any]) -> str:
        raise AssertionError("inputs are function arguments, not expressions")


class Parameter(Leaf):
    name = "param"

    def emit(self, args: list[str], attrs: dict[str, Any]) -> str:
        raise AssertionError("params are function arguments, not expressions")


class Constant(Leaf):
    name = "constant"

    def impl(self, *, value: Literal) -> np.ndarray:  # type: ignore[override]
        return value.array


def constant_value(node: Any) -> np.ndarray | None:
    """The array a ``constant`` node holds, or ``None`` for any other node."""
    return node.attrs[0][1].array if node.op.name == "constant" else None


INPUT = Input()
PARAM = Parameter()
CONSTANT = Constant()
