"""A multilayer perceptron on the 8×8 digits: ReLU hidden layers, dropout, Adam.

Two hidden layers of rectified linear units, h = max(0, xW + b), learn features of the
pixels that the softmax output layer then separates linearly; the linear classifier
(``digits_linear.py``) has only the pixels themselves. Dropout zeroes each hidden unit
with probability p during training (and scales the survivors by 1/(1 − p)), so no unit
can rely on another being there: an ensemble of thinned networks, averaged at test time
by using the whole network. Adam adapts each weight's step to the running mean and
variance of its gradient. Dropout is the regularizer here, so the network trains on all
1,437 training digits for a fixed number of epochs; the test digits are used once, at
the end.

Prints the model summary and the test accuracy (about 98%), plots the loss curves into
$GRAPHC_OUT (default ``out/``) when matplotlib is installed. Set GRAPHC_QUICK=1 for a
quick run (fewer epochs).
"""

import os
import time
from pathlib import Path

import graphc as gx
from graphc import nn, optim

QUICK = os.environ.get("GRAPHC_QUICK") == "1"
EPOCHS = 5 if QUICK else 60


def main() -> None:
    data = gx.data.digits()
    print(f"data: {data.description}")
    model = nn.Sequential([
        nn.Dense(128, "relu", kernel_init="he_uniform"),
        nn.Dropout(0.2),
        nn.Dense(64, "relu", kernel_init="he_uniform"),
        nn.Dropout(0.2),
        nn.Dense(10),
    ], seed=0, input_shape=(64,))
    model.summary()

    start = time.perf_counter()
    history = gx.train.fit(model, data.X_train, data.y_train, loss="cross_entropy",
                           optimizer=optim.Adam(1e-3), epochs=EPOCHS, batch_size=32,
                           progress=not QUICK)
    seconds = time.perf_counter() - start
    print(f"trained {history.epochs} epochs in {seconds:.1f} s: loss "
          f"{history.history['loss'][-1]:.4f}, training accuracy (with dropout) "
          f"{history.history['accuracy'][-1]:.4f}")
    scores = gx.train.evaluate(model, data.X_test, data.y_test)
    print(f"test loss = {scores['loss']:.4f}")
    print(f"test accuracy = {scores['accuracy']:.4f}")

    out = Path(os.environ.get("GRAPHC_OUT", "out"))
    try:
        print(f"drawn: {history.plot(out / 'digits_mlp.png')}")
    except ImportError as error:
        print(f"(no plot: {error})")


if __name__ == "__main__":
    main()
