"""Universal approximation: one hidden layer of sigmoids fits sin(x) on [0, 2π].

Cybenko's theorem: sums f̂(x) = Σⱼ vⱼ·σ(wⱼx + bⱼ) + c of sigmoids are dense in the
continuous functions on a compact set: with enough hidden units, one hidden layer comes
as close to any continuous f as we like. The proof is constructive. A steep sigmoid
σ(s(x − t)) is a step at t; cut [0, 2π] into h pieces of width Δ = 2π/h, put a step at
the left edge tₖ = kΔ of each, as high as f changes from the middle of the piece before
to the middle of this one. The staircase follows f within about |f'|·Δ/2 + the blur of
the steps, so its error falls like 1/h as the units grow.

Gradient descent does far better with the same units: the network
``Dense(h, "sigmoid") → Dense(1)`` trained from random weights on y = sin(x) (mean
squared error, Adam, full batch) places and scales its sigmoids itself. One sigmoid is
one step and cannot follow the wave; two make a bump and a dip; from four units on, the
fit is within a few hundredths, and what is left is how far the optimizer got.

The table gives both networks' largest error and root mean squared error on a fine grid
of [0, 2π]; the fits are plotted into $GRAPHC_OUT (default ``out/``) when matplotlib is
installed. Set GRAPHC_QUICK=1 for a quick run (fewer units and steps).
"""

import os
from pathlib import Path

import numpy as np

import graphc as gx
from graphc import nn, optim

QUICK = os.environ.get("GRAPHC_QUICK") == "1"
HIDDEN_UNITS = (1, 2, 4, 8) if QUICK else (1, 2, 4, 8, 16)
STEPS = 500 if QUICK else 4000
LEARNING_RATE = 0.05
#: a constructed step rises over about 1/STEEPNESS of its piece
STEEPNESS = 10.0
GRID = np.linspace(0.0, 2 * np.pi, 1001, dtype=np.float32).reshape(-1, 1)


class SineNetwork:
    """``Dense(units, sigmoid) → Dense(1)`` on inputs of shape (N, 1), compiled to
    predict."""

    def __init__(self, units: int, seed: int = 0) -> None:
        self.units = units
        self.model = nn.Sequential([nn.Dense(units, "sigmoid"), nn.Dense(1)], seed=seed)
        self.x = gx.input("x", ("batch", 1), "float32")
        self.output = self.model(self.x)
        self.predict = gx.compile([self.x], self.model(self.x, training=False))

    def set_staircase(self) -> None:
        """The proof's weights: a step σ(s(x − tₖ)) at the left edge tₖ of each of the
        ``units`` pieces of [0, 2π], as high as sin changes between the pieces' middles."""
        width = 2 * np.pi / self.units
        edges = width * np.arange(self.units)
        heights = np.diff(np.sin(edges + width / 2), prepend=0.0)
        steepness = STEEPNESS / width
        hidden, output = self.model.layers
        hidden.W.value = np.full((1, self.units), steepness, dtype=np.float32)
        hidden.b.value = (-steepness * edges).astype(np.float32)
        output.W.value = heights.reshape(-1, 1).astype(np.float32)
        output.b.value = np.zeros(1, dtype=np.float32)

    def train(self, X: np.ndarray, y: np.ndarray, steps: int) -> float:
        """Full-batch Adam on the mean squared error; returns the last loss."""
        target = gx.input("target", ("batch", 1), "float32")
        loss = gx.mse(self.output, target, reduction="mean")
        step = gx.compile([self.x, target], loss, updates=optim.Adam(LEARNING_RATE).minimize(
            loss, self.model.params()))
        for _ in range(steps):
            value = step(X, y)
        return float(value)


def errors(fit: np.ndarray) -> tuple[float, float]:
    """max |f̂ − sin| and the RMSE on ``GRID``."""
    error = fit - np.sin(GRID)
    return float(np.abs(error).max()), float(np.sqrt(np.mean(error ** 2)))


def plot(fits: dict[str, dict[int, np.ndarray]], path: Path) -> Path | None:
    """sin(x) and every fit, one panel per way of choosing the weights; ``None`` when
    matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(12, 4), layout="constrained")
    FigureCanvasAgg(figure)
    for ax, (how, curves) in zip(figure.subplots(1, len(fits), sharey=True), fits.items(),
                                 strict=True):
        ax.plot(GRID[:, 0], np.sin(GRID[:, 0]), color="black", linewidth=4, alpha=0.25,
                label="sin(x)")
        for units, fit in curves.items():
            ax.plot(GRID[:, 0], fit[:, 0], label=f"{units} hidden unit{'s' * (units > 1)}")
        ax.set_xlabel("x")
        ax.set_title(f"{how} weights")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def main() -> None:
    data = gx.data.sine(n=256)
    print(f"data: {data.description}")
    print(f"constructed: a staircase of steps, steepness {STEEPNESS:g}/piece width; "
          f"trained: Adam lr {LEARNING_RATE}, {STEPS} full-batch steps from random weights")
    print("errors on 1001 points of [0, 2π]")
    print("hidden units | constructed max |error|   RMSE | trained max |error|   RMSE")
    fits: dict[str, dict[int, np.ndarray]] = {"constructed": {}, "trained": {}}
    for units in HIDDEN_UNITS:
        network = SineNetwork(units)
        network.train(data.X_train, data.y_train, STEPS)
        fits["trained"][units] = network.predict(GRID)
        network.set_staircase()
        fits["constructed"][units] = network.predict(GRID)
        (built_max, built_rmse), (trained_max, trained_rmse) = (
            errors(fits[how][units]) for how in ("constructed", "trained"))
        print(f"{units:12d} | {built_max:23.4f} {built_rmse:6.4f} | "
              f"{trained_max:19.4f} {trained_rmse:6.4f}")

    path = plot(fits, Path(os.environ.get("GRAPHC_OUT", "out")) / "universal_approximation.png")
    print(f"drawn: {path}" if path else "(matplotlib is not installed: no plot)")


if __name__ == "__main__":
    main()
