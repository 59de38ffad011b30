"""``LlvmCompiled``: a graph compiled to native code, callable like any ``Compiled``.

Compiling is lowering (Python), then optimizing and generating code (LLVM, the cost),
then loading. The disk cache (``cache``) skips the middle when the same IR was compiled
before on this host, and skips lowering too when the same graph was: an index entry holds
the layout and schedule. What the cache skips is rebuilt only when asked for (``llvm_ir``,
``asm``, ``llvm_ir_unoptimized``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.backends.llvm import abi, cache, debug, host, library, unoptimized
from graphc.backends.llvm.runtime import FALLBACK, Runtime
from graphc.compiled import Compiled
from graphc.graph import Graph
from graphc.ops.leaves import constant_value
from graphc.tensor import Tensor

if TYPE_CHECKING:  # lowering and LLVM load only when something is compiled
    import llvmlite.binding as llvm

    from graphc.backends.llvm import lowering, target

    Loaded = target.LoadedObject | library.Library


class _MadeByOptimizer:
    """An attribute the optimizer gives (``graph``, ``report``): stored when set; for a
    function loaded without optimizing, made on first use by running the optimizer."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, fn: Any, owner: type | None = None) -> Any:
        if fn is None:
            return self
        if getattr(fn, self.slot) is None and fn._optimize is not None:
            fn._graph, fn._report = fn._optimize()
            fn._optimize = None
        return getattr(fn, self.slot)

    def __set__(self, fn: Any, value: Any) -> None:
        setattr(fn, self.slot, value)


class LlvmCompiled(Compiled):
    """A graph compiled to native code; ``.llvm_ir`` is its IR, ``.asm`` its assembly.

    ``cache_hit`` says whether the object came from the disk cache, ``compile_seconds``
    how long lowering, code generation (or the cache lookup) and loading took,
    ``cache_key`` names the object in the cache.
    """

    #: runs the optimizer, for a function loaded by its graph before optimization
    #: (``unoptimized``): ``graph``, ``report`` and ``nodes`` are made on first use
    _optimize: unoptimized.Optimize | None = None
    #: the name of the optimized graph's index entry (None: not cacheable)
    graph_key: str | None = None
    _graph: Graph | None = None
    _report: Any = None

    def __init__(self, graph: Graph, lowered: lowering.Lowered, *,
                 started: float | None = None, graph_key: str | None = None) -> None:
        started = time.perf_counter() if started is None else started
        self._lowered: lowering.Lowered | None = lowered
        self._optimized_ref: llvm.ModuleRef | None = None
        self.graph_key = graph_key
        from graphc.backends.llvm import partition

        # the parts' texts name the object: a part count of its own is other machine code
        parts = partition.split(lowered.module, partition.part_count(lowered.module))
        self._ir_text: str | None = parts[0] if len(parts) == 1 else None
        self.cache_key = cache.object_key("\n".join(parts), lowered.layout, host.host_key())
        loaded = _load_cached(self.cache_key)
        hit = loaded is not None
        if loaded is None:  # absent, corrupt, or not loadable: compile and (over)write
            from graphc.backends.llvm import target

            objects = target.compile_parts(parts)
            cache.write(self.cache_key + ".o", cache.pack_objects(objects))
            loaded = target.LoadedObject(objects)
        kernels = debug.kernels(lowered)
        if graph_key is not None:  # after the object: an index never names a missing one
            entry = _index_entry(graph, lowered, self.cache_key, kernels)
            if entry is not None:
                cache.write(graph_key + ".json", entry)
        self._finish(graph, loaded, lowered.layout, lowered.nodes, lowered.failures, kernels,
                     hit, started)

    @classmethod
    def from_cache(cls, graph: Graph, graph_key: str, *,
                   started: float | None = None) -> LlvmCompiled | None:
        """``graph`` loaded from its index entry and object, or None when either is absent."""
        started = time.perf_counter() if started is None else started
        nodes = cache.nodes_of(graph)
        found = _read_index(graph_key, lambda entry: [
            np.ascontiguousarray(constant_value(nodes[k])) for k in entry["constants"]])
        if found is None:
            return None
        entry, layout, failures, loaded = found
        try:
            order = [nodes[k] for k in entry["order"]]
        except (IndexError, TypeError):  # a stale entry
            return None
        self = cls._cached(entry["object"], graph_key)
        self._finish(graph, loaded, layout, order, failures, entry["kernels"], True, started)
        return self

    @classmethod
    def from_index(cls, stand_in: Any, graph_key: str, constants: list[np.ndarray],
                   optimize: unoptimized.Optimize) -> LlvmCompiled | None:
        """Code loaded by the index entry ``graph_key`` of a graph not optimized yet:
        ``stand_in`` has its inputs, outputs, params and updates, ``constants`` are the
        optimized graph's; ``optimize()`` gives the optimized graph when it is needed."""
        started = time.perf_counter()
        found = _read_index(graph_key, lambda entry: constants)
        if found is None:
            return None
        entry, layout, failures, loaded = found
        self = cls._cached(entry["object"], graph_key)
        self._optimize = optimize
        order = [int(k) for k in entry["order"]]
        nodes = unoptimized.Deferred(lambda: [cache.nodes_of(self.graph)[k] for k in order])
        self._finish(stand_in, loaded, layout, nodes, failures, entry["kernels"], True, started)
        self._graph = None  # the stand-in served the call; the real graph is made on use
        return self

    @classmethod
    def _cached(cls, object_key: str, graph_key: str) -> LlvmCompiled:
        """An instance for code from the cache (what lowering would set is made on use)."""
        self = cls.__new__(cls)
        self._lowered = None
        self._optimized_ref = None
        self._ir_text = None
        self.cache_key = object_key
        self.graph_key = graph_key
        return self

    #: the optimized graph and the optimizer's report
    graph = _MadeByOptimizer()
    report = _MadeByOptimizer()

    def _finish(self, graph: Graph, loaded: Loaded, layout: abi.Layout,
                nodes: Sequence[Tensor], failures: dict[int, str], kernels: list[str],
                hit: bool, started: float) -> None:
        call_address = (loaded.address(abi.CALL_ENTRY)
                        if abi.vectorcall_eligible(layout) else 0)
        self.runtime = Runtime(loaded.address(abi.ENTRY), layout, nodes, failures, loaded,
                               objects_address=loaded.address(abi.FAST_ENTRY),
                               call_address=call_address)
        super().__init__(graph, self._execute, backend="llvm")
        #: the schedule (the nodes in execution order) and the kernel functions
        self.nodes = nodes
        self.kernel_names = kernels
        self.cache_hit = hit
        self.compile_seconds = time.perf_counter() - started
        debug.report(self)

    # -- introspection: what a cache hit skipped is rebuilt on first use -------------------------
    @property
    def lowered(self) -> lowering.Lowered:
        """The lowered module and layout (lowered again after a cache hit)."""
        if self._lowered is None:
            from graphc.backends.llvm import lowering

            self._lowered = lowering.lower(self.graph)
        return self._lowered

    @property
    def _unoptimized_ir(self) -> str:
        if self._ir_text is None:
            self._ir_text = str(self.lowered.module)
        return self._ir_text

    @property
    def _optimized(self) -> llvm.ModuleRef:
        """The optimized module (never given to codegen, which would change it)."""
        if self._optimized_ref is None:
            from graphc.backends.llvm import target

            self._optimized_ref = target.optimize(self._unoptimized_ir)
        return self._optimized_ref

    @property
    def llvm_ir(self) -> str:
        """The optimized LLVM IR."""
        return str(self._optimized)

    @property
    def source(self) -> str:
        """The generated code, as every backend's ``source`` is: here the optimized IR."""
        return self.llvm_ir

    @property
    def llvm_ir_unoptimized(self) -> str:
        """The LLVM IR as lowered, before any LLVM pass."""
        return self._unoptimized_ir

    @property
    def asm(self) -> str:
        """The host assembly."""
        from graphc.backends.llvm import target

        return target.emit_assembly(self._optimized.clone())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        runtime = self.runtime
        params = [p.value for p in self._params]
        if runtime.vectorcall is not None and not kwargs:
            # a small graph, arguments exactly as declared: one builtin call (under 1 µs)
            out = runtime.vectorcall(*args, *params)
            if out is not FALLBACK:
                return out if self.single else (out,)
        result = None
        if runtime.static and not kwargs:
            # every argument exactly as declared: straight to native code (about 1 µs)
            result = runtime.call_static(args, params)
        if result is None:
            arrays = self._bind(args, kwargs)
            result = runtime.run(arrays, params, self.check_arguments(arrays))
        outputs, updated = result
        if self._updated:  # outputs and new values are arrays of their own, never views
            self._commit(updated)
        return outputs[0] if self.single else tuple(outputs)

    def _execute(self, args: list[np.ndarray], params: list[np.ndarray],
                 dims: dict[str, int]):
        return self.runtime.run(args, params, dims)


def _read_index(graph_key: str, constants_of: Callable[[dict], list[np.ndarray]]
                ) -> tuple[dict, abi.Layout, dict[int, str], Loaded] | None:
    """Index entry ``graph_key``, its layout (with the constants ``constants_of(entry)``
    gives), failure messages and loaded code; None when absent, stale or not loadable."""
    payload = cache.read(graph_key + ".json")
    if payload is None:
        return None
    try:
        entry = json.loads(payload)
        constants = constants_of(entry)
        if len(constants) != len(entry["constants"]) or not isinstance(entry["order"], list):
            return None
        layout = cache.layout_from_json(entry["layout"], constants)
        failures = {int(k): v for k, v in entry["failures"].items()}
    except (ValueError, KeyError, IndexError, TypeError):  # a stale or foreign entry
        return None
    loaded = _load_cached(entry["object"])
    return None if loaded is None else (entry, layout, failures, loaded)


def _load_cached(object_key: str) -> Loaded | None:
    """The cached code of ``object_key``: its shared library (no LLVM needed), else its
    object, which is then linked into a library for the processes after this one; None
    when neither is there or loads."""
    loaded = library.load(object_key)
    if loaded is not None:
        return loaded
    payload = cache.read(object_key + ".o")
    objects = None if payload is None else cache.unpack_objects(payload)
    if objects is None:
        return None
    from graphc.backends.llvm import target

    try:
        loaded = target.LoadedObject(objects)
        loaded.address(abi.ENTRY)
    except (RuntimeError, KeyError, OSError):  # passed its checksum, not the loader
        return None
    library.link_later(object_key, objects)
    return loaded


def _index_entry(graph: Graph, lowered: lowering.Lowered, object_key: str,
                 kernels: list[str]) -> bytes | None:
    """The index entry of ``graph``: nodes by their number in ``cache.nodes_of``; None if
    the layout's constants are not the schedule's constant nodes (then no index)."""
    nodes = cache.nodes_of(graph)
    number = {n: k for k, n in enumerate(nodes)}
    if any(n not in number for n in lowered.nodes):
        return None
    constants = [number[n] for n in lowered.nodes if n.op.name == "constant"]
    if len(constants) != len(lowered.layout.constants) or not all(
            np.array_equal(np.ascontiguousarray(constant_value(nodes[k])), c, equal_nan=True)
            for k, c in zip(constants, lowered.layout.constants, strict=True)):
        return None
    entry: dict[str, Any] = {
        "object": object_key, "layout": cache.layout_json(lowered.layout),
        "order": [number[n] for n in lowered.nodes], "constants": constants,
        "failures": {str(k): v for k, v in lowered.failures.items()}, "kernels": kernels}
    return json.dumps(entry).encode()


def lower(graph: Graph) -> LlvmCompiled:
    """Compile ``graph`` to native code, or load it from the disk cache."""
    started = time.perf_counter()
    try:
        graph_key = cache.graph_key(graph, host.host_key())
    except cache.Uncacheable:
        graph_key = None
    if graph_key is not None and cache.directory() is not None:
        fn = LlvmCompiled.from_cache(graph, graph_key, started=started)
        if fn is not None:
            return fn
    from graphc.backends.llvm import lowering  # loads llvmlite: only on a cache miss

    return LlvmCompiled(graph, lowering.lower(graph), started=started, graph_key=graph_key)
