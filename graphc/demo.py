"""``graphc demo``: the whole story on real data, in under a minute.

An MLP learns scikit-learn's 8×8 handwritten digits. The demo prints the model's
summary, compiles the training step (timing it and showing what the optimizer did),
trains with a progress bar, reports test accuracy and the speed of the step on every
backend, and writes the forward and backward drawings and the loss curve to a folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import graphc as gx
from graphc import backends, nn, optim


@dataclass(frozen=True)
class DemoResult:
    """What the demo measured and wrote."""

    test_accuracy: float
    compile_seconds: float
    steps_per_second: dict[str, float]
    files: tuple[Path, ...]


def build_model(seed: int = 0) -> nn.Sequential:
    """The digits MLP: 64 → 128 (ReLU, dropout) → 64 (ReLU, dropout) → 10 logits."""
    return nn.Sequential([nn.Dense(128, "relu", kernel_init="he_uniform"), nn.Dropout(0.2),
                          nn.Dense(64, "relu", kernel_init="he_uniform"), nn.Dropout(0.2),
                          nn.Dense(10)],
                         seed=seed, input_shape=(64,), name="digits_mlp")


def run(out: Path, *, epochs: int = 60, batch_size: int = 32, progress: bool = True,
        timing_steps: int = 200, say=print) -> DemoResult:
    """Run the demo, writing into ``out``; ``say`` prints each line of the story."""
    data = gx.data.digits()
    say(f"data: {data.description}")
    model = build_model()
    model.summary(print_fn=say)

    optimizer = optim.Adam(1e-3)
    say(f"\ntraining {epochs} epochs, batch {batch_size}, {optimizer!r}, "
        f"backend {gx.train.default_backend()!r}")
    history = gx.train.fit(model, data.X_train, data.y_train, loss="cross_entropy",
                           optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                           validation=0.1, progress=progress)
    say(f"compiled the training step in {history.compile_seconds:.2f} s; what graphc's graph "
        "optimizer did:")
    say(_indent(str(history.report)))
    scores = gx.train.evaluate(model, data.X_test, data.y_test, loss="cross_entropy")
    say(f"\ntest accuracy: {scores['accuracy']:.4f} on {len(data.y_test)} digits "
        f"(loss {scores['loss']:.4f}); stopped after {history.epochs} epochs")

    speeds = step_speeds(model, data.X_train[:batch_size], data.y_train[:batch_size],
                         steps=timing_steps)
    say(f"\nspeed of one training step (batch {batch_size}):")
    for name, rate in speeds.items():
        say(f"  {name:<28} {rate:9.0f} steps/s")
    if "llvm" not in backends.BACKENDS:
        say("  llvm                         not available in this build")

    files = draw(model, data, out, history)
    say("\nwrote:")
    for path in files:
        say(f"  {path}")
    return DemoResult(scores["accuracy"], history.compile_seconds, speeds, files)


def step_speeds(model: nn.Layer, X: np.ndarray, y: np.ndarray, steps: int) -> dict[str, float]:
    """Training steps per second (forward, backward and an SGD update) of ``model`` on the
    batch ``(X, y)``, compiled for each backend with graphc's optimizer and with
    ``optimize=False``. The params get their values back afterwards."""
    x = gx.input("x", ("batch", *X.shape[1:]), X.dtype.name)
    t = gx.input("y", ("batch",), "int64")
    loss = gx.mean(gx.cross_entropy(model(x, training=True), t))
    params = model.params()
    saved = [p.value.copy() for p in params]
    speeds = {}
    try:
        for backend in backends.BACKENDS:
            for level, label in ((3, "optimized"), (0, "optimize=False")):
                sgd = optim.SGD(1e-9)  # a real update, tiny; the params are restored below
                step = gx.compile([x, t], loss, updates=sgd.minimize(loss, params),
                                  backend=backend, optimize=level)
                step(X, y)  # warm up: first-call allocations
                start = time.perf_counter()
                for _ in range(steps):
                    step(X, y)
                speeds[f"{backend} ({label})"] = steps / (time.perf_counter() - start)
    finally:
        for p, value in zip(params, saved, strict=True):
            p.value = value
    return speeds


def draw(model: nn.Layer, data, out: Path, history) -> tuple[Path, ...]:
    """The forward graph with values, its backward graph with gradients, the loss curve."""
    from graphc import viz

    x = gx.input("x", ("batch", *data.X_test.shape[1:]), data.X_test.dtype.name)
    t = gx.input("y", ("batch",), "int64")
    loss = gx.mean(gx.cross_entropy(model(x, training=False), t))
    values = {x: data.X_test[:4], t: data.y_test[:4]}
    return (
        viz.save(loss, out / "forward.svg", values=values,
                 title="digits MLP: forward values of 4 test digits"),
        viz.save(loss, out / "backward.svg", values=values, backward=True,
                 title="digits MLP: ∂loss/∂node (red)"),
        history.plot(out / "loss.png"),
    )


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
