"""Mini-batches, the smoothed loss and the per-epoch progress bar."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tqdm.auto import tqdm


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """The example indices of one epoch's mini-batches, in order.

    A fresh permutation is drawn from ``rng`` every call (``None``: no shuffling); the
    last batch holds the remaining ``n mod batch_size`` examples when that is not zero.
    """
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]


class SmoothedLoss:
    """The exponential moving average Q ← (1 − λ)·Q + λ·L of the step losses L,
    starting at the first L (so there is no bias towards 0 to correct).

    Parameters
    ----------
    smoothing : float
        λ in (0, 1]; 1 gives the raw losses.
    """

    def __init__(self, smoothing: float) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing!r}")
        self.smoothing = float(smoothing)
        self.value: float | None = None

    def update(self, loss: float) -> float:
        """Fold in one step's loss; return the new smoothed value."""
        lam = self.smoothing
        self.value = loss if self.value is None else (1.0 - lam) * self.value + lam * loss
        return self.value


def epoch_bar(epoch: int, epochs: int, steps: int, enabled: bool) -> tqdm:
    """The bar of one epoch: ``steps`` mini-batches, kept on screen when done."""
    width = len(str(epochs))
    return tqdm(total=steps, desc=f"epoch {epoch:>{width}}/{epochs}", unit="step",
                disable=not enabled, leave=True, dynamic_ncols=True)


def postfix(logs: Mapping[str, float]) -> dict[str, str]:
    """Numbers for a bar's postfix, four significant digits each."""
    return {name: f"{value:.4g}" for name, value in logs.items()}
