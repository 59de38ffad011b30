"""``graphc.train``: fit a model to data with compiled training steps.

    history = gx.train.fit(model, X, y, loss="cross_entropy", epochs=10, validation=0.1)
    gx.train.evaluate(model, X_test, y_test)        # {"loss": ..., "accuracy": ...}
    gx.train.predict(model, X_test)                  # the model's outputs
    history.plot("loss.png")

The training step (forward, loss, gradients, optimizer and running-statistics updates)
is one graph, built and compiled once per ``fit`` call; evaluation and prediction
functions are compiled once per model and input signature. Bad data is refused before
the first step (``DataError``); a loss that turns NaN or infinite stops training with
the params unchanged by that step (``TrainingError``, naming the first non-finite layer).
"""

from graphc.train.checkpoint import load_checkpoint, save_checkpoint
from graphc.train.early_stopping import EarlyStopping, Monitor
from graphc.train.errors import CheckpointError, DataError, TrainingError
from graphc.train.graphs import default_backend
from graphc.train.history import History
from graphc.train.loop import default_optimizer, evaluate, fit, predict
from graphc.train.losses import LOSSES, Loss, get_loss, get_metrics
from graphc.train.progress import SmoothedLoss, epoch_batches

__all__ = ["fit", "evaluate", "predict", "History", "EarlyStopping", "Monitor",
           "save_checkpoint", "load_checkpoint", "CheckpointError", "DataError",
           "TrainingError", "default_backend", "default_optimizer", "LOSSES", "Loss",
           "get_loss", "get_metrics", "SmoothedLoss", "epoch_batches"]
