"""The graphs training runs, built once and compiled once.

A model gets one input per example signature (shape without the batch dim, dtype):
``x = gx.input("x", ("batch", *shape), dtype)``, with its inference output
``model(x, training=False)``. Evaluation and prediction functions compiled on it are
cached per model (weakly: they go when the model goes), so repeated ``evaluate`` and
``predict`` calls, and validation after every epoch, compile nothing new. They are
compiled in mode "train": they read the params' current values at every call.

The training step is ``model(x, training=True)`` on the same input, its loss, and the
optimizer's and layers' updates, each guarded: ``where(finite(loss), new, old)``, so a
step whose loss is NaN or infinite changes nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

import graphc as gx
from graphc import backends, nn
from graphc.compiled import Compiled
from graphc.nn.module import Layer
from graphc.optim import Optimizer
from graphc.tensor import Param, Tensor
from graphc.train.losses import Loss


def default_backend() -> str:
    """``fit``'s backend: ``$GRAPHC_BACKEND`` when set (as for ``gx.compile``), else
    ``"llvm"`` when that backend is available (``graphc.backends.BACKENDS``), else
    ``"numpy"``."""
    import os

    from graphc.compile import BACKEND_ENV
    chosen = os.environ.get(BACKEND_ENV)
    if chosen:
        return chosen
    return "llvm" if "llvm" in backends.BACKENDS else "numpy"


@dataclass(frozen=True)
class InferenceGraph:
    """A model's input for one example signature and its output with ``training=False``."""

    x: Tensor
    pred: Tensor


T = TypeVar("T")

# per model, what was built for it; an entry goes when its model is garbage collected
_GRAPHS: weakref.WeakKeyDictionary[Layer, dict[Hashable, Any]] = weakref.WeakKeyDictionary()


def _cached(model: Layer, key: Hashable, build: Callable[[], T]) -> T:
    entries = _GRAPHS.setdefault(model, {})
    if key not in entries:
        entries[key] = build()
    return entries[key]


def inference_graph(model: Layer, X: np.ndarray) -> InferenceGraph:
    """The model's input for examples like ``X[0]`` and its inference output (the model is
    built on the first call)."""
    shape, dtype = tuple(X.shape[1:]), X.dtype.name

    def build() -> InferenceGraph:
        x = gx.input("x", ("batch", *shape), dtype)
        return InferenceGraph(x, model(x, training=False))

    return _cached(model, ("graph", shape, dtype), build)


def target_input(y: np.ndarray) -> Tensor:
    """The input the targets ``y`` are fed to: ``("batch", *y.shape[1:])``."""
    return gx.input("y", ("batch", *y.shape[1:]), y.dtype.name)


def predict_fn(model: Layer, graph: InferenceGraph, backend: str) -> Compiled:
    """``x -> predictions``, compiled once per model, signature and backend."""
    return _cached(model, ("predict", graph.x, backend),
                   lambda: gx.compile([graph.x], graph.pred, backend=backend))


def evaluate_fn(model: Layer, graph: InferenceGraph, loss: Loss, y: np.ndarray,
                backend: str) -> Compiled:
    """``(x, y) -> (mean loss, predictions)``, compiled once per model, signature, loss
    (a callable loss by identity) and backend."""
    def build() -> Compiled:
        t = target_input(y)
        return gx.compile([graph.x, t], [loss.mean(graph.pred, t), graph.pred], backend=backend)

    key = ("evaluate", graph.x, loss, tuple(y.shape[1:]), y.dtype.name, backend)
    return _cached(model, key, build)


def finite(value: Tensor) -> Tensor:
    """``|value| < ∞``: false for NaN (every comparison with NaN is) and for ±∞."""
    return gx.abs(value) < np.inf


def guarded(updates: Mapping[Param, Tensor], ok: Tensor) -> dict[Param, Tensor]:
    """Each update ``p ← new`` as ``p ← where(ok, new, p)``: nothing changes unless ``ok``."""
    return {param: gx.where(ok, new, param) for param, new in updates.items()}


@dataclass(frozen=True)
class TrainStep:
    """The compiled step ``(x, y) -> (mean loss, predictions)`` and the graph it came from."""

    fn: Compiled
    x: Tensor
    pred: Tensor


def train_step(model: Layer, graph: InferenceGraph, loss: Loss, y: np.ndarray,
               optimizer: Optimizer, backend: str) -> TrainStep:
    """One training step: forward with ``training=True``, the mean loss, the optimizer's
    updates of the trainable params and the layers' state updates (running statistics),
    all guarded by the loss being finite."""
    t = target_input(y)
    pred = model(graph.x, training=True)
    value = loss.mean(pred, t)
    updates = {**optimizer.minimize(value, model.params()), **nn.state_updates(value)}
    fn = gx.compile([graph.x, t], [value, pred], updates=guarded(updates, finite(value)),
                    backend=backend)
    return TrainStep(fn, graph.x, pred)
