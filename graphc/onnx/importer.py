"""ONNX models as graphc graphs.

The importer walks the ONNX graph in order and gives every ONNX value one of two
forms: a graphc ``Tensor`` (graph that runs at call time) or a NumPy array known at
import time (initializers, ``Constant`` nodes, shapes of static tensors, and
anything computed only from those, which is folded on the spot). Ops whose ONNX
inputs are really attributes (``Reshape``'s shape, ``Slice``'s starts, ``TopK``'s
k) read them with ``node.value(i)``: a graphc graph has static structure, so those
must be known at import. When such a value comes from a graph input, the import
raises ``NeedsValue`` naming the input, and the caller may bind it (``values=``):
the ONNX backend does so with the arrays it is called with.

Nothing in a model file is executed: the importer only reads protobuf fields and
builds graphc ops from them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx.inliner
from onnx import numpy_helper

from graphc.compile import compile as compile_graph
from graphc.errors import GraphcError, GraphcTypeError
from graphc.graph import toposort
from graphc.onnx import dtypes
from graphc.onnx.registry import lookup
from graphc.tensor import Param, Tensor, constant, input, param

Value = Tensor | np.ndarray

#: ops whose result must not be folded at import even from constant inputs
_UNFOLDABLE = frozenset({"bernoulli_like", "normal_like", "uniform_like"})


class OnnxImportError(GraphcError, ValueError):
    """An ONNX model graphc cannot import: the message names the op, node and opset."""


class NeedsValue(OnnxImportError):
    """An op needs, at import time, the value of graph inputs ``names``."""

    def __init__(self, message: str, names: tuple[str, ...]) -> None:
        super().__init__(message)
        self.names = names


@dataclass
class OnnxModel:
    """An imported ONNX graph: graphc inputs, outputs and params under their ONNX names.

    ``inputs`` and ``outputs`` keep the model's order; ``compile`` gives a callable
    taking the inputs positionally and returning a tuple of the outputs.
    """

    inputs: dict[str, Tensor]
    outputs: dict[str, Tensor]
    params: dict[str, Param] = field(default_factory=dict)
    opset: int = 0
    producer: str = ""

    def compile(self, backend: str | None = None, **options: Any) -> Any:
        """``gx.compile`` of this model: arguments are the inputs in model order."""
        return compile_graph(list(self.inputs.values()), list(self.outputs.values()),
                             backend=backend, **options)

    def run(self, feeds: Mapping[str, Any], backend: str | None = None) -> dict[str, np.ndarray]:
        """Compile (cached) and run on ``{input name: array}``; ``{output name: array}``."""
        missing = [n for n in self.inputs if n not in feeds]
        if missing:
            raise OnnxImportError(f"run: no value for inputs {missing}")
        fn = self.compile(backend)
        results = fn(*(feeds[n] for n in self.inputs))
        return dict(zip(self.outputs, results, strict=True))


def load(model: str | os.PathLike | bytes | onnx.ModelProto, *,
         initializers: str = "params", values: Mapping[str, Any] | None = None,
         shapes: Mapping[str, Sequence[int | str]] | None = None) -> OnnxModel:
    """Import an ONNX model as a graphc graph.

    Parameters
    ----------
    model : path, bytes or onnx.ModelProto
        The model. It is only parsed: nothing in it is executed.
    initializers : "params" or "constants"
        Floating-point initializers become ``gx.param`` (trainable, the default) or
        constants; integer and bool initializers (shapes, indices) are constants.
    values : mapping of input name to array, optional
        Graph inputs to bind to known values (they stop being inputs). Needed where an
        op takes a shape or size from an input.
    shapes : mapping of input name to shape, optional
        Shapes for inputs whose ONNX shape is missing or symbolic.

    Raises
    ------
    OnnxImportError
        For malformed models and for ops, attributes or types graphc does not support;
        the message names the op, the node and the opset.
    """
    if initializers not in ("params", "constants"):
        raise ValueError(f"initializers must be 'params' or 'constants', got {initializers!r}")
    proto = _parse(model)
    if proto.functions:  # model-local functions: expanded into their bodies
        proto = onnx.inliner.inline_local_functions(proto)
    return Importer(proto, initializers=initializers, values=values or {},
                    shapes=shapes or {}).run()


def _parse(model: Any) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        if isinstance(model, bytes | bytearray):
            return onnx.load_from_string(bytes(model))
        return onnx.load(os.fspath(model))
    except (OSError, onnx.onnx_cpp2py_export.checker.ValidationError) as e:  # type: ignore[attr-defined]
        raise OnnxImportError(f"cannot read ONNX model {model!r}: {e}") from None
    except Exception as e:  # protobuf's DecodeError and friends
        raise OnnxImportError(f"malformed ONNX model: {type(e).__name__}: {e}") from None


class Importer:
    """One import of one model; ``run()`` returns the ``OnnxModel``."""

    def __init__(self, proto: onnx.ModelProto, *, initializers: str,
                 values: Mapping[str, Any], shapes: Mapping[str, Sequence[int | str]]) -> None:
        self.proto = proto
        self.initializers = initializers
        self.bound = {k: np.asarray(v) for k, v in values.items()}
        self.shapes = shapes
        self.opsets = {("" if o.domain in ("", "ai.onnx") else o.domain): o.version
                       for o in proto.opset_import}
        if "" not in self.opsets:
            self.opsets[""] = onnx.defs.onnx_opset_version()
        self.env: dict[str, Value] = {}
        self.inputs: dict[str, Tensor] = {}
        self.params: dict[str, Param] = {}
        self.initializer_names: set[str] = set()
        #: graph-input leaves, to say which inputs a needed value depends on
        self.input_names: dict[Tensor, str] = {}
        self._foldable: dict[Tensor, bool] = {}

    # -- the walk ----------------------------------------------------------------------------
    def run(self) -> OnnxModel:
        graph = self.proto.graph
        if not graph.output:
            raise OnnxImportError("the model's graph has no outputs (an empty or truncated file?)")
        for init in graph.initializer:
            self.env[init.name] = _array(init)
            self.initializer_names.add(init.name)
        for vi in graph.input:
            if vi.name in self.initializer_names:
                continue  # an initializer listed as an input (IR < 4): a default, kept
            if vi.name in self.bound:
                self.env[vi.name] = self.bound[vi.name]
                continue
            t = input(vi.name, self._input_shape(vi), self._elem_dtype(vi))
            self.env[vi.name] = t
            self.inputs[vi.name] = t
            self.input_names[t] = vi.name
        self.run_nodes(graph.node)
        outputs = {}
        for vi in graph.output:
            if vi.name not in self.env:
                raise OnnxImportError(f"graph output {vi.name!r} is produced by no node")
            outputs[vi.name] = self.tensor(self.env[vi.name], vi.name)
        return OnnxModel(self.inputs, outputs, self.params, self.opsets[""],
                         self.proto.producer_name)

    def run_nodes(self, nodes: Iterable[onnx.NodeProto]) -> None:
        for index, proto in enumerate(nodes):
            ctx = NodeContext(self, proto, index)
            results = ctx.import_node()
            for name, value in zip(proto.output, results, strict=False):
                if name:
                    self.env[name] = value

    # -- values ------------------------------------------------------------------------------
    def foldable(self, value: Any) -> bool:
        """Whether ``value`` is graph computed from constants only (no input, param or
        random draw), so it can be evaluated now; memoized, so an import stays linear."""
        if not isinstance(value, Tensor):
            return value is not None and not isinstance(value, np.ndarray)
        memo = self._foldable
        stack = [value]
        while stack:
            t = stack[-1]
            if t in memo:
                stack.pop()
                continue
            if t.op.name in _UNFOLDABLE or t.op.name in ("input", "param"):
                memo[t] = False
                stack.pop()
                continue
            pending = [i for i in t.inputs if i not in memo]
            if pending:
                stack.extend(pending)
                continue
            memo[t] = all(memo[i] for i in t.inputs)
            stack.pop()
        return memo[value]

    def tensor(self, value: Value, name: str = "") -> Tensor:
        """``value`` as graph: arrays become constants, or params for float initializers
        when importing with ``initializers="params"``."""
        if isinstance(value, Tensor):
            return value
        if (name in self.initializer_names and self.initializers == "params"
                and value.dtype.kind == "f"):
            if name not in self.params:
                self.params[name] = param(name, value)
            return self.params[name]
        return constant(value)

    def _elem_dtype(self, vi: onnx.ValueInfoProto) -> str:
        if not vi.type.HasField("tensor_type"):
            raise OnnxImportError(f"input {vi.name!r}: only tensor inputs are supported, got "
                                  f"{vi.type.WhichOneof('value')}")
        try:
            return dtypes.to_graphc(vi.type.tensor_type.elem_type)
        except TypeError as e:
            raise OnnxImportError(f"input {vi.name!r}: {e}") from None

    def _input_shape(self, vi: onnx.ValueInfoProto) -> tuple[int | str, ...]:
        if vi.name in self.shapes:
            return tuple(self.shapes[vi.name])
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            raise OnnxImportError(f"input {vi.name!r} has no shape; pass shapes={{{vi.name!r}: "
                                  f"(...)}}")
        dims: list[int | str] = []
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                dims.append(d.dim_value)
            elif d.dim_param and d.dim_param.isidentifier():
                dims.append(d.dim_param)
            else:
                dims.append(f"{_identifier(vi.name)}_{axis}")
        return tuple(dims)


def _identifier(name: str) -> str:
    clean = "".join(ch if ch.isalnum() else "_" for ch in name)
    return clean if clean[:1].isalpha() else f"d_{clean}"


def _array(tensor: onnx.TensorProto) -> np.ndarray:
    """An ONNX tensor's array, in a graphc dtype (external data is refused)."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL and not tensor.raw_data:
        raise OnnxImportError(f"tensor {tensor.name!r} keeps its data in an external file; "
                              "load the model with onnx.load(path) first")
    try:
        dtypes.to_graphc(tensor.data_type)
        return np.array(numpy_helper.to_array(tensor))
    except TypeError as e:
        raise OnnxImportError(f"tensor {tensor.name!r}: {e}") from None
    except ValueError as e:
        raise OnnxImportError(f"tensor {tensor.name!r} is malformed: {e}") from None


class NodeContext:
    """What a handler sees of one ONNX node: its inputs, attributes and opset."""

    def __init__(self, importer: Importer, proto: onnx.NodeProto, index: int) -> None:
        self.importer = importer
        self.proto = proto
        self.op_type = proto.op_type
        self.domain = "" if proto.domain in ("", "ai.onnx") else proto.domain
        self.name = proto.name or f"#{index}"
        self.opset = importer.opsets.get(self.domain, 1)
        self.inputs: list[Value | None] = []
        for name in proto.input:
            if not name:
                self.inputs.append(None)
            elif name not in importer.env:
                raise self.error(f"input {name!r} is produced by no earlier node")
            else:
                self.inputs.append(importer.env[name])
        self.attrs = {a.name: _attribute(a) for a in proto.attribute}

    # -- for handlers ------------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        """How many outputs the node names (optional trailing outputs may be absent)."""
        return len(self.proto.output)

    def wants_output(self, i: int) -> bool:
        return i < len(self.proto.output) and bool(self.proto.output[i])

    def has(self, i: int) -> bool:
        """Whether optional input ``i`` is given."""
        return i < len(self.inputs) and self.inputs[i] is not None

    def input(self, i: int) -> Tensor:
        """Input ``i`` as graph."""
        if not self.has(i):
            raise self.error(f"input {i} is required")
        return self.importer.tensor(self.inputs[i], self.proto.input[i])

    def is_const(self, i: int) -> bool:
        return self.has(i) and isinstance(self.inputs[i], np.ndarray)

    def value(self, i: int, default: Any = None) -> Any:
        """Input ``i``'s array, which must be known at import (a shape, axes, a count)."""
        if not self.has(i):
            if default is not None:
                return np.asarray(default)
            raise self.error(f"input {i} is required")
        v = self.inputs[i]
        if isinstance(v, np.ndarray):
            return v
        from_inputs = self._graph_inputs(v)
        what = f"input {i} ({self.proto.input[i]!r})"
        message = (f"{self.describe()}: {what} must be known when the model is imported; it "
                   f"depends on graph inputs {list(from_inputs)}: bind them with "
                   f"values={{name: array}}")
        raise NeedsValue(message, tuple(from_inputs))

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def dtype(self, i: int) -> str:
        v = self.inputs[i]
        if v is None:
            raise self.error(f"input {i} is required")
        return v.dtype if isinstance(v, Tensor) else v.dtype.name

    def shape(self, i: int) -> tuple[int | str, ...]:
        v = self.inputs[i]
        if v is None:
            raise self.error(f"input {i} is required")
        return tuple(v.shape)

    def describe(self) -> str:
        domain = f"{self.domain}." if self.domain else ""
        return f"ONNX {domain}{self.op_type} (node {self.name!r}, opset {self.opset})"

    def error(self, detail: str) -> OnnxImportError:
        """An import error naming this node."""
        return OnnxImportError(f"{self.describe()}: {detail}")

    def unsupported(self, what: str) -> OnnxImportError:
        return self.error(f"{what} is not supported by graphc")

    # -- import ------------------------------------------------------------------------------
    def import_node(self) -> tuple[Value, ...]:
        fn = lookup(self.domain, self.op_type, self.opset)
        if fn is None:
            raise self.unsupported("this op")
        try:
            result = fn(self)
        except (OnnxImportError, NeedsValue):
            raise
        except GraphcTypeError as e:
            raise self.error(str(e)) from None
        except (TypeError, ValueError, IndexError, KeyError) as e:
            raise self.error(f"{type(e).__name__}: {e}") from None
        results = result if isinstance(result, tuple | list) else (result,)
        return tuple(_fold(r) if self.importer.foldable(r) else r for r in results)

    def _graph_inputs(self, t: Tensor) -> list[str]:
        names = self.importer.input_names
        return [names[n] for n in toposort([t]) if n in names]


def _fold(value: Any) -> Any:
    """A graph computed only from constants, evaluated now (an array)."""
    if not isinstance(value, Tensor):
        return value if value is None or isinstance(value, np.ndarray) else np.asarray(value)
    nodes = toposort([value])
    computed: dict[Tensor, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for n in nodes:
            out = n.op.impl(*(computed[i] for i in n.inputs), **n.attr)
            computed[n] = np.asarray(out, dtype=n.dtype).reshape(n.shape)
    return computed[value]


def _attribute(a: onnx.AttributeProto) -> Any:
    """An attribute's Python value: numbers, str, lists, arrays, or a GraphProto."""
    kind = a.type
    A = onnx.AttributeProto
    if kind == A.FLOAT:
        return a.f
    if kind == A.INT:
        return a.i
    if kind == A.STRING:
        return a.s.decode("utf-8", "replace")
    if kind == A.TENSOR:
        return _array(a.t)
    if kind == A.GRAPH:
        return a.g
    if kind == A.FLOATS:
        return list(a.floats)
    if kind == A.INTS:
        return list(a.ints)
    if kind == A.STRINGS:
        return [s.decode("utf-8", "replace") for s in a.strings]
    if kind == A.TENSORS:
        return [_array(t) for t in a.tensors]
    if kind == A.GRAPHS:
        return list(a.graphs)
    if kind == A.SPARSE_TENSOR:
        raise OnnxImportError(f"attribute {a.name!r}: sparse tensors are not supported")
    raise OnnxImportError(f"attribute {a.name!r} has unknown type {kind}")
