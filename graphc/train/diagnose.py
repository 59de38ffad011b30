"""Which layer made the loss non-finite: a diagnostic forward pass, compiled on demand.

The model is called once more on the training input with every layer's ``forward``
wrapped to record its output, then the recorded outputs are compiled together and run
on the failing batch. Layers are examined in the order their outputs were computed
(a container after its sublayers); the first whose own params or output hold NaN or
±inf is the culprit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

import graphc as gx
from graphc.nn.module import Layer, layer_tree
from graphc.tensor import Param, Tensor
from graphc.train.checks import first_index


def first_non_finite(model: Layer, x: Tensor, X_batch: np.ndarray,
                     backend: str) -> tuple[Layer | None, str]:
    """The first layer whose params or output on ``X_batch`` are not finite, and a
    sentence saying what was found (``None`` and a sentence when every layer is finite)."""
    with _recording(layer_tree(model)) as calls:
        model(x, training=True)
    fn = gx.compile([x], [output for _, output in calls], backend=backend)
    values = fn(X_batch)
    for (layer, _), value in zip(calls, values, strict=True):
        found = _bad_params(layer) or _bad_output(value)
        if found:
            return layer, f"layer {_label(layer)}: {found}"
    return None, ("every layer's params and outputs are finite, so the loss itself "
                  "overflowed or was given values outside its domain")


@contextmanager
def _recording(layers: list[Layer]) -> Iterator[list[tuple[Layer, Tensor]]]:
    """Wrap each layer's ``forward`` (on the instance, undone on exit) to append
    ``(layer, output)`` to the yielded list as outputs are computed."""
    calls: list[tuple[Layer, Tensor]] = []
    own = {layer: layer.__dict__.get("forward") for layer in layers}
    for layer in layers:
        layer.forward = _recorder(layer, layer.forward, calls)  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        for layer, previous in own.items():
            if previous is None:
                del layer.forward
            else:
                layer.forward = previous  # type: ignore[method-assign]


def _recorder(layer: Layer, forward, calls: list[tuple[Layer, Tensor]]):
    def recording_forward(x: Tensor, training: bool) -> Tensor:
        y = forward(x, training)
        calls.append((layer, y))
        return y
    return recording_forward


def _own_params(layer: Layer) -> list[Param]:
    """The params of ``layer`` itself, not of its sublayers."""
    inner = {p for sub in layer.sublayers() for p in [*sub.params(), *sub.state()]}
    return [p for p in [*layer.params(), *layer.state()] if p not in inner]


def _bad_params(layer: Layer) -> str:
    for p in _own_params(layer):
        bad = ~np.isfinite(p.value)
        if bad.any():
            return f"its param {p.name!r} holds {_count(bad, p.value)}"
    return ""


def _bad_output(value: np.ndarray) -> str:
    value = np.asarray(value)
    if value.dtype.kind != "f":
        return ""
    bad = ~np.isfinite(value)
    return f"its output holds {_count(bad, value)}" if bad.any() else ""


def _count(bad: np.ndarray, value: np.ndarray) -> str:
    first = first_index(bad)
    n = int(bad.sum())
    return (f"{n} non-finite value{'s' if n != 1 else ''} of {value.size} (the first is "
            f"{value[first]} at index {first})")


def _label(layer: Layer) -> str:
    return f"{layer.path or layer.name!r} ({type(layer).__name__})"
