"""``History``: what a ``fit`` call recorded, and its plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class History:
    """What ``fit`` recorded, epoch by epoch and step by step.

    Epochs are counted from 1.

    Attributes
    ----------
    history : dict of str to list of float
        One value per epoch for each of ``"loss"``, the training metrics
        (``"accuracy"``, ...) and, with validation data, ``"val_loss"``,
        ``"val_accuracy"``, ... Training values average the epoch's steps (weighted by
        batch size), as the params changed; validation values use the params at the
        epoch's end.
    step_loss : list of float
        The loss of every step, as computed.
    smoothed_loss : list of float
        The smoothed loss after every step, Q ← (1 − λ)·Q + λ·L, Q starting at the first L.
    epochs : int
        Epochs run to completion.
    monitor : str
        The value that decides the best epoch (``"val_loss"`` with validation data, else
        ``"loss"``, or the early stopping monitor).
    best_epoch : int or None
        The epoch with the best ``monitor`` value.
    stopped_early : bool
        Did early stopping end training before the last epoch?
    compile_seconds : float
        Time spent building and compiling the training step (and the validation function).
    steps_per_second : float
        Training steps per second of time spent in the compiled step.
    report : object
        The graph optimizer's report on the compiled training step: the passes and the
        rules that fired (``print`` it).
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    step_loss: list[float] = field(default_factory=list)
    smoothed_loss: list[float] = field(default_factory=list)
    epochs: int = 0
    monitor: str = "loss"
    best_epoch: int | None = None
    stopped_early: bool = False
    compile_seconds: float = 0.0
    steps_per_second: float = 0.0
    report: Any = None

    def record_epoch(self, logs: dict[str, float]) -> None:
        """Append one finished epoch's values."""
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))
        self.epochs += 1

    def plot(self, path: str | Path) -> Path:
        """Write a PNG of the loss curves (train, validation, and the smoothed step loss)
        and, when recorded, the accuracy curves; returns the path.

        Raises
        ------
        ImportError
            If matplotlib is not installed (``pip install 'graphc[plot]'``).
        """
        Figure, FigureCanvasAgg = _matplotlib()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        panels = ["loss"] + (["accuracy"] if "accuracy" in self.history
                             or "val_accuracy" in self.history else [])
        figure = Figure(figsize=(5.5 * len(panels), 4), layout="constrained")
        FigureCanvasAgg(figure)  # render with Agg, without touching pyplot's global state
        for k, name in enumerate(panels):
            self._draw_panel(figure.add_subplot(1, len(panels), k + 1), name)
        figure.savefig(path, format="png", dpi=100)
        return path

    def _draw_panel(self, ax: Any, name: str) -> None:
        from matplotlib.ticker import MaxNLocator

        if name == "loss" and self.smoothed_loss and self.epochs:
            steps_per_epoch = len(self.smoothed_loss) / self.epochs
            ax.plot([(k + 1) / steps_per_epoch for k in range(len(self.smoothed_loss))],
                    self.smoothed_loss, color="0.75", linewidth=1, label="train (smoothed, step)")
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            values = self.history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3,
                        label=label)
        if self.best_epoch is not None and name == "loss":
            ax.axvline(self.best_epoch, color="0.5", linestyle=":", label="best epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()


def _matplotlib() -> tuple[Any, Any]:
    try:
        import matplotlib  # noqa: F401 - first, so a missing matplotlib fails here
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("History.plot needs matplotlib, which is not installed: "
                          "pip install matplotlib (or pip install 'graphc[plot]')") from e
    return Figure, FigureCanvasAgg
