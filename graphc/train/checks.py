"""Data checks run before any training step: each raises a ``DataError`` saying what is
wrong, where (the index), and the values and shapes involved.

``what`` in every function names the data in messages ("training", "validation", ...).
"""

from __future__ import annotations

import numpy as np

from graphc.nn.module import Layer, float_dtype
from graphc.train.errors import DataError
from graphc.train.losses import ANY, BINARY, CLASSES, Loss
from graphc.types import TensorType, format_shape


def features(X: object, model: Layer, what: str) -> np.ndarray:
    """``X`` as an array the model takes, checked: at least one example, numeric, finite,
    each example shaped as the model's input (once built).

    Features take a built model's float input dtype (float64 data feeds a float32 model),
    else float32, the dtype layers are built in by default: data of any dtype builds a
    float32 model (build it on a float64 input first for a float64 one).
    """
    X = np.asarray(X)
    if X.ndim == 0 or len(X) == 0:
        raise DataError(f"{what} data: X must hold at least one example, got shape "
                        f"{format_shape(X.shape)}")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{what} data: X must be numeric, got dtype {X.dtype}")
    built = model.input_type if model.built else None
    if built is not None:
        _check_example_shape(X, built, what)
    X = X.astype(float_dtype(built) if built is not None else "float32", copy=False)
    check_finite(X, "X", what)
    return X


def _check_example_shape(X: np.ndarray, input_type: TensorType, what: str) -> None:
    want = input_type.shape[1:]
    got = X.shape[1:]
    fits = len(got) == len(want) and all(not isinstance(w, int) or w == g
                                         for w, g in zip(want, got, strict=True))
    if not fits:
        raise DataError(f"{what} data: each example of X has shape {format_shape(got)}, but the "
                        f"model was built for examples of shape {format_shape(want)} (X has "
                        f"shape {format_shape(X.shape)}, the model's input is {input_type})")


def check_finite(a: np.ndarray, name: str, what: str) -> None:
    """Raise if ``a`` holds NaN or ±inf, with the count and the first one's index."""
    if a.dtype.kind != "f":
        return
    bad = ~np.isfinite(a)
    if bad.any():
        first = first_index(bad)
        n_nan = int(np.isnan(a).sum())
        raise DataError(f"{what} data: {name} holds {int(bad.sum())} non-finite values "
                        f"({n_nan} NaN, {int(bad.sum()) - n_nan} inf); the first is "
                        f"{a[first]} at index {first} (example {first[0]})")


def first_index(mask: np.ndarray) -> tuple[int, ...]:
    """The index of the first true entry of ``mask`` (which has one), in C order."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(mask), mask.shape))


def check_lengths(X: np.ndarray, y: np.ndarray, what: str) -> None:
    """X and y hold one entry per example."""
    if y.ndim == 0 or len(X) != len(y):
        raise DataError(f"{what} data: X has {len(X)} examples but y has "
                        f"{len(y) if y.ndim else 'none (a scalar)'}; they must match "
                        f"(X shape {format_shape(X.shape)}, y shape {format_shape(y.shape)})")


def prepare_targets(y: object, loss: Loss, pred: TensorType, what: str) -> np.ndarray:
    """The targets as the loss graph takes them, checked against the loss and the
    model's predictions ``pred`` (type ``("batch", ...)``).

    Class labels: integers in [0, number of outputs), shaped as the predictions without
    their last axis; int64. Binary labels: 0 or 1; values: finite floats; both of the
    predictions' shape per example (a vector (N,) fits predictions (N, 1)) and dtype.
    A callable loss's targets are passed as given (floats in the predictions' dtype).
    """
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise DataError(f"{what} labels: y must be numeric, got dtype {y.dtype}")
    if loss.labels == CLASSES:
        return _class_labels(y, loss, pred, what)
    check_finite(y, "y", what)
    if loss.labels == ANY:
        return y.astype(float_dtype(pred), copy=False) if y.dtype.kind == "f" else y
    y = _shaped_like(y, pred, loss, what)
    if loss.labels == BINARY:
        _check_binary(y, loss, what)
    return y.astype(float_dtype(pred), copy=False)


def _class_labels(y: np.ndarray, loss: Loss, pred: TensorType, what: str) -> np.ndarray:
    if y.dtype.kind not in "iu":
        example = f" (e.g. {y.flat[0]!r})" if y.size else ""
        raise DataError(f"{what} labels: {loss.name} takes integer class labels, got dtype "
                        f"{y.dtype}{example}; convert them with y.astype('int64')")
    n_classes = pred.shape[-1] if pred.ndim >= 2 else None
    if not isinstance(n_classes, int):
        raise DataError(f"{loss.name} needs model outputs with a fixed class axis last, like "
                        f"(batch, classes); the model's output is {format_shape(pred.shape)}")
    if y.shape[1:] != tuple(pred.shape[1:-1]):
        raise DataError(f"{what} labels: y of shape {format_shape(y.shape)} does not fit the "
                        f"model's output {format_shape(pred.shape)}: {loss.name} takes one "
                        "label per example (the output's shape without the class axis)")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        first = first_index(bad)
        raise DataError(f"{what} labels: label {y[first]} at index {first} is out of range "
                        f"for a model with {n_classes} outputs (classes 0..{n_classes - 1}); "
                        f"{int(bad.sum())} of {y.size} labels are out of range")
    return y.astype(np.int64, copy=False)


def _shaped_like(y: np.ndarray, pred: TensorType, loss: Loss, what: str) -> np.ndarray:
    """``y`` reshaped to the predictions' shape per example, when it holds the same
    number of values per example (N ↔ (N, 1))."""
    want = tuple(pred.shape[1:])
    if y.shape[1:] == want:
        return y
    if all(isinstance(d, int) for d in want) and int(np.prod(y.shape[1:])) == int(np.prod(want)):
        return y.reshape(len(y), *want)
    raise DataError(f"{what} labels: y of shape {format_shape(y.shape)} does not fit the "
                    f"model's output {format_shape(pred.shape)} for {loss.name} (one target "
                    "per output value)")


def _check_binary(y: np.ndarray, loss: Loss, what: str) -> None:
    bad = (y != 0) & (y != 1)
    if bad.any():
        first = first_index(bad)
        raise DataError(f"{what} labels: {loss.name} takes labels 0 or 1, got {y[first]} at "
                        f"index {first}; {int(bad.sum())} of {y.size} labels are neither 0 "
                        "nor 1")
