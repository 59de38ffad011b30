"""Binary classification with a sigmoid output and binary cross-entropy: breast tumours.

The lecture's PyTorch example, in graphc:

    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
    loss_fn = nn.BCELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

One output unit p = σ(z) is the probability of class 1 (benign), and the loss is the
negative log-likelihood of a Bernoulli label, −[y·log p + (1 − y)·log(1 − p)]. Its
gradient with respect to z is simply p − y: the sigmoid's derivative p(1 − p) cancels
against the loss's 1/(p(1 − p)), so a confidently wrong output still learns fast (with
the squared error it would not). The 30 features are standardized with the training
part's mean and standard deviation. A tumour is called benign when p > 1/2. graphc's
``Linear`` (``Dense``) takes only the output size: the input size comes from the data.

Prints the test accuracy (about 96%) and the confusion matrix, plots the loss curves
into $GRAPHC_OUT (default ``out/``) when matplotlib is installed. Set GRAPHC_QUICK=1 for
a quick run (fewer epochs).
"""

import os
import time
from pathlib import Path

import numpy as np

import graphc as gx
from graphc import nn, optim

QUICK = os.environ.get("GRAPHC_QUICK") == "1"
EPOCHS = 5 if QUICK else 30


def main() -> None:
    data = gx.data.breast_cancer()
    print(f"data: {data.description}")
    model = nn.Sequential([nn.Linear(16), nn.ReLU(), nn.Linear(1), nn.Sigmoid()],
                          seed=0, input_shape=(30,))
    model.summary()

    start = time.perf_counter()
    history = gx.train.fit(model, data.X_train, data.y_train, loss="binary_cross_entropy",
                           optimizer=optim.Adam(1e-3), epochs=EPOCHS, batch_size=16,
                           progress=not QUICK)
    seconds = time.perf_counter() - start
    print(f"trained {history.epochs} epochs in {seconds:.1f} s: loss "
          f"{history.history['loss'][-1]:.4f}, training accuracy "
          f"{history.history['accuracy'][-1]:.4f}")
    scores = gx.train.evaluate(model, data.X_test, data.y_test, loss="binary_cross_entropy")
    print(f"test loss = {scores['loss']:.4f}")
    print(f"test accuracy = {scores['accuracy']:.4f}")

    predicted = gx.train.predict(model, data.X_test)[:, 0] > 0.5
    print("confusion matrix (rows: true, columns: predicted)")
    print("            malignant  benign")
    for label, name in enumerate(["malignant", "benign"]):
        row = [np.sum((data.y_test == label) & (predicted == guess)) for guess in (False, True)]
        print(f"{name:>9}   {row[0]:9d}  {row[1]:6d}")

    out = Path(os.environ.get("GRAPHC_OUT", "out"))
    try:
        print(f"drawn: {history.plot(out / 'breast_cancer_bce.png')}")
    except ImportError as error:
        print(f"(no plot: {error})")


if __name__ == "__main__":
    main()
