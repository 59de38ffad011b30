"""``Optimizer``: from (loss, params, state) to the update graph of one training step.

``opt.minimize(loss, params)`` differentiates ``loss`` and returns ``{param: new value}``
for every param and every piece of optimizer state (moments, the step counter); pass it
to ``gx.compile(..., updates=...)`` and one compiled call computes the loss, the
gradients and the whole step::

    step = gx.compile([x, t], loss, updates=opt.minimize(loss, params))

State lives in params the optimizer owns (``opt.state``, keyed ``m/dense/W`` and named
``adam/m/dense/W``; the step counter is ``opt.step``, key ``step``), so checkpoints save
it like weights.

The base class does everything that is not the update rule, in this order: gradient
clipping by value, then by global norm, then coupled weight decay and L1 (skipping
biases and norm gains unless ``decay_bias``), the rule itself, decoupled weight decay
(AdamW), and max-norm projection. A subclass writes only its rule,
``update(param, grad, lr, step) -> {param: new value, slot: new value, ...}``, asking for
per-param state with ``self.slot(param, "m")``.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

import graphc as gx
from graphc.optim import regularize
from graphc.tensor import Param, Tensor
from graphc.types import FLOAT_DTYPES, INT_DTYPES

#: a learning rate: a number, or a schedule ``step -> lr`` (``graphc.optim.schedules``)
LearningRate = float | Callable[[Tensor], Any]


def typed(value: Tensor | float, like: Tensor) -> Tensor | float:
    """A scalar coefficient in ``like``'s dtype: tensors are cast, Python numbers stay
    weakly typed. Update rules compute step-dependent scalars in float64 and cast once."""
    return gx.cast(value, like.dtype) if isinstance(value, Tensor) else value


class Optimizer:
    """Base class: learning rate (a number or a schedule), gradient transforms, state
    slots, the step counter.

    Parameters
    ----------
    lr : float or callable
        The learning rate, or a schedule ``step -> lr`` built from graph ops
        (``graphc.optim.schedules``); ``step`` counts optimizer steps (compiled calls),
        0 at the first.
    clip_value : float, optional
        Clamp each gradient entry to ``[−clip_value, clip_value]`` first.
    clip_norm : float, optional
        Then rescale all gradients together, ``g ← g·c/‖g‖``, when their global norm
        (over every param) exceeds ``c = clip_norm``.
    weight_decay : float
        L2 penalty ``λ``: ``g ← g + λ·θ`` (coupled, as ``torch.optim``; ``AdamW``'s is
        decoupled, ``θ ← θ − η·λ·θ``).
    l1 : float
        L1 penalty ``λ``: ``g ← g + λ·sign(θ)``.
    decay_bias : bool
        Apply ``weight_decay`` and ``l1`` to params of ndim ≤ 1 (biases, norm gains) too;
        by default only weights (ndim ≥ 2) are decayed.
    max_norm : float, optional
        After the step, project each output unit's incoming weights onto ``‖w‖ ≤ max_norm``
        (weights of ndim ≥ 2 only; axes from ``graphc.nn.init.fan_in_axes``).
    name : str, optional
        Prefix of the state params' names (default: the class name in lower case).
    """

    #: is ``weight_decay`` applied to the weights directly (AdamW) instead of the gradient
    decoupled_weight_decay = False

    def __init__(self, lr: LearningRate = 0.01, *, clip_value: float | None = None,
                 clip_norm: float | None = None, weight_decay: float = 0.0, l1: float = 0.0,
                 decay_bias: bool = False, max_norm: float | None = None,
                 name: str | None = None) -> None:
        self.lr: LearningRate = lr if callable(lr) else self._non_negative("lr", lr)
        self.clip_value = self._positive_or_none("clip_value", clip_value)
        self.clip_norm = self._positive_or_none("clip_norm", clip_norm)
        self.max_norm = self._positive_or_none("max_norm", max_norm)
        self.weight_decay = self._non_negative("weight_decay", weight_decay)
        self.l1 = self._non_negative("l1", l1)
        self.decay_bias = bool(decay_bias)
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, "
                             f"got {name!r}")
        self.name = name or type(self).__name__.lower()
        #: every state param, by key (``step``, ``m/dense/W``); filled as slots are made
        self.state: dict[str, Param] = {}
        self._slot_owners: dict[str, Param] = {}
        #: the number of steps taken (an int64 param, updated by the compiled step)
        self.step = self.state_param("step", np.array(0, dtype=np.int64))

    def __repr__(self) -> str:
        """The class with ``lr`` and every hyperparameter that is not its default."""
        shown = [f"lr={self.lr!r}"]
        for name, default in self._hyperparameter_defaults().items():
            value = getattr(self, name)
            if value != default:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # -- what subclasses write ------------------------------------------------------------------
    def update(self, param: Param, grad: Tensor, lr: Tensor | float,
               step: Tensor) -> dict[Param, Tensor]:
        """The update rule: the new value of ``param`` and of each of its state slots.

        Parameters
        ----------
        param : Param
            The param being updated.
        grad : Tensor
            Its gradient, already clipped and with coupled weight decay added.
        lr : Tensor or float
            This step's learning rate, a float64 scalar (a float when constant).
        step : Tensor
            The step number ``t`` as a float64 scalar: 1 on the first call.

        Returns
        -------
        dict
            ``{param: new value, slot: new value, ...}``; cast step-dependent scalars to
            the param's dtype with ``typed`` so float32 params stay float32.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define update()")

    # -- building the step ----------------------------------------------------------------------
    def minimize(self, loss: Tensor, params: Sequence[Param]) -> dict[Param, Tensor]:
        """Differentiate the scalar ``loss`` and return the update of every param and state.

        Parameters
        ----------
        loss : Tensor
            A scalar.
        params : sequence of Param
            The params to train (``model.params()``).

        Returns
        -------
        dict
            ``{param: new value}`` for the params, their state slots and ``step``: the
            ``updates=`` of ``gx.compile``.
        """
        params = list(dict.fromkeys(params))
        for p in params:
            if not isinstance(p, Param):
                raise TypeError(f"{type(self).__name__}.minimize: params must be gx.param "
                                f"tensors, got {p!r}")
        if loss.shape != ():
            raise ValueError(f"{type(self).__name__}.minimize: the loss must be a scalar, "
                             f"got shape {loss.shape} (reduce it with .mean() or .sum())")
        return self.apply(dict(zip(params, gx.grad(loss, params), strict=True)))

    def apply(self, grads: Mapping[Param, Tensor]) -> dict[Param, Tensor]:
        """The updates for gradients ``{param: gradient}`` (already computed)."""
        grads = self._checked(grads)
        grads = self.transform_gradients(grads)
        taken = gx.cast(self.step, "float64")  # steps taken before this one: 0 at first
        lr = self.learning_rate(taken)
        step = taken + 1.0  # t, as the update rules count: 1 on the first call
        updates: dict[Param, Tensor] = {}
        for param, grad in grads.items():
            new = dict(self.update(param, grad, lr, step))
            value = new[param]
            if self.decoupled_weight_decay and self.weight_decay and self.decays(param):
                # θ ← θ − η·λ·θ beside the step (AdamW; torch scales θ by 1 − η·λ first)
                value = value - typed(lr * self.weight_decay, param) * param
            if self.max_norm is not None and param.ndim >= 2:
                value = regularize.project_max_norm(value, self.max_norm)
            new[param] = value
            updates.update(new)
        updates[self.step] = self.step + 1
        return updates

    def transform_gradients(self, grads: Mapping[Param, Tensor]) -> dict[Param, Tensor]:
        """Clip by value, clip by global norm, add coupled weight decay and L1, in order."""
        grads = dict(grads)
        if self.clip_value is not None:
            grads = {p: regularize.clip_by_value(g, self.clip_value) for p, g in grads.items()}
        if self.clip_norm is not None:
            grads = regularize.clip_by_global_norm(grads, self.clip_norm)
        l2 = 0.0 if self.decoupled_weight_decay else self.weight_decay
        if l2 or self.l1:
            grads = {p: regularize.penalty_gradient(g, p, l2, self.l1) if self.decays(p) else g
                     for p, g in grads.items()}
        return grads

    def decays(self, param: Param) -> bool:
        """Do weight decay and L1 apply to ``param`` (weights yes; biases if ``decay_bias``)."""
        return regularize.is_decayed(param, self.decay_bias)

    def learning_rate(self, t: Tensor) -> Tensor | float:
        """The learning rate at step ``t`` (0 at the first call): ``lr`` itself, or the
        schedule's value as a float64 scalar."""
        if not callable(self.lr):
            return self.lr
        value = gx.as_tensor(self.lr(t))
        if value.shape != () or value.dtype not in FLOAT_DTYPES + INT_DTYPES:
            raise ValueError(f"{type(self).__name__}: the lr schedule {self.lr!r} must give "
                             f"a numeric scalar, got {value.dtype} of shape {value.shape}")
        return gx.cast(value, "float64")

    # -- state ----------------------------------------------------------------------------------
    def slot(self, param: Param, name: str, init: float = 0.0) -> Param:
        """Per-param state ``name`` (``init`` everywhere, like ``param``), made once.

        Its key in ``state`` is ``name/param.name``, so params must have distinct names.
        """
        key = f"{name}/{param.name}"
        owner = self._slot_owners.get(key)
        if owner is None:
            self._slot_owners[key] = param
            self.state_param(key, np.full(param.shape, init, dtype=param.dtype))
        elif owner is not param:
            raise ValueError(f"{type(self).__name__}: two params are named {param.name!r}; "
                             "optimizer state is keyed by param name, so give them distinct "
                             "names (gx.scope or layer names)")
        return self.state[key]

    def state_param(self, key: str, value: np.ndarray) -> Param:
        """A piece of state not tied to one param (the step counter), named ``name/key``."""
        self.state[key] = gx.param(f"{self.name}/{key}", value)
        return self.state[key]

    def __copy__(self) -> Optimizer:
        """The same settings and the state params made so far (shared); slots either one
        makes afterwards are its own (``load_checkpoint`` tries a checkpoint on a copy)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.state, twin._slot_owners = dict(self.state), dict(self._slot_owners)
        return twin

    # -- checking -------------------------------------------------------------------------------
    def _checked(self, grads: Mapping[Param, Tensor]) -> dict[Param, Tensor]:
        checked = {}
        for param, grad in grads.items():
            if not isinstance(param, Param):
                raise TypeError(f"{type(self).__name__}: gradients must be keyed by gx.param "
                                f"tensors, got {param!r}")
            if param.dtype not in FLOAT_DTYPES:
                raise TypeError(f"{type(self).__name__}: cannot train {param.name!r} of "
                                f"dtype {param.dtype}; trainable params are floats")
            grad = gx.as_tensor(grad, param)
            if grad.shape != param.shape:
                raise ValueError(f"{type(self).__name__}: the gradient of {param.name!r} has "
                                 f"shape {grad.shape}, the param {param.shape}")
            checked[param] = gx.cast(grad, param.dtype)
        return checked

    def _require(self, ok: bool, what: str, value: Any, rule: str) -> None:
        """Raise ``ValueError("Adam: eps must be >= 0, got -1")`` unless ``ok``."""
        if not ok:
            raise ValueError(f"{type(self).__name__}: {what} {rule}, got {value!r}")

    def _number(self, what: str, value: Any, rule: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{type(self).__name__}: {what} must be a number, got {value!r}")
        value = float(value)
        self._require(np.isfinite(value), what, value, rule)
        return value

    def _non_negative(self, what: str, value: Any) -> float:
        number = self._number(what, value, "must be >= 0")
        self._require(number >= 0, what, value, "must be >= 0")
        return number

    def _positive_or_none(self, what: str, value: Any) -> float | None:
        if value is None:
            return None
        number = self._number(what, value, "must be > 0")
        self._require(number > 0, what, value, "must be > 0")
        return number

    def _fraction(self, what: str, value: Any) -> float:
        """A decay rate in [0, 1): betas, alpha, rho, momentum."""
        number = self._number(what, value, "must be in [0, 1)")
        self._require(0 <= number < 1, what, value, "must be in [0, 1)")
        return number

    def _betas(self, betas: Any) -> tuple[float, float]:
        """Adam's (β₁, β₂), each in [0, 1)."""
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise TypeError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), "
                            f"got {betas!r}")
        return (self._fraction("betas[0]", betas[0]), self._fraction("betas[1]", betas[1]))

    def _hyperparameter_defaults(self) -> dict[str, Any]:
        """Every constructor argument but ``lr`` with its default, from the signatures of
        the class and of ``Optimizer`` (the options a subclass passes on in ``**options``)."""
        defaults: dict[str, Any] = {}
        for cls in (type(self), Optimizer):
            for p in inspect.signature(cls.__init__).parameters.values():
                if p.name not in ("self", "lr") and p.default is not p.empty:
                    defaults.setdefault(p.name, p.default)
        if defaults.get("name") is None:
            defaults["name"] = type(self).__name__.lower()
        return defaults


__all__ = ["Optimizer", "typed", "LearningRate"]
