"""``fit``, ``evaluate`` and ``predict``: the training loop around compiled graphs.

``fit`` checks the data, builds the training step once (forward, loss, gradients,
optimizer and state updates: one compiled call per mini-batch) and an evaluation
function for the validation data, then runs epochs of shuffled mini-batches with a
progress bar, recording a ``History``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphc import optim
from graphc.compiled import Compiled
from graphc.nn.module import Layer
from graphc.optim import Optimizer
from graphc.tensor import Tensor
from graphc.train import checks, graphs
from graphc.train.checkpoint import save_checkpoint
from graphc.train.diagnose import first_non_finite
from graphc.train.early_stopping import EarlyStopping, Monitor
from graphc.train.errors import TrainingError
from graphc.train.history import History
from graphc.train.losses import Loss, Metric, get_loss, get_metrics
from graphc.train.progress import SmoothedLoss, epoch_bar, epoch_batches, postfix

LossArg = str | Callable[[Tensor, Tensor], Tensor]
MetricsArg = Sequence[str | Metric] | None


def fit(model: Layer, X: np.ndarray, y: np.ndarray, *, loss: LossArg = "cross_entropy",
        optimizer: Optimizer | None = None, epochs: int = 10, batch_size: int = 32,
        validation: tuple[np.ndarray, np.ndarray] | float | None = None,
        metrics: MetricsArg = None, early_stopping: EarlyStopping | None = None,
        checkpoint: str | Path | None = None, seed: int = 0, shuffle: bool = True,
        progress: bool = True, backend: str | None = None,
        smoothing: float = 0.05) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batch gradient descent.

    Parameters
    ----------
    model : Layer
        Built or not (it is built on ``X``'s example shape).
    X, y : np.ndarray
        One example per row; labels as the loss wants them (integer classes for
        cross-entropy, 0/1 for the binary losses, floats for mse).
    loss : str or callable
        ``"cross_entropy"`` (logits, integer labels), ``"binary_cross_entropy"``
        (probabilities, labels 0/1 shaped (N,) or (N, 1)), ``"bce_with_logits"``,
        ``"mse"``, or ``(pred, target) -> Tensor`` per example or scalar. The batch mean
        is minimized.
    optimizer : Optimizer, optional
        Default: ``optim.Adam(1e-3)`` when graphc has Adam, else ``optim.SGD(0.01)``.
    epochs, batch_size : int
        Passes over the data, and examples per step (the last batch takes the rest).
    validation : (X_val, y_val) or float, optional
        Data evaluated after every epoch, or the fraction of ``(X, y)`` to hold out for it
        (stratified by label for classification losses, seeded by ``seed``).
    metrics : sequence of str or callable, optional
        ``"accuracy"``, ``"mse"``, ``"mae"`` or ``(pred, target) -> float``; default
        accuracy for classification losses, none otherwise.
    early_stopping : EarlyStopping, optional
        Stop when its monitored value stops improving (and restore the best weights).
    checkpoint : str or Path, optional
        A folder: ``last.npz`` (params and optimizer state) is written after every
        epoch, ``best.npz`` after every epoch that improves the monitored value.
    seed : int
        Seeds the shuffling (a fresh permutation each epoch from
        ``np.random.default_rng(seed)``) and the validation split.
    shuffle, progress : bool
        Shuffle each epoch; show a progress bar per epoch.
    backend : str, optional
        Default ``default_backend()``.
    smoothing : float
        λ of the smoothed loss Q ← (1 − λ)·Q + λ·L shown in the bar.

    Returns
    -------
    History

    Raises
    ------
    DataError
        Before training, for unusable data (see ``graphc.train.checks``).
    TrainingError
        When a step's loss is NaN or infinite; the params keep the last finite step's
        values, and the error names the epoch, the step and the first non-finite layer.
    """
    _check_settings(epochs, batch_size)
    smoother = SmoothedLoss(smoothing)  # checks λ before anything is compiled
    run = _prepare(model, X, y, loss=get_loss(loss), metrics=metrics, validation=validation,
                   optimizer=optimizer, early_stopping=early_stopping, seed=seed,
                   backend=backend or graphs.default_backend(), smoother=smoother,
                   rng=np.random.default_rng(seed) if shuffle else None,
                   batch_size=batch_size, progress=progress,
                   checkpoint=Path(checkpoint) if checkpoint is not None else None)
    if early_stopping is not None:
        early_stopping.reset()
    for epoch in range(1, epochs + 1):
        logs = _run_epoch(run, epoch, epochs)
        run.history.record_epoch(logs)
        if _end_of_epoch(run, epoch, logs):
            run.history.stopped_early = epoch < epochs
            break
    if early_stopping is not None:
        early_stopping.restore()
    run.history.steps_per_second = len(run.history.step_loss) / max(run.step_seconds, 1e-12)
    return run.history


def evaluate(model: Layer, X: np.ndarray, y: np.ndarray, *, loss: LossArg = "cross_entropy",
             metrics: MetricsArg = None, batch_size: int = 256,
             backend: str | None = None) -> dict[str, float]:
    """The mean loss and the metrics of ``model`` (inference mode) on ``(X, y)``.

    Returns
    -------
    dict
        ``{"loss": ..., "accuracy": ..., ...}`` (accuracy by default for classification).
    """
    spec = get_loss(loss)
    X, y = _checked_pair(model, X, y, "evaluation")
    graph = graphs.inference_graph(model, X)
    y = checks.prepare_targets(y, spec, graph.pred.type, "evaluation")
    fn = graphs.evaluate_fn(model, graph, spec, y, backend or graphs.default_backend())
    return _evaluate_with(fn, X, y, get_metrics(metrics, spec), batch_size)


def predict(model: Layer, X: np.ndarray, *, batch_size: int = 256,
            backend: str | None = None) -> np.ndarray:
    """The model's outputs (inference mode: ``training=False``) for every row of ``X``,
    computed ``batch_size`` rows at a time by a function compiled once per model and
    input signature."""
    X = checks.features(X, model, "prediction")
    _check_settings(1, batch_size)
    graph = graphs.inference_graph(model, X)
    fn = graphs.predict_fn(model, graph, backend or graphs.default_backend())
    return np.concatenate([fn(X[rows]) for rows in epoch_batches(len(X), batch_size, None)])


# -- preparing a run ------------------------------------------------------------------------------

@dataclass
class _Run:
    """Everything one ``fit`` call trains with."""

    model: Layer
    X: np.ndarray
    y: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None
    step: graphs.TrainStep
    evaluate: Compiled | None
    metrics: dict[str, Metric]
    optimizer: Optimizer
    monitor: Monitor
    early_stopping: EarlyStopping | None
    backend: str
    history: History
    smoother: SmoothedLoss
    rng: np.random.Generator | None
    batch_size: int
    progress: bool
    checkpoint: Path | None
    step_seconds: float = 0.0


def _prepare(model: Layer, X: np.ndarray, y: np.ndarray, *, loss: Loss, metrics: MetricsArg,
             validation: tuple | float | None, optimizer: Optimizer | None,
             early_stopping: EarlyStopping | None, seed: int, backend: str,
             smoother: SmoothedLoss, rng: np.random.Generator | None, batch_size: int,
             progress: bool, checkpoint: Path | None) -> _Run:
    """Check the data, build and compile the graphs (timed), choose the monitor."""
    X, y = _checked_pair(model, X, y, "training")
    graph = graphs.inference_graph(model, X)
    y = checks.prepare_targets(y, loss, graph.pred.type, "training")
    X, y, held_out = _validation_data(model, X, y, validation, loss, graph, seed)
    metric_fns = get_metrics(metrics, loss)
    monitor = (early_stopping.monitor if early_stopping is not None
               else Monitor("val_loss" if held_out is not None else "loss"))
    _check_monitor(monitor.name, metric_fns, held_out is not None)
    optimizer = optimizer if optimizer is not None else default_optimizer()
    start = time.perf_counter()
    step = graphs.train_step(model, graph, loss, y, optimizer, backend)
    evaluate_fn = (graphs.evaluate_fn(model, graph, loss, held_out[1], backend)
                   if held_out is not None else None)
    history = History(monitor=monitor.name, compile_seconds=time.perf_counter() - start,
                      report=step.fn.report)
    return _Run(model, X, y, held_out, step, evaluate_fn, metric_fns, optimizer, monitor,
                early_stopping, backend, history, smoother, rng, batch_size, progress,
                checkpoint)


def default_optimizer() -> Optimizer:
    """``optim.Adam(1e-3)`` when graphc has Adam, else ``optim.SGD(0.01)``."""
    adam = getattr(optim, "Adam", None)
    return adam(1e-3) if adam is not None else optim.SGD(0.01)


def _checked_pair(model: Layer, X: object, y: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    X = checks.features(X, model, what)
    y = np.asarray(y)
    checks.check_lengths(X, y, what)
    return X, y


def _validation_data(model: Layer, X: np.ndarray, y: np.ndarray,
                     validation: tuple | float | None, loss: Loss,
                     graph: graphs.InferenceGraph, seed: int) -> tuple:
    """``(X_train, y_train, (X_val, y_val) or None)``, targets prepared."""
    if validation is None:
        return X, y, None
    if isinstance(validation, float | int) and not isinstance(validation, bool):
        return _split(X, y, float(validation), loss, seed)
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise TypeError("validation must be (X_val, y_val) or a fraction in (0, 1), got "
                        f"{type(validation).__name__}")
    X_val, y_val = _checked_pair(model, *validation, "validation")
    return X, y, (X_val, checks.prepare_targets(y_val, loss, graph.pred.type, "validation"))


def _split(X: np.ndarray, y: np.ndarray, fraction: float, loss: Loss, seed: int) -> tuple:
    from sklearn.model_selection import train_test_split

    held_out = fraction * len(X)
    if not 0.0 < fraction < 1.0 or held_out < 1 or len(X) - held_out < 1:
        raise ValueError(f"validation fraction {fraction} of {len(X)} examples leaves no "
                         "training or no validation data; use a fraction in (0, 1)")
    try:  # stratified when every class can be on both sides
        parts = train_test_split(X, y, test_size=fraction, random_state=seed,
                                 stratify=y if loss.classification else None)
    except ValueError:
        parts = train_test_split(X, y, test_size=fraction, random_state=seed)
    X_train, X_val, y_train, y_val = parts
    return X_train, y_train, (X_val, y_val)


def _check_monitor(name: str, metrics: dict[str, Metric], validation: bool) -> None:
    logged = ["loss", *metrics]
    logged += [f"val_{k}" for k in logged] if validation else []
    if name not in logged:
        hint = " (it needs validation data)" if name.startswith("val_") and not validation else ""
        raise ValueError(f"cannot monitor {name!r}{hint}; the logged values are "
                         f"{', '.join(logged)}")


def _check_settings(epochs: int, batch_size: int) -> None:
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int ≥ 1, got {value!r}")


# -- running --------------------------------------------------------------------------------------

def _run_epoch(run: _Run, epoch: int, epochs: int) -> dict[str, float]:
    """Train one epoch under its progress bar, then score the validation data."""
    batches = epoch_batches(len(run.X), run.batch_size, run.rng)
    with epoch_bar(epoch, epochs, len(batches), run.progress) as bar:
        logs = _train_epoch(run, epoch, batches, bar)
        if run.validation is not None:
            logs.update({f"val_{k}": v for k, v in _scores(run, *run.validation).items()})
        bar.set_postfix(postfix({**logs, "loss": run.smoother.value}))
    return logs


def _train_epoch(run: _Run, epoch: int, batches: list[np.ndarray], bar) -> dict[str, float]:
    """One pass over the batches; returns the epoch's mean loss and training metrics."""
    totals = dict.fromkeys(["loss", *run.metrics], 0.0)
    for k, rows in enumerate(batches, start=1):
        X_batch, y_batch = run.X[rows], run.y[rows]
        start = time.perf_counter()
        loss, pred = run.step.fn(X_batch, y_batch)  # a non-finite loss is caught below
        run.step_seconds += time.perf_counter() - start
        loss = float(loss)
        if not np.isfinite(loss):
            raise _diverged(run, epoch, k, len(batches), loss, X_batch)
        run.history.step_loss.append(loss)
        run.history.smoothed_loss.append(run.smoother.update(loss))
        totals["loss"] += loss * len(rows)
        for name, metric in run.metrics.items():
            totals[name] += metric(pred, y_batch) * len(rows)
        bar.set_postfix(loss=f"{run.smoother.value:.4g}", refresh=False)
        bar.update(1)
    return {name: total / len(run.X) for name, total in totals.items()}


def _diverged(run: _Run, epoch: int, step: int, steps: int, loss: float,
              X_batch: np.ndarray) -> TrainingError:
    layer, finding = first_non_finite(run.model, run.step.x, X_batch, run.backend)
    overall = len(run.history.step_loss) + 1
    return TrainingError(
        f"the loss became {loss} at epoch {epoch}, step {step} of {steps} (step {overall} "
        f"overall); training stopped and the params keep their values from the step before. "
        f"On that batch, {finding}.",
        epoch=epoch, step=step, layer=None if layer is None else (layer.path or layer.name),
        history=run.history)


def _scores(run: _Run, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    assert run.evaluate is not None
    return _evaluate_with(run.evaluate, X, y, run.metrics, batch_size=256)


def _evaluate_with(fn: Compiled, X: np.ndarray, y: np.ndarray, metrics: dict[str, Metric],
                   batch_size: int) -> dict[str, float]:
    """The batch-size-weighted mean loss, and the metrics on all predictions at once."""
    _check_settings(1, batch_size)
    total, preds = 0.0, []
    for rows in epoch_batches(len(X), batch_size, None):
        loss, pred = fn(X[rows], y[rows])
        total += float(loss) * len(rows)
        preds.append(pred)
    pred = np.concatenate(preds)
    return {"loss": total / len(X), **{name: float(m(pred, y)) for name, m in metrics.items()}}


def _end_of_epoch(run: _Run, epoch: int, logs: dict[str, float]) -> bool:
    """Track the best epoch, write checkpoints; return whether to stop."""
    value = logs[run.monitor.name]
    if run.early_stopping is not None:
        stop = run.early_stopping.update(epoch, value, list(run.model.named_params().values()))
        improved = run.monitor.best_epoch == epoch
    else:
        stop, improved = False, run.monitor.update(epoch, value)
    run.history.best_epoch = run.monitor.best_epoch
    if run.checkpoint is not None:
        save_checkpoint(run.checkpoint / "last.npz", run.model, run.optimizer)
        if improved:
            save_checkpoint(run.checkpoint / "best.npz", run.model, run.optimizer)
    return stop
