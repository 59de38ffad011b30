"""Bad data is refused before the first step, with the values, indices and shapes named."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc import optim
from graphc.errors import GraphcError
from tests.train.common import assert_same_values, mlp, param_values

RNG = np.random.default_rng(0)
X = RNG.standard_normal((10, 2)).astype(np.float32)
CLASSES = np.array([0, 1, 2, 1, 0, 2, 1, 0, 2, 1])


def with_value(a: np.ndarray, index: tuple, value) -> np.ndarray:
    a = a.copy()
    a[index] = value
    return a


# X, y, loss, model outputs, message (a regular expression)
CASES = {
    "lengths": (X, CLASSES[:9], "cross_entropy", 3,
                r"training data: X has 10 examples but y has 9; they must match "
                r"\(X shape \(10, 2\), y shape \(9,\)\)"),
    "nan and inf in X": (with_value(with_value(X, (3, 1), np.nan), (6, 0), np.inf), CLASSES,
                         "cross_entropy", 3,
                         r"X holds 2 non-finite values \(1 NaN, 1 inf\); the first is nan at "
                         r"index \(3, 1\) \(example 3\)"),
    "label too large": (X, with_value(CLASSES, 4, 5), "cross_entropy", 3,
                        r"label 5 at index \(4,\) is out of range for a model with 3 outputs "
                        r"\(classes 0..2\); 1 of 10 labels are out of range"),
    "negative label": (X, with_value(CLASSES, 7, -1), "cross_entropy", 3,
                       r"label -1 at index \(7,\) is out of range for a model with 3 outputs"),
    "float labels": (X, CLASSES.astype(np.float64), "cross_entropy", 3,
                     r"cross_entropy takes integer class labels, got dtype float64 \(e\.g\. "
                     r"np\.float64\(0\.0\)\); convert them with y\.astype\('int64'\)"),
    "labels per example": (X, np.zeros((10, 3), np.int64), "cross_entropy", 3,
                           r"y of shape \(10, 3\) does not fit the model's output \(batch, 3\)"),
    "binary labels": (X, with_value(CLASSES % 2, 2, 2), "binary_cross_entropy", 1,
                      r"binary_cross_entropy takes labels 0 or 1, got 2 at index \(2, 0\); "
                      r"1 of 10 labels are neither 0 nor 1"),
    "logit labels": (X, np.full(10, 0.5), "bce_with_logits", 1,
                     r"bce_with_logits takes labels 0 or 1, got 0\.5 at index \(0, 0\)"),
    "nan targets": (X, with_value(np.zeros((10, 1)), (8, 0), np.nan), "mse", 1,
                    r"training data: y holds 1 non-finite values \(1 NaN, 0 inf\); the first "
                    r"is nan at index \(8, 0\)"),
    "target shape": (X, np.zeros((10, 3)), "mse", 1,
                     r"y of shape \(10, 3\) does not fit the model's output \(batch, 1\) for mse"),
    "feature shape": (RNG.standard_normal((10, 3)), CLASSES, "cross_entropy", 3,
                      r"each example of X has shape \(3,\), but the model was built for "
                      r"examples of shape \(2,\)"),
    "no examples": (np.zeros((0, 2)), CLASSES[:0], "cross_entropy", 3,
                    r"X must hold at least one example, got shape \(0, 2\)"),
    "strings": (np.array([["a", "b"]] * 10), CLASSES, "cross_entropy", 3,
                r"X must be numeric, got dtype <U1"),
}


@pytest.mark.parametrize("X, y, loss, outputs, message", CASES.values(), ids=CASES.keys())
def test_bad_training_data_is_refused_before_training(X, y, loss, outputs, message):
    model = mlp(outputs=outputs, activation="sigmoid" if loss == "binary_cross_entropy" else None)
    optimizer = optim.SGD(0.1)
    before = param_values(model)
    with pytest.raises(gx.train.DataError, match=message) as caught:
        gx.train.fit(model, X, y, loss=loss, optimizer=optimizer, progress=False)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, GraphcError)
    assert_same_values(param_values(model), before)
    assert int(optimizer.step.value) == 0


def test_bad_validation_data_is_named_as_such():
    bad = with_value(X, (2, 0), np.inf)
    with pytest.raises(gx.train.DataError, match=r"validation data: X holds 1 non-finite value"):
        gx.train.fit(mlp(outputs=3), X, CLASSES, validation=(bad, CLASSES), progress=False)
    with pytest.raises(gx.train.DataError, match=r"validation labels: label 3 at index \(2,\)"):
        gx.train.fit(mlp(outputs=3), X, CLASSES, validation=(X, CLASSES + 1), progress=False)


@pytest.mark.parametrize("call", [
    lambda model: gx.train.evaluate(model, X[:, :1], CLASSES),
    lambda model: gx.train.predict(model, X[:, :1]),
])
def test_evaluation_and_prediction_check_their_data(call):
    with pytest.raises(gx.train.DataError, match=r"each example of X has shape \(1,\)"):
        call(mlp(outputs=3))


def test_float64_features_feed_a_float32_model():
    model = mlp(outputs=3)
    history = gx.train.fit(model, X.astype(np.float64), CLASSES, epochs=1, progress=False)
    assert history.epochs == 1 and model.layers[0].W.dtype == "float32"


@pytest.mark.parametrize("dtype", ["float64", "int64", "bool"])
def test_data_of_any_dtype_builds_a_float32_model(dtype):
    model = mlp(outputs=3, inputs=None)  # built by fit, on the data
    gx.train.fit(model, (X > 0).astype(dtype), CLASSES, epochs=1, progress=False)
    assert {p.dtype for p in model.params()} == {"float32"}
    assert model.input_type.dtype == "float32"
    assert gx.train.predict(model, X.astype(dtype)).dtype == np.float32
