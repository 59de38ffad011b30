"""``Compiled``: the callable every backend returns.

It owns what is the same for all backends: checking each argument's shape and
dtype against the graph's symbolic types (binding symbolic dims consistently),
and applying param updates atomically after the backend ran. A backend supplies
only ``run(args, params, dims) -> (outputs, new_param_values)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.errors import ArgumentError
from graphc.graph import Graph
from graphc.types import format_shape

Runner = Callable[[list[np.ndarray], list[np.ndarray], dict[str, int]],
                  tuple[Sequence[np.ndarray], Sequence[np.ndarray]]]


class Compiled:
    """A compiled graph: call it with one array per input, in order.

    Returns the single output as an array, several as a tuple. Updates are applied
    to the params after every output is computed; if anything fails, no param
    changes.
    """

    def __init__(self, graph: Graph, run: Runner, backend: str) -> None:
        self.graph = graph
        self.backend = backend
        self._run = run
        self._params = graph.params
        self._updated = [p for p, _ in graph.updates]

    def __repr__(self) -> str:
        names = ", ".join(i.name or "?" for i in self.graph.inputs)
        return (f"<graphc.Compiled ({names}) -> {len(self.graph.outputs)} outputs, "
                f"{len(self._updated)} updates, backend={self.backend!r}>")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        arrays = self._bind(args, kwargs)
        dims = self.check_arguments(arrays)
        outputs, new_values = self._run(arrays, [p.value for p in self._params], dims)
        self._commit(new_values)
        outputs = [np.asarray(o) for o in outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _bind(self, args: tuple, kwargs: dict[str, Any]) -> list[Any]:
        inputs = self.graph.inputs
        if len(args) > len(inputs):
            raise ArgumentError(f"expected {len(inputs)} arguments "
                                f"({', '.join(str(i.name) for i in inputs)}), got {len(args)}")
        bound = list(args) + [None] * (len(inputs) - len(args))
        for key, value in kwargs.items():
            pos = next((k for k, i in enumerate(inputs) if i.name == key), None)
            if pos is None or pos < len(args):
                raise ArgumentError(f"unexpected or repeated keyword argument {key!r}")
            bound[pos] = value
        missing = [inputs[k].name for k, v in enumerate(bound) if v is None]
        if missing:
            raise ArgumentError(f"missing arguments: {', '.join(map(str, missing))}")
        return bound

    def check_arguments(self, arrays: list[Any]) -> dict[str, int]:
        """Convert arguments to arrays in place; return the bound symbolic dims.

        Raises ``ArgumentError`` naming the input, its declared type and what was
        passed, for a wrong rank, size, inconsistent symbolic dim, or a dtype that
        cannot be cast safely.
        """
        dims: dict[str, int] = {}
        for k, (node, value) in enumerate(zip(self.graph.inputs, arrays, strict=True)):
            arrays[k] = _convert(node, value)
            _bind_dims(node, arrays[k].shape, dims)
        return dims

    def _commit(self, new_values: Sequence[np.ndarray]) -> None:
        checked = []
        for param, value in zip(self._updated, new_values, strict=True):
            value = np.asarray(value)
            if value.shape != param.shape:
                raise ArgumentError(f"update of {param.name!r} produced shape "
                                    f"{value.shape}, expected {param.shape}; no param changed")
            checked.append((param, value))
        for param, value in checked:  # only now that every update is known to fit
            param._assign(value)


def _convert(node: Any, value: Any) -> np.ndarray:
    want = np.dtype(node.dtype)
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype != want and not np.can_cast(array.dtype, want, "safe"):
            raise ArgumentError(
                f"input {node.name!r} is declared {node.type}, got an array of dtype "
                f"{array.dtype}; cast it with .astype({want.name!r})")
        return array.astype(want, copy=False)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"input {node.name!r}: cannot convert {type(value).__name__} to an "
                            f"array ({e})") from None
    if array.dtype.kind not in "biuf" or not np.can_cast(array, want, "same_kind") and \
            not (array.dtype.kind in "iu" and want.kind == "f"):
        raise ArgumentError(f"input {node.name!r} is declared {node.type}, got "
                            f"{type(value).__name__} of dtype {array.dtype}")
    return array.astype(want)


def _bind_dims(node: Any, shape: tuple[int, ...], dims: dict[str, int]) -> None:
    declared = node.shape
    if len(shape) != len(declared):
        raise ArgumentError(f"input {node.name!r} is declared {node.type} ({len(declared)} dims), "
                            f"got shape {format_shape(shape)}")
    for axis, (want, got) in enumerate(zip(declared, shape, strict=True)):
        if isinstance(want, int):
            if want != got:
                raise ArgumentError(f"input {node.name!r} is declared {node.type}, got shape "
                                    f"{format_shape(shape)} (axis {axis}: {got} != {want})")
        elif dims.setdefault(want, got) != got:
            raise ArgumentError(f"input {node.name!r} has {want}={got} at axis {axis}, but an "
                                f"earlier argument bound {want}={dims[want]}")
