"""Per-weight step sizes from running sums of squared gradients: Adagrad, RMSprop,
AdaDelta, in ``torch.optim``'s formulas and defaults."""

from __future__ import annotations

from typing import Any

import graphc as gx
from graphc.optim.base import LearningRate, Optimizer, typed
from graphc.tensor import Param, Tensor


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011): steps shrink with each weight's gradient history.

    ``r ← r + g²``, ``θ ← θ − η_t·g/(√r + ε)`` with ``η_t = η/(1 + (t − 1)·lr_decay)``;
    ``r`` starts at ``initial_accumulator_value``.

    Parameters
    ----------
    lr : float or schedule
        The learning rate η.
    lr_decay : float
        Decay of η with the step count (torch's ``lr_decay``).
    eps : float
        Added to ``√r``.
    initial_accumulator_value : float
        The starting value of ``r``.
    **options
        See ``Optimizer``.
    """

    def __init__(self, lr: LearningRate = 0.01, lr_decay: float = 0.0, eps: float = 1e-10,
                 initial_accumulator_value: float = 0.0, **options: Any) -> None:
        super().__init__(lr, **options)
        self.lr_decay = self._non_negative("lr_decay", lr_decay)
        self.eps = self._non_negative("eps", eps)
        self.initial_accumulator_value = self._non_negative("initial_accumulator_value",
                                                            initial_accumulator_value)

    def update(self, param: Param, grad: Tensor, lr: Tensor | float,
               step: Tensor) -> dict[Param, Tensor]:
        r = self.slot(param, "sum", self.initial_accumulator_value)
        r_new = r + gx.square(grad)
        if self.lr_decay:
            lr = lr / (1.0 + (step - 1.0) * self.lr_decay)
        return {r: r_new, param: param - typed(lr, param) * grad / (gx.sqrt(r_new) + self.eps)}


class RMSprop(Optimizer):
    """RMSprop (Hinton 2012): Adagrad with a running mean in place of the sum.

    ``r ← α·r + (1 − α)·g²``; the step divides by ``d = √r + ε``, or when ``centered`` by
    ``d = √(r − ḡ²) + ε`` with the running mean ``ḡ ← α·ḡ + (1 − α)·g`` (Graves 2013).
    Without momentum ``θ ← θ − η·g/d``; with momentum μ, ``b ← μ·b + g/d`` and
    ``θ ← θ − η·b``.

    Parameters
    ----------
    lr : float or schedule
        The learning rate η.
    alpha : float
        α, the decay of the running means, in [0, 1).
    eps : float
        Added to the root.
    momentum : float
        μ in [0, 1).
    centered : bool
        Divide by the running variance instead of the running second moment.
    **options
        See ``Optimizer``.
    """

    def __init__(self, lr: LearningRate = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, centered: bool = False, **options: Any) -> None:
        super().__init__(lr, **options)
        self.alpha = self._fraction("alpha", alpha)
        self.eps = self._non_negative("eps", eps)
        self.momentum = self._fraction("momentum", momentum)
        self.centered = bool(centered)

    def update(self, param: Param, grad: Tensor, lr: Tensor | float,
               step: Tensor) -> dict[Param, Tensor]:
        a = self.alpha
        r = self.slot(param, "square_avg")
        r_new = a * r + (1 - a) * gx.square(grad)
        new: dict[Param, Tensor] = {r: r_new}
        if self.centered:
            mean = self.slot(param, "grad_avg")
            new[mean] = a * mean + (1 - a) * grad
            denominator = gx.sqrt(r_new - gx.square(new[mean])) + self.eps
        else:
            denominator = gx.sqrt(r_new) + self.eps
        lr = typed(lr, param)
        if self.momentum:
            b = self.slot(param, "momentum")
            new[b] = self.momentum * b + grad / denominator
            new[param] = param - lr * new[b]
        else:
            new[param] = param - lr * grad / denominator
        return new


class AdaDelta(Optimizer):
    """AdaDelta (Zeiler 2012): RMSprop whose step has the units of θ.

    ``r ← ρ·r + (1 − ρ)·g²``, ``Δ = √(u + ε)/√(r + ε)·g``, ``u ← ρ·u + (1 − ρ)·Δ²``,
    ``θ ← θ − η·Δ`` (η = 1 is the paper's rule).

    Parameters
    ----------
    lr : float or schedule
        η, scaling the step Δ.
    rho : float
        ρ, the decay of both running means, in [0, 1).
    eps : float
        Inside both roots.
    **options
        See ``Optimizer``.
    """

    def __init__(self, lr: LearningRate = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 **options: Any) -> None:
        super().__init__(lr, **options)
        self.rho = self._fraction("rho", rho)
        self.eps = self._non_negative("eps", eps)

    def update(self, param: Param, grad: Tensor, lr: Tensor | float,
               step: Tensor) -> dict[Param, Tensor]:
        rho, eps = self.rho, self.eps
        r, u = self.slot(param, "square_avg"), self.slot(param, "delta_avg")
        r_new = rho * r + (1 - rho) * gx.square(grad)
        delta = gx.sqrt(u + eps) / gx.sqrt(r_new + eps) * grad
        return {r: r_new, u: rho * u + (1 - rho) * gx.square(delta),
                param: param - typed(lr, param) * delta}


__all__ = ["Adagrad", "RMSprop", "AdaDelta"]
