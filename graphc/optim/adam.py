"""Adam and its variants, AdamW and Nadam, in ``torch.optim``'s formulas and defaults.

Step-dependent scalars (bias corrections, Nadam's momentum schedule) are computed in
float64 from the step counter and cast once to the param's dtype, as torch computes
them in Python floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import graphc as gx
from graphc.optim.base import LearningRate, Optimizer, typed
from graphc.tensor import Param, Tensor


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): RMSprop on a running mean of g, both bias-corrected.

    ``m ← β₁·m + (1 − β₁)·g``, ``v ← β₂·v + (1 − β₂)·g²``, and
    ``θ ← θ − η/(1 − β₁ᵗ) · m/(√v/√(1 − β₂ᵗ) + ε)``. With ``amsgrad`` (Reddi et al. 2018)
    ``v`` in the denominator is replaced by its running maximum ``v_max``.

    Parameters
    ----------
    lr : float or schedule
        The learning rate η.
    betas : (float, float)
        β₁, β₂, each in [0, 1).
    eps : float
        Added to the denominator.
    amsgrad : bool
        Divide by the largest ``v`` so far.
    **options
        See ``Optimizer`` (``weight_decay`` here is torch Adam's coupled L2).
    """

    def __init__(self, lr: LearningRate = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, amsgrad: bool = False, **options: Any) -> None:
        super().__init__(lr, **options)
        self.betas = self._betas(betas)
        self.eps = self._non_negative("eps", eps)
        self.amsgrad = bool(amsgrad)

    def update(self, param: Param, grad: Tensor, lr: Tensor | float,
               step: Tensor) -> dict[Param, Tensor]:
        b1, b2 = self.betas
        m, v = self.slot(param, "m"), self.slot(param, "v")
        new: dict[Param, Tensor] = {m: b1 * m + (1 - b1) * grad,
                                    v: b2 * v + (1 - b2) * gx.square(grad)}
        second = new[v]
        if self.amsgrad:
            v_max = self.slot(param, "v_max")
            second = new[v_max] = gx.maximum(v_max, new[v])
        step_size = typed(lr / (1.0 - b1**step), param)
        root_correction = typed(gx.sqrt(1.0 - b2**step), param)
        new[param] = param - step_size * new[m] / (gx.sqrt(second) / root_correction + self.eps)
        return new


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``.

    The Adam step on the plain gradient, and ``θ ← θ − η·λ·θ`` beside it, outside the
    adaptive scaling; like every optimizer here, biases and norm gains are not decayed
    unless ``decay_bias=True`` (torch decays every param of the group).

    Parameters
    ----------
    lr, betas, eps, amsgrad
        As ``Adam``.
    weight_decay : float
        λ, the decoupled decay rate (torch's default 1e-2).
    **options
        See ``Optimizer``.
    """

    decoupled_weight_decay = True

    def __init__(self, lr: LearningRate = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 **options: Any) -> None:
        super().__init__(lr, betas, eps, amsgrad, weight_decay=weight_decay, **options)


class Nadam(Optimizer):
    """Nadam (Dozat 2016): Adam with Nesterov momentum, in ``torch.optim.NAdam``'s form.

    With the momentum schedule ``μ_t = β₁·(1 − ½·0.96^(t·ψ))`` and its running product
    ``Π_t = μ₁⋯μ_t`` (the state ``mu_product``, shared by all params),
    ``m ← β₁·m + (1 − β₁)·g``, ``v ← β₂·v + (1 − β₂)·g²``, ``d = √(v/(1 − β₂ᵗ)) + ε`` and
    ``θ ← θ − η·(1 − μ_t)/(1 − Π_t) · g/d − η·μ_{t+1}/(1 − Π_t·μ_{t+1}) · m/d``.

    Parameters
    ----------
    lr : float or schedule
        The learning rate η (torch's default 2e-3).
    betas : (float, float)
        β₁, β₂, each in [0, 1).
    eps : float
        Added to the denominator.
    momentum_decay : float
        ψ.
    **options
        See ``Optimizer``.
    """

    def __init__(self, lr: LearningRate = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, momentum_decay: float = 4e-3, **options: Any) -> None:
        super().__init__(lr, **options)
        self.betas = self._betas(betas)
        self.eps = self._non_negative("eps", eps)
        self.momentum_decay = self._non_negative("momentum_decay", momentum_decay)
        #: Π_t, the product of the momentum schedule so far (float64, one for all params)
        self.mu_product = self.state_param("mu_product", np.array(1.0))

    def update(self, param: Param, grad: Tensor, lr: Tensor | float,
               step: Tensor) -> dict[Param, Tensor]:
        b1, b2 = self.betas
        psi = self.momentum_decay
        mu = b1 * (1.0 - 0.5 * 0.96 ** (step * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((step + 1.0) * psi))
        product = self.mu_product * mu
        m, v = self.slot(param, "m"), self.slot(param, "v")
        m_new = b1 * m + (1 - b1) * grad
        v_new = b2 * v + (1 - b2) * gx.square(grad)
        denominator = gx.sqrt(v_new / typed(1.0 - b2**step, param)) + self.eps
        grad_share = typed(lr * (1.0 - mu) / (1.0 - product), param)
        momentum_share = typed(lr * mu_next / (1.0 - product * mu_next), param)
        value = param - grad_share * grad / denominator - momentum_share * m_new / denominator
        return {m: m_new, v: v_new, self.mu_product: product, param: value}


__all__ = ["Adam", "AdamW", "Nadam"]
