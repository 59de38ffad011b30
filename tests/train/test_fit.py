"""fit: it learns, records a faithful History, shuffles reproducibly, compiles once."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gx
from graphc import nn, optim
from graphc.train import graphs
from tests.train.common import Momentum, assert_same_values, mlp, moons, param_values


def test_learns_two_moons():
    d = moons(n=300)
    model = mlp()
    history = gx.train.fit(model, d.X_train, d.y_train, optimizer=optim.SGD(0.3), epochs=20,
                           batch_size=16, progress=False)
    scores = gx.train.evaluate(model, d.X_test, d.y_test)
    assert scores["accuracy"] >= 0.95
    assert history.history["accuracy"][-1] >= 0.95
    assert history.history["loss"][-1] < history.history["loss"][0] / 4


def test_learns_xor():
    d = gx.data.xor()
    model = nn.Sequential([nn.Dense(8, "tanh"), nn.Dense(2)], seed=1)
    gx.train.fit(model, d.X_train, d.y_train, optimizer=Momentum(0.1), epochs=150,
                 batch_size=4, progress=False)
    np.testing.assert_array_equal(np.argmax(gx.train.predict(model, d.X_test), axis=1),
                                  [0, 1, 1, 0])


@pytest.mark.parametrize("loss, activation, target_shape", [
    ("binary_cross_entropy", "sigmoid", (-1,)),      # probabilities, labels (N,)
    ("binary_cross_entropy", "sigmoid", (-1, 1)),    # labels (N, 1)
    ("bce_with_logits", None, (-1,)),                # logits
])
def test_binary_losses_learn(loss, activation, target_shape):
    d = moons(n=300)
    model = mlp(outputs=1, activation=activation)
    gx.train.fit(model, d.X_train, d.y_train.reshape(target_shape), loss=loss,
                 optimizer=optim.SGD(0.3), epochs=20, batch_size=16, progress=False)
    scores = gx.train.evaluate(model, d.X_test, d.y_test, loss=loss)
    assert scores["accuracy"] >= 0.95 and scores.keys() == {"loss", "accuracy"}


def test_mse_regression_on_sine():
    d = gx.data.sine(n=128)
    X_train, X_test = gx.data.standardize(d.X_train, d.X_test)
    model = nn.Sequential([nn.Dense(16, "tanh"), nn.Dense(1)])
    history = gx.train.fit(model, X_train, d.y_train, loss="mse", optimizer=Momentum(0.05),
                           epochs=40, batch_size=16, metrics=["mae"], progress=False)
    assert history.history.keys() == {"loss", "mae"}
    assert history.history["loss"][-1] < 0.02 < 0.3 < history.history["loss"][0]
    pred = gx.train.predict(model, X_test)
    assert np.mean((pred - d.y_test) ** 2) < 0.02


def test_callable_loss_matches_the_named_one():
    d = moons(n=100)
    runs = []
    for loss in ("cross_entropy", lambda pred, t: gx.mean(gx.cross_entropy(pred, t))):
        model = mlp()
        history = gx.train.fit(model, d.X_train, d.y_train, loss=loss, optimizer=optim.SGD(0.1),
                               epochs=2, metrics=[], progress=False)
        runs.append((history.step_loss, param_values(model)))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-6)
    for name, value in runs[0][1].items():
        np.testing.assert_allclose(value, runs[1][1][name], rtol=1e-5, atol=1e-6)


def test_history_contents():
    d = moons(n=100)
    epochs, batch_size = 4, 24
    history = gx.train.fit(mlp(), d.X_train, d.y_train, optimizer=optim.SGD(0.2),
                           epochs=epochs, batch_size=batch_size, validation=(d.X_test, d.y_test),
                           progress=False)
    assert history.history.keys() == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == epochs for v in history.history.values())
    steps = epochs * math.ceil(len(d.X_train) / batch_size)  # 80 rows: 3 full + 1 of 8
    assert len(history.step_loss) == len(history.smoothed_loss) == steps
    assert history.epochs == epochs and not history.stopped_early
    assert history.monitor == "val_loss"
    assert history.best_epoch == 1 + int(np.argmin(history.history["val_loss"]))
    assert history.compile_seconds > 0 and history.steps_per_second > 0
    assert "fuse" in str(history.report)
    # the epoch loss is the batch-size-weighted mean of its steps' losses
    first = history.step_loss[:4]
    assert history.history["loss"][0] == pytest.approx(
        (sum(first[:3]) * batch_size + first[3] * 8) / 80)


def test_validation_scores_are_those_of_evaluate_after_the_epoch():
    d = moons(n=100)
    model = mlp()
    history = gx.train.fit(model, d.X_train, d.y_train, optimizer=optim.SGD(0.2), epochs=2,
                           validation=(d.X_test, d.y_test), progress=False)
    scores = gx.train.evaluate(model, d.X_test, d.y_test)
    assert history.history["val_loss"][-1] == pytest.approx(scores["loss"])
    assert history.history["val_accuracy"][-1] == scores["accuracy"]


def test_smoothed_loss_follows_the_formula():
    d = moons(n=100)
    lam = 0.3
    history = gx.train.fit(mlp(), d.X_train, d.y_train, optimizer=optim.SGD(0.2), epochs=2,
                           batch_size=10, smoothing=lam, progress=False)
    q = history.step_loss[0]
    expected = []
    for loss in history.step_loss:  # Q ← (1 − λ)Q + λL, starting at the first L
        q = (1 - lam) * q + lam * loss
        expected.append(q)
    np.testing.assert_allclose(history.smoothed_loss, expected, rtol=1e-12)
    assert history.smoothed_loss[0] == history.step_loss[0]


@pytest.mark.parametrize("smoothing", [0.0, 1.5])
def test_smoothing_out_of_range(smoothing):
    d = moons(n=50)
    with pytest.raises(ValueError, match=r"smoothing must be in \(0, 1\]"):
        gx.train.fit(mlp(), d.X_train, d.y_train, smoothing=smoothing, progress=False)


def test_shuffling_is_reproducible_by_seed_and_differs_between_seeds():
    d = moons(n=100)

    def run(seed, shuffle=True):
        history = gx.train.fit(mlp(), d.X_train, d.y_train, optimizer=optim.SGD(0.1), epochs=2,
                               batch_size=10, seed=seed, shuffle=shuffle, progress=False)
        return np.array(history.step_loss)

    np.testing.assert_array_equal(run(0), run(0))
    assert not np.allclose(run(0), run(1))
    np.testing.assert_array_equal(run(0, shuffle=False), run(1, shuffle=False))


def test_validation_fraction_is_held_out_stratified():
    d = moons(n=200)  # 160 training rows, 80 per class
    model = mlp()
    history = gx.train.fit(model, d.X_train, d.y_train, optimizer=optim.SGD(0.1), epochs=1,
                           batch_size=8, validation=0.25, progress=False)
    assert len(history.step_loss) == 120 // 8  # 40 of 160 rows held out
    assert "val_accuracy" in history.history
    # the held-out rows are those of sklearn's stratified split with the same seed
    from sklearn.model_selection import train_test_split
    _, X_val, _, y_val = train_test_split(d.X_train, d.y_train, test_size=0.25, random_state=0,
                                          stratify=d.y_train)
    assert np.bincount(y_val).tolist() == [20, 20]
    assert history.history["val_loss"][0] == pytest.approx(
        gx.train.evaluate(model, X_val, y_val)["loss"])


def test_compiles_the_step_once_and_validation_once(monkeypatch):
    d = moons(n=100)
    model = mlp()
    calls = []
    compile_ = gx.compile
    monkeypatch.setattr(gx, "compile", lambda *a, **k: calls.append(1) or compile_(*a, **k))
    gx.train.fit(model, d.X_train, d.y_train, optimizer=optim.SGD(0.1), epochs=3,
                 validation=(d.X_test, d.y_test), progress=False)
    assert len(calls) == 2  # the training step and the validation function
    gx.train.evaluate(model, d.X_test, d.y_test)  # same signature: the cached function
    assert len(calls) == 2


def test_layer_methods_delegate_to_graphc_train():
    d = moons(n=100)
    a, b = mlp(), mlp()
    history = a.fit(d.X_train, d.y_train, optimizer=optim.SGD(0.1), epochs=1, progress=False)
    gx.train.fit(b, d.X_train, d.y_train, optimizer=optim.SGD(0.1), epochs=1, progress=False)
    assert isinstance(history, gx.train.History)
    assert_same_values(param_values(a), param_values(b))
    assert a.evaluate(d.X_test, d.y_test) == gx.train.evaluate(b, d.X_test, d.y_test)
    np.testing.assert_array_equal(a.predict(d.X_test), gx.train.predict(b, d.X_test))


def test_builds_an_unbuilt_model_on_the_data():
    d = moons(n=50)
    model = mlp(inputs=None)
    gx.train.fit(model, d.X_train, d.y_train, epochs=1, progress=False)
    assert model.built and model.layers[0].W.shape == (2, 16)


def test_defaults():
    assert gx.train.default_backend() == ("llvm" if "llvm" in gx.backends.BACKENDS else "numpy")
    expected = "Adam" if hasattr(optim, "Adam") else "SGD"
    assert type(gx.train.default_optimizer()).__name__ == expected
    assert gx.train.default_optimizer().lr == (1e-3 if expected == "Adam" else 0.01)


def test_progress_bar_shows_smoothed_loss_and_validation(capsys):
    d = moons(n=60)
    gx.train.fit(mlp(), d.X_train, d.y_train, optimizer=optim.SGD(0.1), epochs=2,
                 validation=(d.X_test, d.y_test), progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err
    assert "val_loss=" in err and "val_accuracy=" in err and "loss=" in err


@pytest.mark.parametrize("kwargs, error, message", [
    ({"loss": "hinge"}, ValueError, "unknown loss 'hinge'"),
    ({"loss": 3}, TypeError, "loss must be a name or a callable"),
    ({"metrics": ["f1"]}, ValueError, "unknown metric 'f1'"),
    ({"loss": "mse", "metrics": ["accuracy"]}, ValueError, "needs a classification loss"),
    ({"epochs": 0}, ValueError, "epochs must be an int ≥ 1"),
    ({"batch_size": 2.5}, ValueError, "batch_size must be an int ≥ 1"),
    ({"validation": 1.0}, ValueError, "leaves no training or no validation data"),
    ({"validation": "x"}, TypeError, "validation must be"),
    ({"early_stopping": gx.train.EarlyStopping("val_loss")}, ValueError,
     "cannot monitor 'val_loss' \\(it needs validation data\\)"),
    ({"early_stopping": gx.train.EarlyStopping("val_f1"), "validation": 0.2}, ValueError,
     "the logged values are loss, accuracy, val_loss, val_accuracy"),
])
def test_bad_settings(kwargs, error, message):
    d = moons(n=50)
    if kwargs.get("loss") == "mse":
        d = gx.data.sine(n=50)
    model = mlp(outputs=1 if kwargs.get("loss") == "mse" else 2, inputs=None)
    with pytest.raises(error, match=message):
        gx.train.fit(model, d.X_train, d.y_train, progress=False, **kwargs)


def test_evaluation_functions_are_cached_per_model():
    d = moons(n=60)
    model = mlp()
    graph = graphs.inference_graph(model, d.X_test)
    assert graphs.inference_graph(model, d.X_test[:5]) is graph
    first = graphs.predict_fn(model, graph, "numpy")
    assert graphs.predict_fn(model, graph, "numpy") is first
    assert graphs.inference_graph(mlp(), d.X_test) is not graph


class RunningMean(nn.Layer):
    """Passes its input on and tracks m ← (m + mean of the batch) / 2 as non-trainable
    state, updated by the training step (as batch norm's running statistics are)."""

    def build(self, input_type):
        self.running = self.add_param("running", (input_type.shape[-1],), trainable=False)

    def forward(self, x, training):
        if training:
            nn.register_state_updates(x, {self.running: 0.5 * self.running
                                          + 0.5 * gx.mean(x, axis=0)})
        return x


def test_state_updates_run_with_each_step():
    d = moons(n=50)  # 40 training rows: batches of 16, 16, 8
    model = nn.Sequential([RunningMean(), nn.Dense(2)], input_shape=(2,))
    gx.train.fit(model, d.X_train, d.y_train, optimizer=optim.SGD(0.1), epochs=1,
                 batch_size=16, shuffle=False, progress=False)
    expected = np.zeros(2)
    for start in (0, 16, 32):
        expected = 0.5 * expected + 0.5 * d.X_train[start:start + 16].mean(axis=0)
    np.testing.assert_allclose(model.layers[0].running.value, expected, rtol=1e-5)
    assert "running_mean/running" in model.named_params()


@pytest.mark.skipif(not all(hasattr(nn, n) for n in ("Conv2d", "BatchNorm2d", "Dropout")),
                    reason="the convolution, batch norm and dropout layers are not in graphc.nn")
def test_trains_a_small_cnn_with_batch_norm_and_dropout():
    d = gx.data.digits(images=True)
    model = nn.Sequential([nn.Conv2d(4, 3, padding=1), nn.BatchNorm2d(), nn.ReLU(),
                           nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25), nn.Dense(10)])
    gx.train.fit(model, d.X_train[:400], d.y_train[:400], optimizer=optim.SGD(0.1), epochs=4,
                 progress=False)
    assert gx.train.evaluate(model, d.X_test, d.y_test)["accuracy"] >= 0.7
    running = model.named_params()["batch_norm/running_mean"].value
    assert np.abs(running).min() > 0  # the training steps updated the running statistics
    # inference mode uses no dropout: the same input gives the same output
    np.testing.assert_array_equal(gx.train.predict(model, d.X_test[:8]),
                                  gx.train.predict(model, d.X_test[:8]))
