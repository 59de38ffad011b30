"""evaluate and predict: values against a NumPy forward pass, batching, one compile."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

import graphc as gx
from tests.train.common import mlp, moons, numpy_forward

D = moons(n=100)


@pytest.mark.parametrize("batch_size", [256, 7])  # all at once; 20 rows as 7 + 7 + 6
def test_predict_matches_numpy(batch_size):
    model = mlp(seed=3)
    pred = gx.train.predict(model, D.X_test, batch_size=batch_size)
    assert pred.shape == (20, 2) and pred.dtype == np.float32
    np.testing.assert_allclose(pred, numpy_forward(model, D.X_test), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [256, 7])
def test_evaluate_cross_entropy_matches_numpy(batch_size):
    model = mlp(seed=3)
    scores = gx.train.evaluate(model, D.X_test, D.y_test, batch_size=batch_size)
    logits = numpy_forward(model, D.X_test)
    nll = logsumexp(logits, axis=1) - logits[np.arange(20), D.y_test]
    assert scores["loss"] == pytest.approx(nll.mean(), rel=1e-5)
    assert scores["accuracy"] == np.mean(np.argmax(logits, axis=1) == D.y_test)


def test_evaluate_binary_and_regression_losses_match_numpy():
    model = mlp(seed=3, outputs=1, activation="sigmoid")
    p = numpy_forward(model, D.X_test)[:, 0]
    t = D.y_test
    scores = gx.train.evaluate(model, D.X_test, t, loss="binary_cross_entropy",
                               metrics=["accuracy", "mse", "mae"])
    bce = -(t * np.log(p) + (1 - t) * np.log1p(-p))
    assert scores["loss"] == pytest.approx(bce.mean(), rel=1e-5)
    assert scores["accuracy"] == np.mean((p > 0.5) == t)
    assert scores["mse"] == pytest.approx(np.mean((p - t) ** 2), rel=1e-5)
    assert scores["mae"] == pytest.approx(np.mean(np.abs(p - t)), rel=1e-5)


def test_callable_metric_sees_all_predictions():
    model = mlp(seed=3)
    seen = []

    def rows(pred, target):
        seen.append(len(pred))
        return float(len(target))

    assert gx.train.evaluate(model, D.X_test, D.y_test, metrics=[rows],
                             batch_size=6)["rows"] == 20
    assert seen == [20]


def test_repeated_calls_compile_once(monkeypatch):
    model = mlp(seed=3)
    calls = []
    compile_ = gx.compile
    monkeypatch.setattr(gx, "compile", lambda *a, **k: calls.append(1) or compile_(*a, **k))
    for _ in range(3):
        gx.train.predict(model, D.X_test)
        gx.train.predict(model, D.X_train[:5], batch_size=2)
    assert len(calls) == 1
    for _ in range(3):
        gx.train.evaluate(model, D.X_test, D.y_test)
    assert len(calls) == 2


def test_predictions_read_the_current_params():
    model = mlp(seed=3)
    before = gx.train.predict(model, D.X_test)
    last = model.layers[-1]
    last.b.value = last.b.value + np.float32(1.0)
    np.testing.assert_allclose(gx.train.predict(model, D.X_test), before + 1.0, rtol=1e-6)
