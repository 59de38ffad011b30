"""``gx.compile``: from tensors to a callable, through the optimizer and a backend."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from graphc.compiled import Compiled
from graphc.errors import CompileError
from graphc.graph import Graph
from graphc.tensor import Param, Tensor

MODES = ("train", "inference")
#: The environment variable naming the backend ``compile(..., backend=None)`` uses.
BACKEND_ENV = "GRAPHC_BACKEND"


def default_backend() -> str:
    """The backend used when none is named: ``$GRAPHC_BACKEND``, else ``"numpy"``.

    Read at every call, so setting the variable (``pytest --backend llvm`` does) switches
    every later compilation.
    """
    return os.environ.get(BACKEND_ENV) or "numpy"


def compile(inputs: Sequence[Tensor], outputs: Sequence[Any] | Tensor,
            updates: Mapping[Param, Any] | None = None, backend: str | None = None, *,
            optimize: bool | int = True, mode: str = "train", exclude: Iterable[str] = (),
            explain: bool = False) -> Any:
    """Compile a graph into a callable.

    Parameters
    ----------
    inputs : sequence of Tensor
        The ``gx.input`` tensors, in the order the callable takes its arguments.
    outputs : Tensor or sequence of Tensor
        What the callable returns: an array for a single tensor, a tuple for a sequence
        (``[y]`` gives a 1-tuple, as it would from JAX or PyTorch).
    updates : mapping of Param to Tensor, optional
        Training updates ``param ← value``, applied after the outputs are computed
        and only if the whole call succeeds.
    backend : str, optional
        ``"numpy"`` or ``"llvm"``. ``None`` (the default) means the default backend: the
        environment variable ``GRAPHC_BACKEND`` if set, else ``"numpy"``, read at each call.
    optimize : bool or int
        Run the optimizer: ``True`` is level 3 (everything), ``False`` level 0, or a
        level 0–3 (see ``graphc.passes``).
    mode : str
        ``"train"``, or ``"inference"``: params are frozen to their current values,
        dropout is removed and batch norm folded into the layer before it.
    exclude : iterable of str
        Rules not to apply, by name (``"fuse"`` skips fusion).
    explain : bool
        Return ``(fn, report)``; ``print(report)`` shows what each pass did.

    Returns
    -------
    Compiled
        Call it with one array per input; ``.source`` (numpy backend) shows the code,
        ``.graph`` the optimized graph and ``.report`` the optimizer's report.
    """
    if mode not in MODES:
        raise CompileError(f"mode must be one of {MODES}, got {mode!r}")
    level = 3 if optimize is True else 0 if optimize is False else optimize
    single = isinstance(outputs, Tensor)
    graph = Graph.build(inputs, [outputs] if single else list(outputs), updates)
    if mode == "inference" and graph.updates:
        raise CompileError("mode='inference' compiles no updates; leave `updates` out")
    backend = default_backend() if backend is None else backend
    key = (graph, backend, level, mode == "inference", tuple(sorted(exclude)), single)
    # inference freezes params' current values into the code, so it is never cached
    fn = _lower.__wrapped__(*key) if mode == "inference" else _lower(*key)
    return (fn, fn.report) if explain else fn


# compiling the same graph again in a process returns the same function; the bound keeps
# what functions hold (code, per-thread scratch, recycled outputs) from piling up in a
# process that compiles many graphs (the ONNX conformance run compiles thousands)
@lru_cache(maxsize=32)
def _lower(graph: Graph, backend: str, level: int, inference: bool,
           exclude: tuple[str, ...], single: bool) -> Compiled:
    from graphc import backends
    from graphc.passes import run_pipeline

    def optimize() -> tuple[Graph, Any]:
        return run_pipeline(graph, level=level, inference=inference, exclude=exclude)

    # a backend's disk cache may hold code for the graph as built, skipping the optimizer;
    # inference freezes param values into the optimized graph, so it always optimizes
    load = None if inference else backends.optional(backend, "load_unoptimized")
    fn = load(graph, level, exclude, optimize) if load is not None else None
    if fn is None:
        optimized, report = optimize()
        fn = backends.get(backend)(optimized)
        fn.report = report
        remember = None if inference else backends.optional(backend, "remember_unoptimized")
        if remember is not None:
            remember(graph, fn, level, exclude)
    fn.single = single
    fn.unoptimized = graph
    return fn
