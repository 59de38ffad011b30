"""Checkpoints: a model's params and an optimizer's state in one ``.npz`` file.

The archive (``np.savez``, no pickles) holds

- ``param/<name>``: every param of the model, trainable and state (``param/dense_1/W``),
- ``optim/<key>``: every piece of optimizer state by its key in ``optimizer.state``
  (``optim/step`` is the step counter, ``optim/m/dense_1/W`` a moment),
- ``graphc_checkpoint``: the format version.

Writing is atomic: the archive goes to a temporary file in the target's folder, which
then replaces the target (``os.replace``), so a crash leaves the old checkpoint or the
new one, never half of one. Loading reads and checks everything before assigning
anything: a checkpoint that does not fit, or a damaged file, changes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import os
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np

import graphc as gx
from graphc.nn.module import Layer
from graphc.optim import Optimizer
from graphc.tensor import Param
from graphc.train.errors import CheckpointError
from graphc.types import format_shape

FORMAT_KEY, FORMAT_VERSION = "graphc_checkpoint", 1
PARAM, OPTIM = "param/", "optim/"


def save_checkpoint(path: str | Path, model: Layer, optimizer: Optimizer | None = None) -> Path:
    """Write the model's params (and the optimizer's state) to ``path``, atomically.

    Parameters
    ----------
    path : str or Path
        The file to write (exactly this name; ``.npz`` is the usual suffix). Its folder is
        created if needed.
    model : Layer
        A built model.
    optimizer : Optimizer, optional
        Its state (moments, step counter) is saved too.

    Returns
    -------
    Path
    """
    arrays = {f"{PARAM}{name}": p.value for name, p in model.named_params().items()}
    if optimizer is not None:
        arrays.update({f"{OPTIM}{key}": p.value for key, p in optimizer.state.items()})
    arrays[FORMAT_KEY] = np.array(FORMAT_VERSION, dtype=np.int64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name beside the target (same file system, so os.replace is atomic); opened
    # exclusively, with the usual permissions (tempfile.mkstemp would make it private)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    file = open(temporary, "xb")  # closed by the with below
    try:
        with file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def load_checkpoint(path: str | Path, model: Layer, optimizer: Optimizer | None = None) -> None:
    """Assign a checkpoint's values to the model's params (and the optimizer's state).

    Everything is checked first: every param of the model present with its shape and
    dtype, no param the model lacks; the same for the optimizer's state when an
    optimizer is given. An optimizer that has not made its per-param state yet (a fresh
    one, before its first ``minimize``) makes it, as its first ``minimize`` would, for
    the params the checkpoint holds state for: training resumes with the saved moments,
    and the state of another kind of optimizer (Adam's ``m`` and ``v`` for an SGD with
    momentum) does not fit.

    Raises
    ------
    CheckpointError
        Naming each mismatch (the param, both shapes and dtypes), or saying why the file
        cannot be read. Nothing is assigned, and no optimizer state made, then.
    FileNotFoundError
        If there is no file at ``path``.
    """
    arrays = _read(Path(path))
    problems: list[str] = []
    params = model.named_params()
    param_values = _match(_section(arrays, PARAM), _types(params), "param", "model", problems)
    stored = _section(arrays, OPTIM)
    optim_values: list[tuple[str, np.ndarray]] = []
    if optimizer is not None and not stored:
        problems.append("it holds no optimizer state (it was saved without an optimizer)")
    elif optimizer is not None:
        trial = copy.copy(optimizer)  # makes its slots beside the optimizer's, not in them
        try:
            _make_state(trial, model, stored)
        except ValueError as e:
            problems.append(f"the optimizer cannot make its state for the model: {e}")
        optim_values = _match(stored, _types(trial.state), "optimizer state", "optimizer",
                              problems)
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit; nothing was loaded:\n  "
                              + "\n  ".join(problems))
    for name, value in param_values:
        params[name].value = value
    if optimizer is not None:
        _make_state(optimizer, model, stored)  # as on the trial copy, where it fitted
        for key, value in optim_values:
            optimizer.state[key].value = value


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, read in full (so a damaged member fails here)."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path} is a single array, not a checkpoint archive (.npz)")
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except (FileNotFoundError, CheckpointError):
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or damaged?): "
                              f"{type(e).__name__}: {e}") from e
    if FORMAT_KEY not in arrays:
        raise CheckpointError(f"{path} is an .npz archive but not a graphc checkpoint "
                              f"(no {FORMAT_KEY!r} entry)")
    return arrays


def _section(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {name[len(prefix):]: a for name, a in arrays.items() if name.startswith(prefix)}


def _types(params: dict[str, Param]) -> dict[str, tuple[tuple, str]]:
    return {name: (p.shape, p.dtype) for name, p in params.items()}


def _match(stored: dict[str, np.ndarray], wanted: dict[str, tuple[tuple, str]], what: str,
           owner: str, problems: list[str]) -> list[tuple[str, np.ndarray]]:
    """The stored arrays of the wanted names, noting every missing, extra or mismatched
    (shape, dtype) one in ``problems``."""
    problems += [f"{what} {name!r} is missing from the checkpoint" for name in wanted
                 if name not in stored]
    problems += [f"{what} {name!r} in the checkpoint is not in the {owner}" for name in stored
                 if name not in wanted]
    for name, (shape, dtype) in wanted.items():
        value = stored.get(name)
        if value is not None and (value.shape != shape or value.dtype.name != dtype):
            problems.append(f"{what} {name!r}: the checkpoint holds shape "
                            f"{format_shape(value.shape)} {value.dtype.name}, the {owner} has "
                            f"shape {format_shape(shape)} {dtype}")
    return [(name, stored[name]) for name in wanted if name in stored]


def _make_state(optimizer: Optimizer, model: Layer, stored: dict[str, np.ndarray]) -> None:
    """Have ``optimizer`` make its per-param state for the model's trainable params that
    the checkpoint holds state for (keys ``<slot>/<param name>``), as its first ``minimize``
    would: by building (and dropping) its update for zero gradients. Slots are made once,
    so an optimizer that has trained already makes nothing new."""
    names = {key.partition("/")[2] for key in stored}
    params = [p for p in model.params() if p.name in names]
    if params:
        optimizer.apply({p: gx.zeros_like(p) for p in params})
