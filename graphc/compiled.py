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

    Returns an array when compiled for one tensor, else a tuple (of one, for ``[y]``).
    Updates are applied to the params after every output is computed; if anything
    fails, no param changes.
    """

    def __init__(self, graph: Graph, run: Runner, backend: str) -> None:
        self.graph = graph
        self.backend = backend
        self._run = run
        self._inputs = graph.inputs
        self._params = graph.params
        self._updated = [p for p, _ in graph.updates]
        #: The optimizer's report and the graph before optimization (set by ``gx.compile``).
        self.report = None
        #: Was it compiled for one tensor (return an array) or a sequence (a tuple)?
        self.single = len(graph.outputs) == 1
        self.unoptimized = graph

    def __repr__(self) -> str:
        names = ", ".join(i.name or "?" for i in self._inputs)
        return (f"<graphc.Compiled ({names}) -> {len(self.unoptimized.outputs)} outputs, "
                f"{len(self._updated)} updates, backend={self.backend!r}>")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        arrays = self._bind(args, kwargs)
        dims = self.check_arguments(arrays)
        outputs, new_values = self._run(arrays, [p.value for p in self._params], dims)
        # Params are overwritten in place (by this call's updates or a later call's): an
        # output that is (a view of) a param is copied, so it keeps the value it had when
        # computed; a new value that views an updated param is copied before any param
        # changes, so a swap ``{a: b, b: a}`` does not read an overwritten ``b``.
        outputs = [_detached(np.asarray(o), self._params) for o in outputs]
        if self._updated:
            # a backend may have written a new value into the param's own array (an
            # in-place optimizer step, run after everything else): nothing to copy then
            self._commit([v if v is p.value else _detached(np.asarray(v), self._updated)
                          for p, v in zip(self._updated, new_values, strict=True)])
        return outputs[0] if self.single else tuple(outputs)

    def _bind(self, args: tuple, kwargs: dict[str, Any]) -> list[Any]:
        inputs = self._inputs
        if len(args) > len(inputs):
            raise ArgumentError(f"expected {len(inputs)} arguments "
                                f"({', '.join(str(i.name) for i in inputs)}), got {len(args)}")
        bound = list(args) + [_MISSING] * (len(inputs) - len(args))
        for key, value in kwargs.items():
            pos = next((k for k, i in enumerate(inputs) if i.name == key), None)
            if pos is None:
                raise ArgumentError(f"unexpected keyword argument {key!r}; the inputs are "
                                    f"{', '.join(str(i.name) for i in inputs)}")
            if bound[pos] is not _MISSING:
                raise ArgumentError(f"input {key!r} is given twice (by position and keyword)")
            bound[pos] = value
        missing = [inputs[k].name for k, v in enumerate(bound) if v is _MISSING]
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
        for k, (node, value) in enumerate(zip(self._inputs, arrays, strict=True)):
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
            if value is not param.value:
                param._assign(value)


_MISSING = object()


def _detached(array: np.ndarray, params: Sequence[Any]) -> np.ndarray:
    """``array``, copied if it may share memory with one of ``params``' values."""
    if any(np.may_share_memory(array, p.value) for p in params):
        return array.copy()
    return array


def _convert(node: Any, value: Any) -> np.ndarray:
    """``value`` as an array of ``node``'s dtype, or an ``ArgumentError``.

    NumPy arrays and scalars keep their dtype, so they must cast safely (an int32 array
    feeds an int64 input; a float64 array does not feed a float32 one). Python scalars
    and lists are weakly typed, as in NumPy 2: ints feed int inputs when every value fits,
    and float inputs; floats feed float inputs; bools feed anything.
    """
    want = np.dtype(node.dtype)
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype != want and not np.can_cast(array.dtype, want, "safe"):
            raise ArgumentError(
                f"input {node.name!r} is declared {node.type}, got an array of dtype "
                f"{array.dtype}; cast it with .astype({want.name!r})")
        return array.astype(want, copy=False)
    return _convert_python(node, value, want)


def _convert_python(node: Any, value: Any, want: np.dtype) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise ArgumentError(f"input {node.name!r}: cannot convert {type(value).__name__} to an "
                            f"array ({e})") from None
    kind = array.dtype.kind
    if kind == "O" and _all_ints(array):  # ints too large for int64
        raise ArgumentError(f"input {node.name!r} is declared {node.type}, got integers out of "
                            "its range")
    fits = (kind == "b"
            or kind in "iu" and (want.kind == "f" or want.kind in "iu" and _in_range(array, want))
            or kind == "f" and want.kind == "f")
    if not fits:
        what = ("integers out of its range" if kind in "iu" and want.kind in "iu"
                else f"{type(value).__name__} of dtype {array.dtype}")
        raise ArgumentError(f"input {node.name!r} is declared {node.type}, got {what}")
    return array.astype(want)


def _all_ints(array: np.ndarray) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in array.flat)


def _in_range(array: np.ndarray, want: np.dtype) -> bool:
    info = np.iinfo(want)
    return array.size == 0 or bool(info.min <= array.min() and array.max() <= info.max)


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
