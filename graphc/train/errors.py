"""The errors of ``graphc.train``: bad data, a diverging run, a checkpoint that does not fit."""

from __future__ import annotations

from typing import Any

from graphc.errors import GraphcError


class DataError(GraphcError, ValueError):
    """Training or evaluation data is unusable (lengths, NaN/inf, labels, feature shape).

    Raised before any training step runs, naming what is wrong, where and the values.
    """


class TrainingError(GraphcError, RuntimeError):
    """The loss became NaN or infinite; training stopped.

    The params keep the values of the last step whose loss was finite.

    Attributes
    ----------
    epoch, step : int
        Where the loss stopped being finite (both counted from 1; ``step`` within the epoch).
    layer : str or None
        The first layer whose params or output were non-finite on that batch, or ``None``
        when every layer was finite (the loss itself overflowed).
    history : History
        What was recorded up to the failing step.
    """

    def __init__(self, message: str, *, epoch: int, step: int, layer: str | None,
                 history: Any = None) -> None:
        super().__init__(message)
        self.epoch, self.step, self.layer, self.history = epoch, step, layer, history


class CheckpointError(GraphcError, ValueError):
    """A checkpoint cannot be read, or does not fit the model or optimizer it is loaded into.

    Nothing is assigned when it is raised.
    """
