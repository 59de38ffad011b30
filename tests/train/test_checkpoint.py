"""Checkpoints: round trip of params and optimizer state, resuming, validation before
assignment, damaged files, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest

import graphc as gx
from graphc import nn, optim
from graphc.train import CheckpointError, load_checkpoint, save_checkpoint
from tests.train.common import Momentum, assert_same_values, mlp, moons, param_values


def trained(seed: int = 0, epochs: int = 1) -> tuple[nn.Sequential, Momentum]:
    d = moons(n=80)
    model, optimizer = mlp(seed=seed), Momentum(0.05)
    gx.train.fit(model, d.X_train, d.y_train, optimizer=optimizer, epochs=epochs,
                 progress=False)
    return model, optimizer


def state_values(optimizer: optim.Optimizer) -> dict[str, np.ndarray]:
    return {key: p.value.copy() for key, p in optimizer.state.items()}


def test_round_trip_into_a_fresh_model_and_optimizer(tmp_path):
    model, optimizer = trained()
    path = save_checkpoint(tmp_path / "ck.npz", model, optimizer)
    with np.load(path) as archive:
        assert sorted(archive.files) == sorted(
            ["graphc_checkpoint", "optim/step", *(f"param/{n}" for n in model.named_params()),
             *(f"optim/v/{n}" for n in model.named_params())])
    fresh, fresh_optimizer = mlp(seed=7), Momentum(0.05)  # other weights, no slots yet
    load_checkpoint(path, fresh, fresh_optimizer)
    assert_same_values(param_values(fresh), param_values(model))
    assert_same_values(state_values(fresh_optimizer), state_values(optimizer))
    assert int(fresh_optimizer.step.value) == 2  # 80·0.8 = 64 rows: 2 batches of 32


def test_resumed_training_continues_exactly(tmp_path):
    d = moons(n=80)
    model, optimizer = trained()
    save_checkpoint(tmp_path / "ck.npz", model, optimizer)
    resumed, resumed_optimizer = mlp(seed=3), Momentum(0.05)
    load_checkpoint(tmp_path / "ck.npz", resumed, resumed_optimizer)
    for m, o in ((model, optimizer), (resumed, resumed_optimizer)):
        gx.train.fit(m, d.X_train, d.y_train, optimizer=o, epochs=1, seed=5, progress=False)
    assert_same_values(param_values(resumed), param_values(model))


def test_weights_only(tmp_path):
    model, _ = trained()
    save_checkpoint(tmp_path / "w.npz", model)
    fresh = mlp(seed=5)
    load_checkpoint(tmp_path / "w.npz", fresh)
    assert_same_values(param_values(fresh), param_values(model))
    with pytest.raises(CheckpointError, match="it holds no optimizer state"):
        load_checkpoint(tmp_path / "w.npz", fresh, Momentum())


def test_shape_mismatch_names_the_param_and_both_shapes(tmp_path):
    model, _ = trained()
    save_checkpoint(tmp_path / "ck.npz", model)
    wider = nn.Sequential([nn.Dense(16, "tanh"), nn.Dense(16, "tanh"), nn.Dense(3)],
                          input_shape=(2,))
    before = param_values(wider)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path / "ck.npz", wider)
    message = str(caught.value)
    assert "nothing was loaded" in message
    assert ("param 'dense_2/W': the checkpoint holds shape (16, 2) float32, the model has "
            "shape (16, 3) float32") in message
    assert ("param 'dense_2/b': the checkpoint holds shape (2,) float32, the model has "
            "shape (3,) float32") in message
    assert_same_values(param_values(wider), before)


@pytest.mark.parametrize("model, message", [
    (lambda: nn.Sequential([nn.Dense(16, "tanh"), nn.Dense(2)], input_shape=(2,)),
     "param 'dense_2/W' in the checkpoint is not in the model"),
    (lambda: nn.Sequential([nn.Dense(16, "tanh"), nn.Dense(16, "tanh"), nn.Dense(2),
                            nn.Dense(2)], input_shape=(2,)),
     "param 'dense_3/W' is missing from the checkpoint"),
])
def test_missing_and_extra_params(tmp_path, model, message):
    source, _ = trained()
    save_checkpoint(tmp_path / "ck.npz", source)
    target = model()
    before = param_values(target)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "ck.npz", target)
    assert_same_values(param_values(target), before)


def test_dtype_mismatch(tmp_path):
    model = nn.Sequential([nn.Dense(3)], input_shape=(2,))
    save_checkpoint(tmp_path / "ck.npz", model)
    wide = nn.Sequential([nn.Dense(3)], input_shape=(2,), dtype="float64")
    with pytest.raises(CheckpointError, match=r"param 'dense/W': the checkpoint holds shape "
                                              r"\(2, 3\) float32, the model has shape \(2, 3\) "
                                              r"float64"):
        load_checkpoint(tmp_path / "ck.npz", wide)


@pytest.mark.parametrize("make, problems", [
    # a fresh optimizer of another kind makes its own slots, which the checkpoint lacks
    (lambda: optim.Adam(), ["optimizer state 'm/dense/W' is missing from the checkpoint"]),
    (lambda: optim.SGD(0.1, momentum=0.9),
     ["optimizer state 'momentum/dense/W' is missing from the checkpoint",
      "optimizer state 'v/dense/W' in the checkpoint is not in the optimizer"]),
    (lambda: optim.SGD(0.1), ["optimizer state 'v/dense_2/b' in the checkpoint is not in the "
                              "optimizer"]),
    (lambda: optim.Nadam(), ["optimizer state 'mu_product' is missing from the checkpoint"]),
])
def test_the_state_of_another_optimizer_does_not_fit(tmp_path, make, problems):
    model, optimizer = trained()
    save_checkpoint(tmp_path / "ck.npz", model, optimizer)
    fresh, other = mlp(seed=1), make()
    before, before_keys = param_values(fresh), set(other.state)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path / "ck.npz", fresh, other)
    for problem in problems:
        assert problem in str(caught.value)
    assert_same_values(param_values(fresh), before)
    assert set(other.state) == before_keys  # no slot was made


def test_optimizer_state_mismatch_assigns_nothing(tmp_path):
    model, optimizer = trained()
    save_checkpoint(tmp_path / "ck.npz", model, optimizer)
    narrow, narrow_optimizer = mlp(hidden=8), Momentum(0.05)
    before, before_state = param_values(narrow), state_values(narrow_optimizer)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path / "ck.npz", narrow, narrow_optimizer)
    assert ("param 'dense/W': the checkpoint holds shape (2, 16) float32, the model has shape "
            "(2, 8) float32") in str(caught.value)
    assert ("optimizer state 'v/dense/W': the checkpoint holds shape (2, 16) float32, the "
            "optimizer has shape (2, 8) float32") in str(caught.value)
    assert_same_values(param_values(narrow), before)
    assert_same_values(state_values(narrow_optimizer), before_state)  # no slot was made


def test_loading_into_a_trained_optimizer_reuses_its_slots(tmp_path):
    model, optimizer = trained()
    save_checkpoint(tmp_path / "ck.npz", model, optimizer)
    other_model, other_optimizer = trained(seed=1)
    slots = dict(other_optimizer.state)
    load_checkpoint(tmp_path / "ck.npz", other_model, other_optimizer)
    assert other_optimizer.state == slots  # the same params, now holding the saved values
    assert_same_values(state_values(other_optimizer), state_values(optimizer))


@pytest.mark.parametrize("damage", ["half", "garbage", "single array", "plain npz"])
def test_damaged_files_raise_and_change_nothing(tmp_path, damage):
    model, optimizer = trained()
    path = save_checkpoint(tmp_path / "ck.npz", model, optimizer)
    content = path.read_bytes()
    if damage == "half":
        path.write_bytes(content[:len(content) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all" * 10)
    elif damage == "single array":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    else:
        with open(path, "wb") as f:
            np.savez(f, **{"param/dense/W": np.zeros((2, 16), np.float32)})
    fresh, fresh_optimizer = mlp(seed=9), Momentum()
    before, before_state = param_values(fresh), state_values(fresh_optimizer)
    expected = {"half": "truncated or damaged", "garbage": "truncated or damaged",
                "single array": "a single array, not a checkpoint archive",
                "plain npz": "not a graphc checkpoint"}[damage]
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path, fresh, fresh_optimizer)
    assert_same_values(param_values(fresh), before)
    assert_same_values(state_values(fresh_optimizer), before_state)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nothing.npz", mlp())


def test_writes_atomically(tmp_path, monkeypatch):
    model, optimizer = trained()
    path = save_checkpoint(tmp_path / "ck.npz", model, optimizer)
    assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left beside it
    good = path.read_bytes()

    def failing_savez(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, optimizer)
    assert os.listdir(tmp_path) == ["ck.npz"]
    assert path.read_bytes() == good  # the old checkpoint is intact


def test_fit_writes_last_and_best(tmp_path):
    d = moons(n=80)
    model = mlp()
    stopper = gx.train.EarlyStopping("loss", mode="max", patience=2, restore_best=False)
    history = gx.train.fit(model, d.X_train, d.y_train, optimizer=Momentum(0.05), epochs=5,
                           early_stopping=stopper, checkpoint=tmp_path / "run", progress=False)
    assert sorted(os.listdir(tmp_path / "run")) == ["best.npz", "last.npz"]
    assert history.best_epoch == 1 and history.epochs == 3
    last, best = mlp(seed=4), mlp(seed=4)
    load_checkpoint(tmp_path / "run" / "last.npz", last)
    load_checkpoint(tmp_path / "run" / "best.npz", best)
    assert_same_values(param_values(last), param_values(model))
    first_epoch = mlp()
    gx.train.fit(first_epoch, d.X_train, d.y_train, optimizer=Momentum(0.05), epochs=1,
                 progress=False)
    assert_same_values(param_values(best), param_values(first_epoch))
