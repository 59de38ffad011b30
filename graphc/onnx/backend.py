"""graphc as an ONNX backend (``onnx.backend.base.Backend``).

``prepare(model)`` checks the model; each ``run(inputs)`` imports it with the
inputs' actual shapes (and, where an op takes a shape or size from an input, that
input's value), compiles it with the chosen graphc backend and calls it. Imports
and compilations are cached per shape signature, so a second call with arrays of
the same shapes is one compiled call.

    from graphc.onnx.backend import backend
    rep = backend("llvm").prepare(model)
    outputs = rep.run([x])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from graphc.compile import compile as compile_graph
from graphc.onnx.importer import NeedsValue, OnnxModel, load


class GraphcRep(BackendRep):
    """A prepared model: imports and compiles on first run per input signature."""

    def __init__(self, model: onnx.ModelProto, backend: str) -> None:
        self.model = model
        self.backend = backend
        initializers = {t.name for t in model.graph.initializer}
        self.input_names = [vi.name for vi in model.graph.input if vi.name not in initializers]
        self.bound: set[str] = set()  # inputs whose values shape the graph
        self.cache: dict[tuple, tuple[OnnxModel, Any]] = {}

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        arrays = self._arrays(inputs)
        feeds = dict(zip(self.input_names, arrays, strict=False))
        while True:
            key = tuple((n, a.dtype.str, a.shape, a.tobytes() if n in self.bound else None)
                        for n, a in feeds.items())
            if key in self.cache:
                break
            try:
                imported = load(self.model, initializers="constants",
                                values={n: feeds[n] for n in self.bound},
                                shapes={n: a.shape for n, a in feeds.items()})
            except NeedsValue as e:
                if not set(e.names) - self.bound:
                    raise
                self.bound |= set(e.names)
                continue
            fn = compile_graph(list(imported.inputs.values()), list(imported.outputs.values()),
                               backend=self.backend)
            self.cache[key] = (imported, fn)
        imported, fn = self.cache[key]
        results = fn(*(feeds[n] for n in imported.inputs))
        return tuple(np.asarray(r) for r in results)

    def _arrays(self, inputs: Any) -> list[np.ndarray]:
        if isinstance(inputs, dict):
            return [np.asarray(inputs[n]) for n in self.input_names]
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        return [np.asarray(a) for a in inputs]


class GraphcBackend(Backend):
    """The ONNX backend API over graphc; ``backend_name`` picks numpy or llvm."""

    backend_name = "numpy"

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> GraphcRep:
        super().prepare(model, device, **kwargs)
        return GraphcRep(model, cls.backend_name)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple[Any, Any]] | None = None,
                 **kwargs: Any) -> tuple[np.ndarray, ...]:
        arrays = [np.asarray(a) for a in inputs]
        names = [n for n in node.input if n]
        graph = onnx.helper.make_graph(
            [node], "node",
            [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype),
                                                a.shape) for n, a in zip(names, arrays,
                                                                         strict=False)],
            [onnx.helper.make_empty_tensor_value_info(n) for n in node.output if n])
        model = onnx.helper.make_model(graph)
        return cls.prepare(model, device).run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper().startswith("CPU")


class NumpyBackend(GraphcBackend):
    backend_name = "numpy"


class LlvmBackend(GraphcBackend):
    backend_name = "llvm"


def backend(name: str = "numpy") -> type[GraphcBackend]:
    """The ONNX backend class running on graphc's ``"numpy"`` or ``"llvm"`` backend."""
    try:
        return {"numpy": NumpyBackend, "llvm": LlvmBackend}[name]
    except KeyError:
        raise ValueError(f"graphc backends are 'numpy' and 'llvm', got {name!r}") from None
