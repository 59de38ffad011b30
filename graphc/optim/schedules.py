"""Learning-rate schedules: the learning rate as graph ops of the optimizer's step counter.

A schedule is a callable ``step -> lr`` on a float64 tensor ``t``; pass it as ``lr=``
to any optimizer, which calls it on its step counter, so the compiled training step
computes its own learning rate::

    opt = optim.SGD(lr=schedules.cosine(0.1, total_steps=1000), momentum=0.9)

``t`` counts optimizer steps, that is compiled calls, starting at 0 on the first call:
not epochs. To change the rate every epoch, count in steps (``step_size=epochs ×
batches per epoch``). Each schedule matches a ``torch.optim.lr_scheduler`` stepped once
per optimizer call.

Schedules are elementwise in ``t``: ``schedule.values(n)`` evaluates the first ``n``
rates at once, for plots and tests.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

import graphc as gx
from graphc.tensor import Tensor


class Schedule(ABC):
    """A learning rate as a function of the step ``t`` (0 at the first optimizer call)."""

    @abstractmethod
    def rate(self, t: Tensor) -> Tensor:
        """The learning rate at float64 steps ``t`` (any shape), elementwise."""

    def __call__(self, step: Any) -> Tensor:
        """The learning rate at ``step`` (a tensor or a number), as float64."""
        return self.rate(gx.cast(gx.as_tensor(step), "float64"))

    def values(self, steps: int) -> np.ndarray:
        """The rates of steps ``0, 1, ..., steps − 1``, computed by the graph."""
        t = gx.input("t", (int(steps),), "float64")
        return gx.compile([t], self(t))(np.arange(steps, dtype=np.float64))


def _check(schedule: str, ok: bool, what: str, value: Any, rule: str) -> None:
    if not ok:
        raise ValueError(f"{schedule}: {what} {rule}, got {value!r}")


def _number(schedule: str, what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        raise TypeError(f"{schedule}: {what} must be a finite number, got {value!r}")


def _rate(schedule: str, value: Any, what: str = "lr") -> None:
    _number(schedule, what, value)
    _check(schedule, value >= 0, what, value, "must be >= 0")


def _steps(schedule: str, what: str, value: Any) -> None:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0
    _check(schedule, ok, what, value, "must be a positive int")


@dataclass(frozen=True)
class Constant(Schedule):
    """``lr`` at every step (``torch.optim.lr_scheduler.ConstantLR`` with factor 1)."""

    lr: float

    def __post_init__(self) -> None:
        _rate("constant", self.lr)

    def rate(self, t: Tensor) -> Tensor:
        return gx.full_like(t, self.lr)


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``lr·γ^⌊t/step_size⌋``: multiplied by γ every ``step_size`` steps (``StepLR``)."""

    lr: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _rate("step_decay", self.lr)
        _steps("step_decay", "step_size", self.step_size)
        _rate("step_decay", self.gamma, "gamma")

    def rate(self, t: Tensor) -> Tensor:
        return self.lr * self.gamma ** gx.floor(t / self.step_size)


@dataclass(frozen=True)
class Exponential(Schedule):
    """``lr·γᵗ``: multiplied by γ every step (``ExponentialLR``)."""

    lr: float
    gamma: float

    def __post_init__(self) -> None:
        _rate("exponential", self.lr)
        _rate("exponential", self.gamma, "gamma")

    def rate(self, t: Tensor) -> Tensor:
        return self.lr * self.gamma**t


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from ``lr`` down to ``lr_min`` over ``total_steps``, then ``lr_min``:
    ``lr_min + (lr − lr_min)·(1 + cos(π·min(t, T)/T))/2`` (``CosineAnnealingLR`` with
    ``T_max = T``, up to T; torch's then climbs back, this one stays at ``lr_min``)."""

    lr: float
    total_steps: int
    lr_min: float = 0.0

    def __post_init__(self) -> None:
        _rate("cosine", self.lr)
        _steps("cosine", "total_steps", self.total_steps)
        _rate("cosine", self.lr_min, "lr_min")

    def rate(self, t: Tensor) -> Tensor:
        progress = gx.minimum(t, float(self.total_steps)) / self.total_steps
        return self.lr_min + (self.lr - self.lr_min) * (1.0 + gx.cos(math.pi * progress)) / 2


@dataclass(frozen=True)
class LinearWarmup(Schedule):
    """``after(t)`` scaled by a factor rising linearly from ``start_factor`` at step 0 to 1
    at ``warmup_steps``: ``f = s + (1 − s)·min(t, W)/W`` (torch's ``LinearLR``, chained
    with the schedule ``after``)."""

    after: Schedule
    warmup_steps: int
    start_factor: float = 1 / 3

    def __post_init__(self) -> None:
        if not isinstance(self.after, Schedule):
            raise TypeError(f"linear_warmup: after must be a schedule or a number, "
                            f"got {self.after!r}")
        _steps("linear_warmup", "warmup_steps", self.warmup_steps)
        _number("linear_warmup", "start_factor", self.start_factor)
        _check("linear_warmup", 0 < self.start_factor <= 1, "start_factor", self.start_factor,
               "must be in (0, 1]")

    def rate(self, t: Tensor) -> Tensor:
        s, warm = self.start_factor, float(self.warmup_steps)
        return self.after.rate(t) * (s + (1.0 - s) * gx.minimum(t, warm) / warm)


def constant(lr: float) -> Constant:
    """``lr`` at every step."""
    return Constant(lr)


def step_decay(lr: float, step_size: int, gamma: float = 0.1) -> StepDecay:
    """``lr·γ^⌊t/step_size⌋``, as ``torch.optim.lr_scheduler.StepLR`` stepped per call.

    Parameters
    ----------
    lr : float
        The rate of the first ``step_size`` steps.
    step_size : int
        Steps (optimizer calls, not epochs) between decays.
    gamma : float
        The factor of each decay.
    """
    return StepDecay(lr, step_size, gamma)


def exponential(lr: float, gamma: float) -> Exponential:
    """``lr·γᵗ``, as ``torch.optim.lr_scheduler.ExponentialLR`` stepped per call."""
    return Exponential(lr, gamma)


def cosine(lr: float, total_steps: int, lr_min: float = 0.0) -> Cosine:
    """Cosine annealing from ``lr`` to ``lr_min`` over ``total_steps`` optimizer calls,
    then constant ``lr_min`` (``CosineAnnealingLR(T_max=total_steps, eta_min=lr_min)``)."""
    return Cosine(lr, total_steps, lr_min)


def linear_warmup(after: Schedule | float, warmup_steps: int,
                  start_factor: float = 1 / 3) -> LinearWarmup:
    """Warm up linearly over ``warmup_steps`` from ``start_factor·after(0)`` into the
    schedule (or constant rate) ``after``; torch's ``LinearLR`` (default factor 1/3)."""
    if not isinstance(after, Schedule):
        _rate("linear_warmup", after, "after")
        after = Constant(after)
    return LinearWarmup(after, warmup_steps, start_factor)


__all__ = ["Schedule", "Constant", "StepDecay", "Exponential", "Cosine", "LinearWarmup",
           "constant", "step_decay", "exponential", "cosine", "linear_warmup"]
