"""Early stopping: the monitor's modes and thresholds, stopping after `patience` epochs
without improvement, and restoring the best epoch's weights."""

from __future__ import annotations

import math

import pytest

import graphc as gx
from graphc import optim
from graphc.train import EarlyStopping, Monitor
from tests.train.common import assert_same_values, mlp, moons, param_values


@pytest.mark.parametrize("name, mode, expected", [
    ("val_loss", "auto", "min"), ("loss", "auto", "min"), ("val_accuracy", "auto", "max"),
    ("accuracy", "auto", "max"), ("val_loss", "max", "max"), ("accuracy", "min", "min"),
])
def test_auto_mode(name, mode, expected):
    assert Monitor(name, mode).mode == expected


# mode, min_delta, values seen, which improved
SEQUENCES = [
    ("min", 0.0, [1.0, 0.9, 0.9, 0.95, 0.5], [True, True, False, False, True]),
    ("min", 0.1, [1.0, 0.95, 0.89, 0.85, 0.7], [True, False, True, False, True]),
    ("max", 0.0, [0.5, 0.6, 0.6, 0.7], [True, True, False, True]),
    ("max", 0.05, [0.5, 0.54, 0.56, 0.6], [True, False, True, False]),
    ("min", 0.0, [math.nan, 1.0, math.nan, 0.5], [False, True, False, True]),
]


@pytest.mark.parametrize("mode, min_delta, values, improved", SEQUENCES)
def test_monitor_improvements(mode, min_delta, values, improved):
    monitor = Monitor("x", mode, min_delta)
    assert [monitor.update(epoch, v) for epoch, v in enumerate(values, 1)] == improved
    best = max(i for i, flag in enumerate(improved, 1) if flag)
    assert monitor.best_epoch == best and monitor.best == values[best - 1]


@pytest.mark.parametrize("kwargs, message", [
    ({"patience": 0}, "patience must be an int ≥ 1"),
    ({"mode": "up"}, "mode must be one of"),
    ({"min_delta": -1.0}, "min_delta must be ≥ 0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**kwargs)


def fit_with(stopper: EarlyStopping | None, epochs: int):
    d = moons(n=100)
    model = mlp()
    history = gx.train.fit(model, d.X_train, d.y_train, optimizer=optim.SGD(0.2), epochs=epochs,
                           validation=(d.X_test, d.y_test), early_stopping=stopper,
                           progress=False)
    return model, history


def test_stops_after_patience_and_restores_the_best_weights():
    # training lowers the loss, so with mode="max" only epoch 1 is ever the best: the
    # run stops after `patience` more epochs and puts back epoch 1's weights
    stopper = EarlyStopping("val_loss", patience=2, mode="max")
    model, history = fit_with(stopper, epochs=10)
    assert history.epochs == 3 and history.stopped_early
    assert history.best_epoch == 1 and stopper.stopped_epoch == 3
    assert history.history["val_loss"][2] < history.history["val_loss"][0]
    epoch_one, _ = fit_with(None, epochs=1)
    assert_same_values(param_values(model), param_values(epoch_one))


def test_without_restoring_the_last_weights_stay():
    model, history = fit_with(EarlyStopping("val_loss", patience=2, mode="max",
                                            restore_best=False), epochs=10)
    three_epochs, _ = fit_with(None, epochs=3)
    assert history.stopped_early
    assert_same_values(param_values(model), param_values(three_epochs))


def test_runs_every_epoch_while_improving():
    stopper = EarlyStopping("val_accuracy", patience=1, min_delta=1.0)  # nothing improves by 1
    _, history = fit_with(stopper, epochs=4)
    assert history.epochs == 2 and history.best_epoch == 1 and history.monitor == "val_accuracy"
    stopper = EarlyStopping("loss", patience=3)
    _, history = fit_with(stopper, epochs=4)
    assert history.epochs == 4 and not history.stopped_early and history.best_epoch == 4


def test_a_stopper_is_reset_by_each_fit():
    stopper = EarlyStopping("val_loss", patience=2, mode="max")
    fit_with(stopper, epochs=10)
    _, history = fit_with(stopper, epochs=10)
    assert history.epochs == 3 and stopper.monitor.best_epoch == 1
