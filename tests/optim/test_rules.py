"""Every optimizer and every option against a NumPy implementation written here from the
papers and the torch.optim docs (independent of graphc's code), for 6 steps on a small
least-squares problem, comparing params and optimizer state in float64."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

import graphc as gx
from graphc import optim
from graphc.optim import schedules

STEPS = 6
TOL = dict(rtol=1e-12, atol=1e-14)

# -- the problem: L = ½·mean‖x·W + b − y‖², gradients by hand -----------------------------------

_rng = np.random.default_rng(3)
X = _rng.standard_normal((8, 3))
Y = _rng.standard_normal((8, 2))
INIT = {"lin/W": _rng.standard_normal((3, 2)), "lin/b": _rng.standard_normal(2)}


def numpy_gradients(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    residual = X @ params["lin/W"] + params["lin/b"] - Y
    return {"lin/W": X.T @ residual / len(X), "lin/b": residual.sum(axis=0) / len(X)}


# -- the update rules, from the torch.optim docs' pseudo-code ------------------------------------
# rule(θ, g, state, t, lr, decayed) -> new θ; state holds the param's slots by graphc's
# slot names, created on the first step; t counts from 1.

def sgd(theta, g, state, t, lr, decayed, momentum=0.0, dampening=0.0, nesterov=False):
    if momentum:
        b = g if t == 1 else momentum * state["momentum"] + (1 - dampening) * g
        state["momentum"] = b
        g = g + momentum * b if nesterov else b
    return theta - lr * g


def adagrad(theta, g, state, t, lr, decayed, lr_decay=0.0, eps=1e-10, initial=0.0):
    lr_t = lr / (1 + (t - 1) * lr_decay)
    state["sum"] = state.get("sum", np.full_like(theta, initial)) + g * g
    return theta - lr_t * g / (np.sqrt(state["sum"]) + eps)


def rmsprop(theta, g, state, t, lr, decayed, alpha=0.99, eps=1e-8, momentum=0.0,
            centered=False):
    state["square_avg"] = alpha * state.get("square_avg", 0.0) + (1 - alpha) * g * g
    v = state["square_avg"]
    if centered:
        state["grad_avg"] = alpha * state.get("grad_avg", 0.0) + (1 - alpha) * g
        v = v - state["grad_avg"] ** 2
    if momentum:
        state["momentum"] = momentum * state.get("momentum", 0.0) + g / (np.sqrt(v) + eps)
        return theta - lr * state["momentum"]
    return theta - lr * g / (np.sqrt(v) + eps)


def adadelta(theta, g, state, t, lr, decayed, rho=0.9, eps=1e-6):
    state["square_avg"] = rho * state.get("square_avg", 0.0) + (1 - rho) * g * g
    delta = np.sqrt(state.get("delta_avg", 0.0) + eps) / np.sqrt(state["square_avg"] + eps) * g
    state["delta_avg"] = rho * state.get("delta_avg", 0.0) + (1 - rho) * delta * delta
    return theta - lr * delta


def adam(theta, g, state, t, lr, decayed, betas=(0.9, 0.999), eps=1e-8, amsgrad=False,
         decoupled_decay=0.0):
    b1, b2 = betas
    if decoupled_decay and decayed:  # AdamW: θ ← θ − γλθ before the step
        theta = theta - lr * decoupled_decay * theta
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    m_hat = state["m"] / (1 - b1**t)
    if amsgrad:
        state["v_max"] = np.maximum(state.get("v_max", 0.0), state["v"])
        v_hat = state["v_max"] / (1 - b2**t)
    else:
        v_hat = state["v"] / (1 - b2**t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps)


def nadam(theta, g, state, t, lr, decayed, betas=(0.9, 0.999), eps=1e-8, momentum_decay=4e-3):
    b1, b2 = betas
    mus = [b1 * (1 - 0.5 * 0.96 ** (i * momentum_decay)) for i in range(1, t + 2)]
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    m_hat = (mus[t] * state["m"] / (1 - np.prod(mus[: t + 1]))
             + (1 - mus[t - 1]) * g / (1 - np.prod(mus[:t])))
    v_hat = state["v"] / (1 - b2**t)
    state["mu_product"] = np.prod(mus[:t])
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps)


GLOBAL_STATE = {"mu_product"}  # one for all params, not a per-param slot


def numpy_run(rule: Callable, lr_at: Callable[[int], float], *, clip_value=None, clip_norm=None,
              weight_decay=0.0, l1=0.0, decay_bias=False, max_norm=None):
    """``STEPS`` steps of ``rule`` with the options, in the documented order."""
    params = {k: v.copy() for k, v in INIT.items()}
    states: dict[str, dict] = {k: {} for k in params}
    for t in range(1, STEPS + 1):
        grads = numpy_gradients(params)
        if clip_value is not None:
            grads = {k: np.clip(g, -clip_value, clip_value) for k, g in grads.items()}
        if clip_norm is not None:
            total = np.sqrt(sum(np.sum(g * g) for g in grads.values()))
            if total > clip_norm:
                grads = {k: g * clip_norm / total for k, g in grads.items()}
        for k, theta in params.items():
            decayed = theta.ndim >= 2 or decay_bias
            g = grads[k]
            if decayed:
                g = g + weight_decay * theta + l1 * np.sign(theta)
            theta = rule(theta, g, states[k], t, lr_at(t - 1), decayed)
            if max_norm is not None and theta.ndim >= 2:
                norms = np.sqrt(np.sum(theta * theta, axis=0, keepdims=True))
                theta = theta * np.where(norms > max_norm, max_norm / norms, 1.0)
            params[k] = theta
    return params, states


def graphc_run(make: Callable[..., optim.Optimizer], dtype: str = "float64", **options):
    """The same steps with graphc: returns the optimizer and the final param values."""
    x, y = gx.input("x", X.shape, dtype), gx.input("y", Y.shape, dtype)
    W = gx.param("lin/W", INIT["lin/W"].astype(dtype))
    b = gx.param("lin/b", INIT["lin/b"].astype(dtype))
    loss = 0.5 * gx.mean(gx.sum(gx.square(x @ W + b - y), axis=1))
    opt = make(**options)
    step = gx.compile([x, y], loss, updates=opt.minimize(loss, [W, b]))
    for _ in range(STEPS):
        step(X.astype(dtype), Y.astype(dtype))
    return opt, {"lin/W": W.value, "lin/b": b.value}


def assert_same_run(opt: optim.Optimizer, got: dict, want: dict, states: dict) -> None:
    for name in INIT:
        np.testing.assert_allclose(got[name], want[name], **TOL, err_msg=name)
        for slot, value in states[name].items():
            key = slot if slot in GLOBAL_STATE else f"{slot}/{name}"
            np.testing.assert_allclose(opt.state[key].value, value, **TOL, err_msg=key)
    expected_keys = {"step"} | {s if s in GLOBAL_STATE else f"{s}/{name}"
                                for name, st in states.items() for s in st}
    assert set(opt.state) == expected_keys
    assert opt.step.value == STEPS


# -- every rule ----------------------------------------------------------------------------------

#: id, graphc optimizer (taking the options), NumPy rule
RULES = [
    ("sgd", lambda **o: optim.SGD(0.1, **o), partial(sgd)),
    ("sgd_momentum", lambda **o: optim.SGD(0.1, momentum=0.9, **o), partial(sgd, momentum=0.9)),
    ("sgd_dampening", lambda **o: optim.SGD(0.1, momentum=0.8, dampening=0.3, **o),
     partial(sgd, momentum=0.8, dampening=0.3)),
    ("sgd_nesterov", lambda **o: optim.SGD(0.1, momentum=0.9, nesterov=True, **o),
     partial(sgd, momentum=0.9, nesterov=True)),
    ("adagrad", lambda **o: optim.Adagrad(0.1, **o), partial(adagrad)),
    ("adagrad_options", lambda **o: optim.Adagrad(0.1, lr_decay=0.05, eps=1e-6,
                                                  initial_accumulator_value=0.2, **o),
     partial(adagrad, lr_decay=0.05, eps=1e-6, initial=0.2)),
    ("rmsprop", lambda **o: optim.RMSprop(0.01, **o), partial(rmsprop)),
    ("rmsprop_centered_momentum",
     lambda **o: optim.RMSprop(0.01, alpha=0.9, eps=1e-6, momentum=0.5, centered=True, **o),
     partial(rmsprop, alpha=0.9, eps=1e-6, momentum=0.5, centered=True)),
    ("rmsprop_centered", lambda **o: optim.RMSprop(0.01, centered=True, **o),
     partial(rmsprop, centered=True)),
    ("adadelta", lambda **o: optim.AdaDelta(**o), partial(adadelta)),
    ("adadelta_options", lambda **o: optim.AdaDelta(0.5, rho=0.8, eps=1e-4, **o),
     partial(adadelta, rho=0.8, eps=1e-4)),
    ("adam", lambda **o: optim.Adam(0.05, **o), partial(adam)),
    ("adam_amsgrad", lambda **o: optim.Adam(0.05, betas=(0.8, 0.99), eps=1e-6, amsgrad=True,
                                            **o),
     partial(adam, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
    ("adamw", lambda **o: optim.AdamW(0.05, weight_decay=0.2, **o),
     partial(adam, decoupled_decay=0.2)),
    ("nadam", lambda **o: optim.Nadam(0.05, **o), partial(nadam)),
    ("nadam_options", lambda **o: optim.Nadam(0.05, betas=(0.8, 0.9), momentum_decay=0.2, **o),
     partial(nadam, betas=(0.8, 0.9), momentum_decay=0.2)),
]
RULE = {name: (make, rule) for name, make, rule in RULES}


def _lr_of(make: Callable[..., optim.Optimizer]) -> float:
    return make().lr


@pytest.mark.parametrize("name", list(RULE))
def test_rule_matches_numpy(name):
    make, rule = RULE[name]
    lr = _lr_of(make)
    opt, got = graphc_run(make)
    want, states = numpy_run(rule, lambda t: lr)
    assert_same_run(opt, got, want, states)


# -- the options, on top of a few rules ----------------------------------------------------------

#: id, options, rules they are combined with
OPTIONS = [
    ("clip_value", dict(clip_value=0.3), ["sgd_momentum", "adam"]),
    ("clip_norm", dict(clip_norm=0.5), ["sgd", "adam"]),
    ("clip_value_then_norm", dict(clip_value=0.3, clip_norm=0.4), ["sgd_momentum"]),
    ("weight_decay", dict(weight_decay=0.1), ["sgd_nesterov", "adam", "rmsprop"]),
    ("weight_decay_with_bias", dict(weight_decay=0.1, decay_bias=True), ["sgd", "adagrad"]),
    ("decoupled_with_bias", dict(decay_bias=True), ["adamw"]),
    ("l1", dict(l1=0.05), ["sgd", "adadelta"]),
    ("l1_and_l2_with_bias", dict(l1=0.05, weight_decay=0.1, decay_bias=True), ["nadam"]),
    ("max_norm", dict(max_norm=0.8), ["sgd_momentum", "adam"]),
    ("everything", dict(clip_value=0.3, clip_norm=0.5, weight_decay=0.1, l1=0.02,
                        max_norm=0.9), ["sgd_momentum", "nadam"]),
    # AdamW's own weight_decay is the decoupled one (0.2 in RULES)
    ("everything_decoupled", dict(clip_value=0.3, clip_norm=0.5, l1=0.02, max_norm=0.9,
                                  decay_bias=True), ["adamw"]),
]


@pytest.mark.parametrize("options, rule_name", [
    pytest.param(options, rule, id=f"{name}-{rule}")
    for name, options, rules in OPTIONS for rule in rules])
def test_options_match_numpy(options, rule_name):
    make, rule = RULE[rule_name]
    lr = _lr_of(make)
    opt, got = graphc_run(make, **options)
    want, states = numpy_run(rule, lambda t: lr, **options)
    assert_same_run(opt, got, want, states)


def test_the_options_change_the_result():
    """Each option of the table above is active at this scale (none is a no-op here)."""
    _, plain = graphc_run(RULE["sgd_momentum"][0])
    for name, options, _ in OPTIONS:
        if name.startswith("decoupled"):
            continue
        _, got = graphc_run(RULE["sgd_momentum"][0], **options)
        assert not np.allclose(got["lin/W"], plain["lin/W"], rtol=1e-6), name


# -- learning-rate schedules as lr= ---------------------------------------------------------------

SCHEDULES = [
    ("step_decay", schedules.step_decay(0.1, step_size=2, gamma=0.5),
     lambda t: 0.1 * 0.5 ** (t // 2)),
    ("exponential", schedules.exponential(0.1, gamma=0.8), lambda t: 0.1 * 0.8**t),
    ("cosine", schedules.cosine(0.1, total_steps=4, lr_min=0.01),
     lambda t: 0.01 + 0.09 * (1 + np.cos(np.pi * min(t, 4) / 4)) / 2),
    ("warmup", schedules.linear_warmup(0.1, warmup_steps=3, start_factor=0.25),
     lambda t: 0.1 * (0.25 + 0.75 * min(t, 3) / 3)),
]


#: optimizers taking the schedule as lr, with their NumPy rules
SCHEDULED = [
    ("sgd_momentum", lambda lr: optim.SGD(lr, momentum=0.9), partial(sgd, momentum=0.9)),
    ("adamw", lambda lr: optim.AdamW(lr, weight_decay=0.2), partial(adam, decoupled_decay=0.2)),
]


@pytest.mark.parametrize("schedule, lr_at", [pytest.param(s, f, id=n) for n, s, f in SCHEDULES])
@pytest.mark.parametrize("make, rule", [pytest.param(m, r, id=n) for n, m, r in SCHEDULED])
def test_a_schedule_sets_each_steps_rate(schedule, lr_at, make, rule):
    opt, got = graphc_run(lambda: make(schedule))
    want, states = numpy_run(rule, lr_at)
    assert_same_run(opt, got, want, states)


# -- float32 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sgd_dampening", "rmsprop_centered_momentum", "adagrad_options",
                                  "adadelta", "adam_amsgrad", "adamw", "nadam"])
def test_float32_params_stay_float32_and_track_float64(name):
    make, rule = RULE[name]
    lr = _lr_of(make)
    # (AdamW has its own, decoupled, weight decay)
    options = dict(clip_norm=0.5, max_norm=1.0) | ({} if name == "adamw" else
                                                   dict(weight_decay=0.01))
    opt, got = graphc_run(make, dtype="float32", **options)
    want, _ = numpy_run(rule, lambda t: lr, **options)
    for key, p in opt.state.items():
        assert p.dtype == ("int64" if key == "step" else
                           "float64" if key == "mu_product" else "float32"), key
    for k in INIT:
        assert got[k].dtype == np.float32
        np.testing.assert_allclose(got[k], want[k], rtol=2e-5, atol=2e-6)
