"""The losses ``fit`` accepts by name, and the metrics it reports.

A loss is a graph function ``(pred, target) -> Tensor`` (per element or a scalar) plus
what it expects of the labels, which the data checks enforce before training, and how
its predictions become class decisions (for accuracy). The training loss is the mean
over every element of the batch.

Metrics are NumPy functions ``(pred, target) -> float`` of a batch, computed outside the
graph from the predictions the compiled function returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

import graphc as gx
from graphc.tensor import Tensor

#: what a loss expects of its labels (checked in ``checks.prepare_targets``)
CLASSES, BINARY, VALUES, ANY = "classes", "binary", "values", "any"

Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Loss:
    """A loss function with what it expects of its labels.

    Attributes
    ----------
    name : str
    fn : callable
        ``(pred, target) -> Tensor``, per element or scalar.
    labels : str
        ``"classes"`` (integer class indices of the predictions' shape without the last
        axis), ``"binary"`` (0/1 of the predictions' shape), ``"values"`` (floats of the
        predictions' shape) or ``"any"`` (passed as given: a user's callable).
    decide : callable or None
        Predictions → decisions compared with the targets for accuracy; ``None`` when
        the loss is not a classification loss.
    """

    name: str
    fn: Callable[[Tensor, Tensor], Tensor]
    labels: str
    decide: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def classification(self) -> bool:
        return self.decide is not None

    def mean(self, pred: Tensor, target: Tensor) -> Tensor:
        """The loss averaged over every element of the batch (a scalar)."""
        value = self.fn(pred, target)
        if not isinstance(value, Tensor):
            raise TypeError(f"loss {self.name!r} returned {type(value).__name__}, not a Tensor")
        return value if value.ndim == 0 else gx.mean(value)


def _argmax(logits: np.ndarray) -> np.ndarray:
    return np.argmax(logits, axis=-1)


def _above_half(probs: np.ndarray) -> np.ndarray:
    return probs > 0.5  # p > 1/2: the likelier class


def _positive(logits: np.ndarray) -> np.ndarray:
    return logits > 0  # σ(z) > 1/2 ⇔ z > 0


LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss("cross_entropy", gx.cross_entropy, CLASSES, _argmax),
    "binary_cross_entropy": Loss("binary_cross_entropy", gx.binary_cross_entropy, BINARY,
                                 _above_half),
    "bce_with_logits": Loss("bce_with_logits", gx.binary_cross_entropy_with_logits, BINARY,
                            _positive),
    "mse": Loss("mse", gx.mse, VALUES),
}


def get_loss(loss: str | Callable[[Tensor, Tensor], Tensor] | Loss) -> Loss:
    """The ``Loss`` for a name in ``LOSSES`` or a callable ``(pred, target) -> Tensor``."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; the losses are {', '.join(LOSSES)}, "
                             "or pass a callable (pred, target) -> Tensor")
        return LOSSES[loss]
    if callable(loss):
        return Loss(getattr(loss, "__name__", "loss"), loss, ANY)
    raise TypeError(f"loss must be a name or a callable (pred, target) -> Tensor, got {loss!r}")


# -- metrics ------------------------------------------------------------------------------------

def _mse(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.square(pred - target)))


def _mae(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - target)))


_VALUE_METRICS: dict[str, Metric] = {"mse": _mse, "mae": _mae}


def _accuracy(loss: Loss) -> Metric:
    if loss.decide is None:
        raise ValueError(f"metric 'accuracy' needs a classification loss (cross_entropy, "
                         f"binary_cross_entropy, bce_with_logits), not {loss.name!r}; pass a "
                         "callable metric (pred, target) -> float instead")
    decide = loss.decide

    def accuracy(pred: np.ndarray, target: np.ndarray) -> float:
        return float(np.mean(decide(pred) == target))

    return accuracy


def get_metrics(metrics: Sequence[str | Metric] | None, loss: Loss) -> dict[str, Metric]:
    """Metric functions by name: ``"accuracy"``, ``"mse"``, ``"mae"`` or callables (named by
    their ``__name__``). ``None`` means accuracy for classification losses, else none."""
    if metrics is None:
        metrics = ("accuracy",) if loss.classification else ()
    if isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    named: dict[str, Metric] = {}
    for metric in metrics:
        name, fn = _metric(metric, loss)
        if name == "loss" or name in named:
            raise ValueError(f"metric name {name!r} is taken; give each metric its own name")
        named[name] = fn
    return named


def _metric(metric: str | Metric, loss: Loss) -> tuple[str, Metric]:
    if metric == "accuracy":
        return metric, _accuracy(loss)
    if isinstance(metric, str):
        if metric not in _VALUE_METRICS:
            raise ValueError(f"unknown metric {metric!r}; the metrics are accuracy, "
                             f"{', '.join(_VALUE_METRICS)}, or a callable (pred, target) -> float")
        return metric, _VALUE_METRICS[metric]
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    raise TypeError(f"a metric is a name or a callable (pred, target) -> float, got {metric!r}")
