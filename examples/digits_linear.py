"""A linear softmax classifier on the 8×8 digits: one ``Dense(10)`` and cross-entropy.

The model is multinomial logistic regression: scores z = xW + b, one per class, turned
into probabilities by the softmax p_k = exp(z_k) / Σⱼ exp(zⱼ), trained on the mean
cross-entropy −log p_y (``gx.cross_entropy`` takes the scores and the integer labels
and computes it stably, as log-sum-exp minus the true score). There is no hidden layer:
every class is one template of 64 pixel weights, and the predicted class is the template
that best matches the image. That already reaches about 96% on held-out digits.

Prints the test accuracy, plots the loss curves and the ten learned templates into
$GRAPHC_OUT (default ``out/``) when matplotlib is installed. Set GRAPHC_QUICK=1 for a
quick run (fewer epochs).
"""

import os
import time
from pathlib import Path

import numpy as np

import graphc as gx
from graphc import nn, optim

QUICK = os.environ.get("GRAPHC_QUICK") == "1"
EPOCHS = 5 if QUICK else 40


def plot_templates(W: np.ndarray, path: Path) -> Path | None:
    """Each class's column of W as an 8×8 image (red: evidence for, blue: against);
    ``None`` when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(10, 1.6), layout="constrained")
    FigureCanvasAgg(figure)
    limit = np.abs(W).max()
    for digit, ax in enumerate(figure.subplots(1, 10)):
        ax.imshow(W[:, digit].reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(str(digit))
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def main() -> None:
    data = gx.data.digits()
    print(f"data: {data.description}")
    model = nn.Sequential([nn.Dense(10)], seed=0, input_shape=(64,))
    model.summary()

    start = time.perf_counter()
    history = gx.train.fit(model, data.X_train, data.y_train, loss="cross_entropy",
                           optimizer=optim.Adam(0.01), epochs=EPOCHS, batch_size=32,
                           validation=0.1, progress=not QUICK)
    seconds = time.perf_counter() - start
    print(f"trained {history.epochs} epochs in {seconds:.1f} s: loss "
          f"{history.history['loss'][-1]:.4f}, validation accuracy "
          f"{history.history['val_accuracy'][-1]:.4f}")
    scores = gx.train.evaluate(model, data.X_test, data.y_test)
    print(f"test loss = {scores['loss']:.4f}")
    print(f"test accuracy = {scores['accuracy']:.4f}")

    out = Path(os.environ.get("GRAPHC_OUT", "out"))
    try:
        print(f"drawn: {history.plot(out / 'digits_linear.png')}")
    except ImportError as error:
        print(f"(no plot: {error})")
    templates = plot_templates(model.layers[0].W.value, out / "digits_linear_templates.png")
    if templates is not None:
        print(f"drawn: {templates}")


if __name__ == "__main__":
    main()
