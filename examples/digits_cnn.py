"""A small convolutional network on the 8×8 digits, as images of shape (N, 1, 8, 8).

A convolution slides the same small filter (3×3 here) over every position of the
image, so a stroke is detected wherever it is, with 9 weights per input channel instead
of a weight per pixel pair. Max pooling keeps the strongest response in each 2×2 window:
the map shrinks and small shifts stop mattering. Batch normalization standardizes each
channel over the mini-batch, (x − μ_B)/√(σ²_B + ε), then scales and shifts it by learned
γ and β; at test time it uses running averages of μ and σ² instead. He initialization,
W ~ N(0, 2/fan_in), keeps the variance of ReLU activations constant from layer to layer.

    conv 3×3, 16 → batch norm → ReLU → max pool 2×2      (16, 4, 4)
    conv 3×3, 32 → batch norm → ReLU → max pool 2×2      (32, 2, 2)
    flatten → dense 10 (softmax in the loss)

Prints the model summary and the test accuracy (about 98–99%), plots the loss curves
into $GRAPHC_OUT (default ``out/``) when matplotlib is installed. Set GRAPHC_QUICK=1 for
a quick run (fewer epochs).
"""

import os
import time
from pathlib import Path

import graphc as gx
from graphc import nn, optim

QUICK = os.environ.get("GRAPHC_QUICK") == "1"
EPOCHS = 3 if QUICK else 30


def conv_block(channels: int) -> list[nn.Layer]:
    """3×3 convolution (same size), batch norm, ReLU, 2×2 max pooling."""
    return [nn.Conv2d(channels, 3, padding=1, use_bias=False, kernel_init="he_normal"),
            nn.BatchNorm(), nn.ReLU(), nn.MaxPool2d(2)]


def main() -> None:
    data = gx.data.digits(images=True)
    print(f"data: {data.description}")
    model = nn.Sequential([*conv_block(16), *conv_block(32), nn.Flatten(), nn.Dense(10)],
                          seed=0, input_shape=(1, 8, 8))
    model.summary()

    start = time.perf_counter()
    history = gx.train.fit(model, data.X_train, data.y_train, loss="cross_entropy",
                           optimizer=optim.Adam(3e-3), epochs=EPOCHS, batch_size=32,
                           validation=0.1, progress=not QUICK,
                           early_stopping=gx.train.EarlyStopping("val_loss", patience=8))
    seconds = time.perf_counter() - start
    print(f"trained {history.epochs} epochs in {seconds:.1f} s (best epoch "
          f"{history.best_epoch}, validation accuracy "
          f"{history.history['val_accuracy'][history.best_epoch - 1]:.4f})")
    scores = gx.train.evaluate(model, data.X_test, data.y_test)
    print(f"test loss = {scores['loss']:.4f}")
    print(f"test accuracy = {scores['accuracy']:.4f}")

    out = Path(os.environ.get("GRAPHC_OUT", "out"))
    try:
        print(f"drawn: {history.plot(out / 'digits_cnn.png')}")
    except ImportError as error:
        print(f"(no plot: {error})")


if __name__ == "__main__":
    main()
