"""The best epoch so far (``Monitor``) and stopping when it stops improving
(``EarlyStopping``)."""

from __future__ import annotations

import math

import numpy as np

from graphc.tensor import Param

MODES = ("auto", "min", "max")


class Monitor:
    """Tracks the best value of one logged quantity.

    Parameters
    ----------
    name : str
        A key of the epoch logs (``"val_loss"``, ``"accuracy"``, ...).
    mode : str
        ``"min"``, ``"max"``, or ``"auto"``: max for names containing "acc", else min.
    min_delta : float
        How much better than the best a value must be to count as an improvement.
    """

    def __init__(self, name: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be ≥ 0, got {min_delta!r}")
        self.name = name
        self.mode = mode if mode != "auto" else ("max" if "acc" in name else "min")
        self.min_delta = float(min_delta)
        self.reset()

    def reset(self) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None

    def improves(self, value: float) -> bool:
        """Is ``value`` better than the best by more than ``min_delta``? (NaN never is.)"""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch: int, value: float) -> bool:
        """Record ``epoch``'s value; return whether it is the new best."""
        if not self.improves(value):
            return False
        self.best, self.best_epoch = float(value), epoch
        return True


class EarlyStopping:
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    With ``restore_best``, every param of the model (trainable and state) gets back the
    value it had at the end of the best epoch when training ends, whether it stopped
    early or ran all its epochs. The optimizer's state (moments, step counter) is left as
    it is: it belongs to the last epoch, so training on continues from the restored
    weights with the later optimizer state.

    Parameters
    ----------
    monitor : str
        What to watch: ``"val_loss"``, ``"val_accuracy"``, ``"loss"``, ...
    patience : int
        Epochs without improvement before stopping.
    min_delta : float
        The least change that counts as an improvement.
    mode : str
        ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, min for losses).
    restore_best : bool
        Put back the best epoch's param values at the end of training.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best: bool = True) -> None:
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an int ≥ 1, got {patience!r}")
        self.monitor = Monitor(monitor, mode, min_delta)
        self.patience = patience
        self.restore_best = restore_best
        self.reset()

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor.name!r}, patience={self.patience}, "
                f"mode={self.monitor.mode!r})")

    def reset(self) -> None:
        """Forget earlier runs (``fit`` calls this first)."""
        self.monitor.reset()
        self.wait = 0
        self.stopped_epoch: int | None = None
        self._best_values: dict[Param, np.ndarray] | None = None

    def update(self, epoch: int, value: float, params: list[Param]) -> bool:
        """Record ``epoch``'s monitored value (snapshotting ``params`` when it is the best);
        return whether training should stop."""
        if self.monitor.update(epoch, value):
            self.wait = 0
            if self.restore_best:
                self._best_values = {p: p.value.copy() for p in params}
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def restore(self) -> bool:
        """Put back the best epoch's values (with ``restore_best``); return whether any
        were put back."""
        if not self.restore_best or self._best_values is None:
            return False
        for param, value in self._best_values.items():
            param.value = value
        return True
