"""Learning-rate schedules: closed forms, torch.optim.lr_scheduler stepped once per
optimizer call, a training run with a schedule against torch, and bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gx
from graphc import optim
from graphc.optim import schedules
from tests.helpers import requires_torch, torch

N = 12
t = np.arange(N)

#: id, schedule, the same rates written out
CLOSED_FORMS = [
    ("constant", schedules.constant(0.3), np.full(N, 0.3)),
    ("step_decay", schedules.step_decay(0.1, step_size=3, gamma=0.5), 0.1 * 0.5 ** (t // 3)),
    ("step_decay_default_gamma", schedules.step_decay(1.0, step_size=5),
     np.array([1.0] * 5 + [0.1] * 5 + [0.01] * 2)),
    ("exponential", schedules.exponential(0.2, gamma=0.9), 0.2 * 0.9**t),
    ("cosine", schedules.cosine(0.1, total_steps=8, lr_min=0.02),
     0.02 + 0.08 * (1 + np.cos(np.pi * np.minimum(t, 8) / 8)) / 2),
    ("warmup_constant", schedules.linear_warmup(0.5, warmup_steps=4),
     0.5 * (1 / 3 + 2 / 3 * np.minimum(t, 4) / 4)),
    ("warmup_cosine", schedules.linear_warmup(schedules.cosine(1.0, 10), 2, start_factor=0.5),
     (1 + np.cos(np.pi * np.minimum(t, 10) / 10)) / 2 * (0.5 + 0.5 * np.minimum(t, 2) / 2)),
]


@pytest.mark.parametrize("schedule, want", [pytest.param(s, w, id=n) for n, s, w in CLOSED_FORMS])
def test_values_match_the_closed_form(schedule, want):
    got = schedule.values(N)
    assert got.dtype == np.float64 and got.shape == (N,)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-17)


def test_cosine_stays_at_lr_min_after_total_steps():
    values = schedules.cosine(0.1, total_steps=4, lr_min=0.01).values(10)
    assert values[0] == 0.1
    np.testing.assert_array_equal(values[4:], 0.01)


def test_a_schedule_takes_numbers_and_int_tensors():
    schedule = schedules.step_decay(1.0, step_size=2, gamma=0.5)
    assert schedule(5).eval({}) == 0.25
    step = gx.input("step", (), "int64")
    assert gx.compile([step], schedule(step))(np.array(4)) == 0.25


def test_reprs_name_the_schedule_and_its_arguments():
    assert repr(schedules.step_decay(0.1, 10, 0.5)) == \
        "StepDecay(lr=0.1, step_size=10, gamma=0.5)"
    assert repr(optim.SGD(schedules.cosine(0.1, 100), momentum=0.9)) == \
        "SGD(lr=Cosine(lr=0.1, total_steps=100, lr_min=0.0), momentum=0.9)"
    assert repr(schedules.linear_warmup(0.1, 5)) == \
        f"LinearWarmup(after=Constant(lr=0.1), warmup_steps=5, start_factor={1 / 3!r})"


# -- against torch.optim.lr_scheduler, stepped once per optimizer call ----------------------------

def _torch_rates(make_scheduler, lr: float, steps: int) -> np.ndarray:
    """The lr each of ``steps`` optimizer calls uses: scheduler.step() after every call."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    scheduler = make_scheduler(opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return np.array(rates)


S = torch.optim.lr_scheduler if torch is not None else None
#: id, graphc schedule, torch scheduler of an optimizer, base lr, steps compared
TORCH = [
    ("StepLR", schedules.step_decay(0.1, step_size=3, gamma=0.5),
     lambda o: S.StepLR(o, step_size=3, gamma=0.5), 0.1, N),
    ("ExponentialLR", schedules.exponential(0.1, gamma=0.8),
     lambda o: S.ExponentialLR(o, gamma=0.8), 0.1, N),
    # up to T_max: beyond it torch's cosine climbs back up, ours stays at lr_min
    ("CosineAnnealingLR", schedules.cosine(0.1, total_steps=8, lr_min=0.01),
     lambda o: S.CosineAnnealingLR(o, T_max=8, eta_min=0.01), 0.1, 9),
    ("LinearLR", schedules.linear_warmup(0.1, warmup_steps=4, start_factor=0.25),
     lambda o: S.LinearLR(o, start_factor=0.25, total_iters=4), 0.1, N),
    ("LinearLR_then_ExponentialLR",
     schedules.linear_warmup(schedules.exponential(0.1, 0.9), warmup_steps=3),
     lambda o: S.ChainedScheduler([S.LinearLR(o, total_iters=3), S.ExponentialLR(o, 0.9)]),
     0.1, N),
] if torch is not None else []


@requires_torch
@pytest.mark.parametrize("schedule, make, lr, steps",
                         [pytest.param(*row[1:], id=row[0]) for row in TORCH])
def test_rates_match_torch_schedulers(schedule, make, lr, steps):
    np.testing.assert_allclose(schedule.values(steps), _torch_rates(make, lr, steps),
                               rtol=1e-13, atol=1e-16)


@requires_torch
def test_training_with_a_schedule_matches_torch():
    rng = np.random.default_rng(2)
    X, Y, W0 = rng.standard_normal((8, 3)), rng.standard_normal(8), rng.standard_normal(3)
    x, y = gx.input("x", X.shape, "float64"), gx.input("y", Y.shape, "float64")
    W = gx.param("W", W0)
    loss = gx.mean(gx.square(x @ W - y))
    opt = optim.SGD(schedules.step_decay(0.1, step_size=2, gamma=0.5), momentum=0.9)
    step = gx.compile([x, y], loss, updates=opt.minimize(loss, [W]))
    tw = torch.tensor(W0, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(topt, step_size=2, gamma=0.5)
    for _ in range(7):
        step(X, Y)
        topt.zero_grad()
        ((torch.tensor(X) @ tw - torch.tensor(Y)) ** 2).mean().backward()
        topt.step()
        scheduler.step()
    np.testing.assert_allclose(W.value, tw.detach().numpy(), rtol=1e-12, atol=1e-14)


# -- bad arguments -------------------------------------------------------------------------------

BAD = [
    (lambda: schedules.constant(-0.1), ValueError, r"constant: lr must be >= 0, got -0.1"),
    (lambda: schedules.step_decay(0.1, 0), ValueError,
     r"step_decay: step_size must be a positive int, got 0"),
    (lambda: schedules.step_decay(0.1, 2.5), ValueError, r"step_size .* got 2.5"),
    (lambda: schedules.step_decay(0.1, 2, gamma=-1), ValueError, r"gamma must be >= 0, got -1"),
    (lambda: schedules.exponential(0.1, math.nan), TypeError,
     r"exponential: gamma must be a finite number, got nan"),
    (lambda: schedules.cosine(0.1, total_steps=-5), ValueError, r"cosine: total_steps .* -5"),
    (lambda: schedules.cosine("0.1", 10), TypeError, r"cosine: lr must be a finite number"),
    (lambda: schedules.linear_warmup(0.1, 3, start_factor=0), ValueError,
     r"start_factor must be in \(0, 1\], got 0"),
    (lambda: schedules.linear_warmup("fast", 3), TypeError, r"after must be a finite number"),
]


@pytest.mark.parametrize("make, error, match", BAD)
def test_bad_arguments_are_named(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_a_schedule_must_give_a_scalar():
    W = gx.param("W", np.ones(2))
    opt = optim.SGD(lambda step: gx.full_like(W, 0.1))
    with pytest.raises(ValueError, match=r"SGD: the lr schedule .* must give a numeric scalar, "
                                         r"got float64 of shape \(2,\)"):
        opt.minimize(gx.sum(W), [W])
