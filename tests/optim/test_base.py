"""The optimizer base: state params and their names, the step counter, resuming from saved
state, training a small model, reprs, and the errors bad hyperparameters and bad use get."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import graphc as gx
from graphc import nn, optim

_rng = np.random.default_rng(5)
X = _rng.standard_normal((32, 4))
Y = np.stack([np.sin(X[:, 0]) + X[:, 1] * X[:, 2], np.tanh(X[:, 3])], axis=1)


def mlp(seed: int = 0) -> nn.Sequential:
    return nn.Sequential([nn.Dense(16, "tanh"), nn.Dense(16, "tanh"), nn.Dense(2)], seed=seed,
                         input_shape=(4,), dtype="float64")


def train_step(model: nn.Sequential, opt: optim.Optimizer):
    x, y = gx.input("x", ("batch", 4), "float64"), gx.input("y", ("batch", 2), "float64")
    loss = gx.mean(gx.square(model(x) - y))
    return gx.compile([x, y], loss, updates=opt.minimize(loss, model.params()))


# -- training ------------------------------------------------------------------------------------

TRAINERS = [
    lambda: optim.SGD(0.1),
    lambda: optim.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: optim.Adagrad(0.1),
    lambda: optim.RMSprop(0.01),
    lambda: optim.AdaDelta(1.0),
    lambda: optim.Adam(0.01),
    lambda: optim.AdamW(0.01, amsgrad=True),
    lambda: optim.Nadam(0.01),
    lambda: optim.Adam(optim.schedules.cosine(0.02, total_steps=40), clip_norm=1.0,
                       weight_decay=1e-3, max_norm=3.0),
]


@pytest.mark.parametrize("make", TRAINERS, ids=lambda make: repr(make()))
def test_training_lowers_the_loss(make):
    model = mlp()
    step = train_step(model, make())
    first = float(step(X, Y))
    losses = [float(step(X, Y)) for _ in range(40)]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * first, (first, losses[-1])


# -- state ---------------------------------------------------------------------------------------

def test_state_params_are_named_by_optimizer_slot_and_param():
    model = mlp()
    opt = optim.Adam(amsgrad=True)
    train_step(model, opt)
    names = [f"dense{suffix}/{p}" for suffix in ("", "_1", "_2") for p in ("W", "b")]
    assert set(opt.state) == {"step"} | {f"{slot}/{n}" for slot in ("m", "v", "v_max")
                                         for n in names}
    assert opt.state["m/dense_1/W"].name == "adam/m/dense_1/W"
    assert opt.state["m/dense_1/W"].shape == (16, 16)
    assert opt.step is opt.state["step"] and opt.step.name == "adam/step"
    assert opt.step.dtype == "int64"
    renamed = optim.SGD(0.1, momentum=0.5, name="inner")
    train_step(mlp(), renamed)
    assert renamed.state["momentum/dense/b"].name == "inner/momentum/dense/b"


def test_nadam_keeps_one_mu_product_for_all_params():
    opt = optim.Nadam()
    step = train_step(mlp(), opt)
    step(X, Y)
    step(X, Y)
    mus = [0.9 * (1 - 0.5 * 0.96 ** (k * 4e-3)) for k in (1, 2)]
    np.testing.assert_allclose(opt.state["mu_product"].value, mus[0] * mus[1], rtol=1e-15)
    assert opt.mu_product.dtype == "float64"


def test_the_step_counter_counts_calls():
    opt = optim.SGD(0.1)
    step = train_step(mlp(), opt)
    for _ in range(3):
        step(X, Y)
    assert opt.step.value == 3


def test_plain_sgd_has_no_slots():
    opt = optim.SGD(0.1)
    train_step(mlp(), opt)
    assert list(opt.state) == ["step"]


def test_a_copy_shares_the_state_made_so_far_and_makes_its_own_slots():
    first, second = mlp(), nn.Sequential([nn.Dense(2, name="other")], input_shape=(4,),
                                         dtype="float64")
    opt = optim.Adam(0.01)
    train_step(first, opt)
    twin = copy.copy(opt)
    assert twin.state == opt.state and twin.lr == opt.lr and twin.betas == opt.betas
    train_step(second, twin)  # slots for other/W, other/b: the copy's alone
    assert set(twin.state) - set(opt.state) == {"m/other/W", "v/other/W", "m/other/b",
                                                "v/other/b"}
    assert twin.step is opt.step


def test_training_resumes_from_saved_state():
    """Checkpoints save ``opt.state`` (with the step counter): restoring it into a fresh
    optimizer and model continues exactly where the first left off."""
    model, opt = mlp(), optim.Nadam(0.01)
    step = train_step(model, opt)
    for _ in range(3):
        step(X, Y)
    saved = {k: p.value.copy() for k, p in opt.state.items()}
    saved_params = {n: p.value.copy() for n, p in model.named_params().items()}
    for _ in range(3):
        step(X, Y)

    model2, opt2 = mlp(seed=9), optim.Nadam(0.01)
    step2 = train_step(model2, opt2)
    for name, p in model2.named_params().items():
        p.value = saved_params[name]
    for key, p in opt2.state.items():
        p.value = saved[key]
    for _ in range(3):
        step2(X, Y)
    for name, p in model2.named_params().items():
        np.testing.assert_array_equal(p.value, model.named_params()[name].value, err_msg=name)


def test_apply_takes_gradients_computed_elsewhere():
    W = gx.param("W", np.array([1.0, -2.0]))
    opt = optim.SGD(0.5)
    gx.compile([], gx.sum(W), updates=opt.apply({W: gx.constant(np.array([2.0, 4.0]))}))()
    np.testing.assert_array_equal(W.value, [0.0, -4.0])


def test_an_update_of_a_float32_model_stays_float32():
    model = nn.Sequential([nn.Dense(3)], input_shape=(4,))
    x = gx.input("x", ("batch", 4), "float32")
    loss = gx.mean(gx.square(model(x)))
    updates = optim.Nadam(clip_norm=1.0, max_norm=2.0).minimize(loss, model.params())
    for param, value in updates.items():
        assert value.dtype == param.dtype


# -- reprs ---------------------------------------------------------------------------------------

REPRS = [
    (lambda: optim.SGD(), "SGD(lr=0.001)"),
    (lambda: optim.SGD(0.1, momentum=0.9, nesterov=True),
     "SGD(lr=0.1, momentum=0.9, nesterov=True)"),
    (lambda: optim.Adam(), "Adam(lr=0.001)"),
    (lambda: optim.Adam(3e-4, betas=(0.8, 0.99), clip_norm=1.0),
     "Adam(lr=0.0003, betas=(0.8, 0.99), clip_norm=1.0)"),
    (lambda: optim.AdamW(), "AdamW(lr=0.001)"),
    (lambda: optim.AdamW(weight_decay=0.1, decay_bias=True),
     "AdamW(lr=0.001, weight_decay=0.1, decay_bias=True)"),
    (lambda: optim.RMSprop(centered=True, max_norm=3),
     "RMSprop(lr=0.01, centered=True, max_norm=3.0)"),
    (lambda: optim.Nadam(name="nadam2"), "Nadam(lr=0.002, name='nadam2')"),
    (lambda: optim.Adagrad(initial_accumulator_value=0.1, l1=1e-4),
     "Adagrad(lr=0.01, initial_accumulator_value=0.1, l1=0.0001)"),
    (lambda: optim.AdaDelta(), "AdaDelta(lr=1.0)"),
]


@pytest.mark.parametrize("make, text", REPRS, ids=[text for _, text in REPRS])
def test_repr_shows_lr_and_what_differs_from_the_defaults(make, text):
    assert repr(make()) == text


# -- errors --------------------------------------------------------------------------------------

BAD_HYPERPARAMETERS = [
    (lambda: optim.SGD(-0.1), ValueError, r"SGD: lr must be >= 0, got -0.1"),
    (lambda: optim.SGD("fast"), TypeError, r"SGD: lr must be a number, got 'fast'"),
    (lambda: optim.SGD(0.1, momentum=1.0), ValueError, r"SGD: momentum must be in \[0, 1\), "
                                                       r"got 1.0"),
    (lambda: optim.SGD(0.1, nesterov=True), ValueError,
     r"SGD: nesterov=True needs momentum > 0 and dampening = 0"),
    (lambda: optim.SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     r"nesterov=True needs .* got \(0.9, 0.1\)"),
    (lambda: optim.Adagrad(eps=-1e-10), ValueError, r"Adagrad: eps must be >= 0, got -1e-10"),
    (lambda: optim.Adagrad(initial_accumulator_value=-1), ValueError,
     r"Adagrad: initial_accumulator_value must be >= 0, got -1"),
    (lambda: optim.RMSprop(alpha=1.5), ValueError, r"RMSprop: alpha must be in \[0, 1\), got 1.5"),
    (lambda: optim.AdaDelta(rho=-0.1), ValueError, r"AdaDelta: rho must be in \[0, 1\), got -0.1"),
    (lambda: optim.Adam(betas=(0.9, 1.0)), ValueError,
     r"Adam: betas\[1\] must be in \[0, 1\), got 1.0"),
    (lambda: optim.Adam(betas=0.9), TypeError, r"Adam: betas must be a pair \(beta1, beta2\), "
                                               r"got 0.9"),
    (lambda: optim.AdamW(weight_decay=-0.01), ValueError,
     r"AdamW: weight_decay must be >= 0, got -0.01"),
    (lambda: optim.Nadam(momentum_decay=-1), ValueError,
     r"Nadam: momentum_decay must be >= 0, got -1"),
    (lambda: optim.Adam(clip_norm=0), ValueError, r"Adam: clip_norm must be > 0, got 0"),
    (lambda: optim.Adam(clip_value=-1), ValueError, r"Adam: clip_value must be > 0, got -1"),
    (lambda: optim.SGD(max_norm=0.0), ValueError, r"SGD: max_norm must be > 0, got 0.0"),
    (lambda: optim.SGD(l1=-1e-3), ValueError, r"SGD: l1 must be >= 0, got -0.001"),
    (lambda: optim.SGD(weight_decay=float("inf")), ValueError, r"SGD: weight_decay .* got inf"),
    (lambda: optim.SGD(weight_decay=True), TypeError, r"SGD: weight_decay must be a number"),
    (lambda: optim.SGD(name=""), ValueError, r"SGD: name must be a non-empty string"),
]


@pytest.mark.parametrize("make, error, match", BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_name_the_optimizer_and_value(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_two_params_of_one_name_are_refused():
    a, b = gx.param("W", np.ones(2)), gx.param("W", np.ones(2))
    with pytest.raises(ValueError, match=r"Adam: two params are named 'W'"):
        optim.Adam().minimize(gx.sum(a * b), [a, b])


def test_minimize_wants_a_scalar_loss_and_params():
    W = gx.param("W", np.ones(3))
    with pytest.raises(ValueError, match=r"SGD.minimize: the loss must be a scalar, "
                                         r"got shape \(3,\)"):
        optim.SGD().minimize(W * 2.0, [W])
    with pytest.raises(TypeError, match=r"SGD.minimize: params must be gx.param tensors"):
        optim.SGD().minimize(gx.sum(W), [W * 2.0])


def test_integer_params_cannot_be_trained():
    n = gx.param("n", np.array([1, 2]))
    with pytest.raises(TypeError, match=r"SGD: cannot train 'n' of dtype int64"):
        optim.SGD().apply({n: gx.constant(np.array([1, 1]))})


def test_a_gradient_of_the_wrong_shape_is_refused():
    W = gx.param("W", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"SGD: the gradient of 'W' has shape \(3,\), "
                                         r"the param \(2, 3\)"):
        optim.SGD().apply({W: gx.constant(np.ones(3))})
