"""Stochastic gradient descent, with heavy-ball or Nesterov momentum (``torch.optim.SGD``)."""

from __future__ import annotations

from typing import Any

import graphc as gx
from graphc.optim.base import LearningRate, Optimizer, typed
from graphc.tensor import Param, Tensor


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum.

    Without momentum ``θ ← θ − η·g``. With momentum μ the buffer ``v ← μ·v + (1 − d)·g``
    (``v = g`` on the first step, as torch), then ``θ ← θ − η·v``, or with Nesterov's
    look-ahead ``θ ← θ − η·(g + μ·v)`` (Sutskever et al. 2013, in torch's form).

    Parameters
    ----------
    lr : float or schedule
        The learning rate η (torch's default 1e-3).
    momentum : float
        μ in [0, 1); 0 is plain SGD.
    nesterov : bool
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    dampening : float
        d in [0, 1): the buffer takes ``(1 − d)·g`` after the first step.
    **options
        The options every optimizer has (``weight_decay``, ``clip_norm``, ...); see
        ``Optimizer``.
    """

    def __init__(self, lr: LearningRate = 1e-3, momentum: float = 0.0, nesterov: bool = False,
                 dampening: float = 0.0, **options: Any) -> None:
        super().__init__(lr, **options)
        self.momentum = self._fraction("momentum", momentum)
        self.dampening = self._fraction("dampening", dampening)
        self.nesterov = bool(nesterov)
        if self.nesterov:
            self._require(self.momentum > 0 and self.dampening == 0, "nesterov=True",
                          (momentum, dampening), "needs momentum > 0 and dampening = 0 "
                          "(momentum, dampening)")

    def update(self, param: Param, grad: Tensor, lr: Tensor | float,
               step: Tensor) -> dict[Param, Tensor]:
        lr = typed(lr, param)
        if self.momentum == 0:
            return {param: param - lr * grad}
        v = self.slot(param, "momentum")
        if self.dampening:
            # torch starts the buffer at g itself, then adds (1 − d)·g
            grad_share = typed(gx.where(step > 1.0, 1.0 - self.dampening, 1.0), param) * grad
        else:
            grad_share = grad
        v_new = self.momentum * v + grad_share
        direction = grad + self.momentum * v_new if self.nesterov else v_new
        return {v: v_new, param: param - lr * direction}


__all__ = ["SGD"]
