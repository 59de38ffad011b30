"""``Optimizer``: from (loss, params, state) to the update graph of one training step.

``opt.minimize(loss, params)`` differentiates ``loss`` and returns ``{param: new value}``
for every param and every piece of optimizer state (moments, the step counter); pass it
to ``gx.compile(..., updates=...)`` and one compiled call computes the loss, the
gradients and the whole step. State lives in params the optimizer owns
(``opt.state``, named ``adam/m/dense/W``), so checkpoints save it like weights.

A subclass writes only its rule, ``update(param, grad, lr, step) -> new value``, asking
for per-param state with ``self.slot(param, "m")``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import graphc as gx
from graphc.tensor import Param, Tensor


class Optimizer:
    """Base class: learning rate (a number or a schedule), state slots, the step counter.

    Parameters
    ----------
    lr : float or callable
        The learning rate, or a schedule ``step -> lr`` built from graph ops
        (``graphc.optim.schedules``); ``step`` counts from 0 at the first call.
    name : str, optional
        Prefix of the state params' names (default: the class name in lower case).
    """

    def __init__(self, lr: float | Any = 0.01, *, name: str | None = None) -> None:
        if not callable(lr) and not float(lr) > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr!r}")
        self.lr = lr
        self.name = name or type(self).__name__.lower()
        #: every state param, by name; filled as slots are asked for
        self.state: dict[str, Param] = {}
        self.step = self._state_param("step", np.array(0, dtype=np.int64))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr!r})"

    # -- what subclasses write ------------------------------------------------------------------
    def update(self, param: Param, grad: Tensor, lr: Tensor, step: Tensor) -> Tensor:
        """The param's new value (``step`` is 1 on the first call, as a float)."""
        raise NotImplementedError

    # -- building the step ----------------------------------------------------------------------
    def minimize(self, loss: Tensor, params: Sequence[Param]) -> dict[Param, Tensor]:
        """Differentiate the scalar ``loss`` and return the update of every param and state."""
        params = list(params)
        return self.apply(dict(zip(params, gx.grad(loss, params), strict=True)))

    def apply(self, grads: Mapping[Param, Tensor]) -> dict[Param, Tensor]:
        """The updates for gradients ``{param: gradient}`` (already computed)."""
        step = gx.cast(self.step, "float64") + 1.0
        updates: dict[Param, Tensor] = {}
        for param, grad in grads.items():
            lr = self._learning_rate(step, param.dtype)
            updates[param] = self.update(param, grad, lr, gx.cast(step, param.dtype))
        updates[self.step] = self.step + 1
        return updates

    def slot(self, param: Param, name: str, init: float = 0.0) -> Param:
        """Per-param state ``name`` (zeros like ``param`` unless ``init``), made once."""
        key = f"{name}/{param.name}"
        if key not in self.state:
            self._state_param(key, np.full(param.shape, init, dtype=param.dtype))
        return self.state[key]

    def _state_param(self, key: str, value: np.ndarray) -> Param:
        self.state[key] = gx.param(f"{self.name}/{key}", value)
        return self.state[key]

    def _learning_rate(self, step: Tensor, dtype: str) -> Tensor | float:
        if not callable(self.lr):
            return float(self.lr)
        return gx.cast(self.lr(step - 1.0), dtype)


class SGD(Optimizer):
    """Plain stochastic gradient descent: θ ← θ − η·g."""

    def update(self, param, grad, lr, step):
        return param - lr * grad
