"""Nine optimizers train the same network from the same initial weights.

The network is a digits MLP, ``Dense(64, relu) → Dense(10)``; every run builds it with
the same seed, so the runs differ only in the update rule (g is the mini-batch gradient):

    SGD        θ ← θ − η·g
    momentum   v ← μ·v + g,  θ ← θ − η·v                   (a heavy ball: steady descent)
    Nesterov   the momentum step, with the gradient taken after the look-ahead θ − η·μ·v
    Adagrad    r ← r + g²,  θ ← θ − η·g/(√r + ε)            (per weight; steps only shrink)
    RMSprop    r ← ρ·r + (1 − ρ)·g²,  θ ← θ − η·g/(√r + ε)   (forgets old gradients)
    Adam       RMSprop on the running mean m of g, both bias-corrected
    AdaDelta   RMSprop whose step is in the units of θ: √(running mean of Δθ²)/√(r + ε)
    Nadam      Adam with Nesterov's look-ahead on m
    AdamW      Adam with weight decay applied to θ directly, outside the adaptive step

Each optimizer compiles into the training step: its state (velocities, moments, the
step count) are params updated by the same compiled call as the weights. The table gives
each run's final training loss and test accuracy; the smoothed loss curves are plotted
into $GRAPHC_OUT (default ``out/``) when matplotlib is installed. Set GRAPHC_QUICK=1 for
a quick run (fewer epochs).
"""

import os
import time
from collections.abc import Callable
from pathlib import Path

import graphc as gx
from graphc import nn, optim
from graphc.train import History

QUICK = os.environ.get("GRAPHC_QUICK") == "1"
EPOCHS = 3 if QUICK else 30

#: each optimizer with a learning rate in its usual range: η = 0.05 for the plain and
#: accumulated steps, 3e-3 for the normalized (RMS) ones; AdaDelta's η = 1 is its own
OPTIMIZERS: dict[str, Callable[[], optim.Optimizer]] = {
    "SGD": lambda: optim.SGD(0.05),
    "momentum": lambda: optim.SGD(0.05, momentum=0.9),
    "Nesterov": lambda: optim.SGD(0.05, momentum=0.9, nesterov=True),
    "Adagrad": lambda: optim.Adagrad(0.05),
    "RMSprop": lambda: optim.RMSprop(3e-3),
    "Adam": lambda: optim.Adam(3e-3),
    "AdaDelta": lambda: optim.AdaDelta(1.0),
    "Nadam": lambda: optim.Nadam(3e-3),
    "AdamW": lambda: optim.AdamW(3e-3, weight_decay=1e-2),
}


def plot(histories: dict[str, History], path: Path) -> Path | None:
    """The smoothed training loss of every run against epochs (log scale); ``None`` when
    matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for k, (name, history) in enumerate(histories.items()):
        steps_per_epoch = len(history.smoothed_loss) / history.epochs
        epochs = [(j + 1) / steps_per_epoch for j in range(len(history.smoothed_loss))]
        # styles take turns, so curves that nearly coincide (Adam, Nadam) both show
        ax.plot(epochs, history.smoothed_loss, linestyle=("-", "--", ":")[k % 3], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("the same MLP on the digits, from the same initial weights")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def main() -> None:
    data = gx.data.digits()
    print(f"data: {data.description}")
    print(f"model: Dense(64, relu) -> Dense(10), seed 0; {EPOCHS} epochs of batches of 32")
    print(f"{'optimizer':<10} | final loss | test accuracy | seconds")
    histories = {}
    for name, make in OPTIMIZERS.items():
        model = nn.Sequential([nn.Dense(64, "relu"), nn.Dense(10)], seed=0)
        start = time.perf_counter()
        histories[name] = gx.train.fit(model, data.X_train, data.y_train, optimizer=make(),
                                       epochs=EPOCHS, batch_size=32, progress=False)
        seconds = time.perf_counter() - start
        accuracy = gx.train.evaluate(model, data.X_test, data.y_test)["accuracy"]
        loss = histories[name].history["loss"][-1]
        print(f"{name:<10} | {loss:10.4f} | {accuracy:13.4f} | {seconds:7.1f}")

    path = plot(histories, Path(os.environ.get("GRAPHC_OUT", "out")) / "optimizers.png")
    print(f"drawn: {path}" if path else "(matplotlib is not installed: no plot)")


if __name__ == "__main__":
    main()
