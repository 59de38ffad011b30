"""graphc graphs as ONNX models: ``gx.onnx.save(graph_or_compiled, path)``.

The exporter walks the graph in topological order and lowers each node to one or
more ONNX nodes:

* ops with an ONNX counterpart map to it (``matmul`` → ``MatMul``, ``conv2d`` →
  ``Conv``, ``sum`` → ``ReduceSum`` ...), with ``Cast`` nodes where graphc promotes
  dtypes NumPy-style and ONNX wants equal ones;
* the scalar primitives of the elementwise IR (``graphc.ops.scalar``) map one to one
  (``log1p`` and ``expm1`` to two nodes); every other elementwise op (``softplus``,
  ``gelu_tanh``, ``logsigmoid``, ``heaviside`` ...) is exported as its formula's
  scalar program, instruction by instruction;
* composite ops (``dense``, and the optimizer's ``fused`` kernels with their
  reductions) are exported as their expansion into primitive ops.

Inputs keep their names, dtypes and shapes (symbolic dims become ``dim_param``);
params and constants become initializers. Ops with no ONNX equivalent raise
``OnnxExportError`` naming the op. Training updates are not exported: an ONNX
model computes outputs only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from graphc.compiled import Compiled
from graphc.errors import GraphcError
from graphc.graph import Graph, toposort
from graphc.onnx import dtypes
from graphc.ops.elementwise import Elementwise
from graphc.ops.scalar import NUMPY_PRIMITIVES
from graphc.tensor import Param, Tensor
from graphc.types import FLOAT_DTYPES, promote_types

#: The opset written by default: the newest both onnx and onnxruntime run every
#: lowering below at (checked by tests/onnx/test_export.py).
DEFAULT_OPSET = 21

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


class OnnxExportError(GraphcError, ValueError):
    """A graphc graph that cannot be written as ONNX: the message names the op."""


def save(model: Any, path: str | os.PathLike | None = None, *,
         opset: int | None = None) -> onnx.ModelProto:
    """Write a graphc graph as an ONNX model.

    Parameters
    ----------
    model : Graph, Compiled, OnnxModel, Tensor or sequence of Tensors
        What to export. A ``gx.compile`` result exports its optimized graph (fused
        kernels included); an ``OnnxModel`` (from ``gx.onnx.load``) keeps its input
        and output names; bare tensors are outputs, their inputs found in the graph.
    path : path, optional
        Where to write the ``.onnx`` file; nothing is written when ``None``.
    opset : int, optional
        The ONNX opset (default ``DEFAULT_OPSET``).

    Returns
    -------
    onnx.ModelProto
        The model, checked by ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    OnnxExportError
        For an op with no ONNX equivalent (named in the message).
    """
    graph, output_names = _as_graph(model)
    builder = _Builder(opset or DEFAULT_OPSET)
    proto = builder.build(graph, output_names)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def _as_graph(model: Any) -> tuple[Graph, list[str] | None]:
    from graphc.onnx.importer import OnnxModel

    if isinstance(model, Compiled):
        return model.graph, None
    if isinstance(model, Graph):
        return model, None
    if isinstance(model, OnnxModel):
        graph = Graph.build(list(model.inputs.values()), list(model.outputs.values()))
        return graph, list(model.outputs)
    outputs = [model] if isinstance(model, Tensor) else list(model)
    if not all(isinstance(t, Tensor) for t in outputs):
        raise OnnxExportError(f"cannot export {type(model).__name__}: give a Graph, a "
                              "Compiled function, an OnnxModel or output tensors")
    inputs = [n for n in toposort(outputs) if n.op.name == "input"]
    return Graph.build(inputs, outputs), None


# -- the builder -----------------------------------------------------------------------------


class _Builder:
    """The ONNX nodes, initializers and value names of one export."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.names: dict[Tensor, str] = {}
        self.used: set[str] = set()
        self.consts: dict[tuple, str] = {}
        #: symbolic dim -> (ONNX value, axis) that has it, and its materialized size
        self.dim_sources: dict[str, tuple[str, int]] = {}
        self.dim_values: dict[str, str] = {}

    # -- whole graph -------------------------------------------------------------------------
    def build(self, graph: Graph, output_names: list[str] | None) -> onnx.ModelProto:
        inputs = [self._graph_input(t) for t in graph.inputs]
        # output names are taken first, so that no internal value takes one
        names = [self.fresh(n) for n in
                 output_names or [f"output{k}" for k in range(len(graph.outputs))]]
        self.emit([*graph.outputs])
        outputs = []
        for name, t in zip(names, graph.outputs, strict=True):
            self.nodes.append(helper.make_node("Identity", [self.names[t]], [name],
                                               name=f"{name}_out"))
            outputs.append(_value_info(name, t))
        onnx_graph = helper.make_graph(self.nodes, "graphc", inputs, outputs, self.initializers)
        proto = helper.make_model(onnx_graph, producer_name="graphc",
                                  opset_imports=[helper.make_opsetid("", self.opset)])
        return proto

    def _graph_input(self, t: Tensor) -> onnx.ValueInfoProto:
        name = self.fresh(t.name or "input")
        self.names[t] = name
        self._note_dims(t, name)
        return _value_info(name, t)

    def emit(self, roots: Sequence[Tensor]) -> None:
        """Lower every node ``roots`` need that has no ONNX value yet."""
        for t in toposort(roots, self.names):
            name = self._lower(t)
            self.names[t] = name
            self._note_dims(t, name)

    def value(self, t: Tensor) -> str:
        """The ONNX value of ``t``, lowering what it needs first."""
        if t not in self.names:
            self.emit([t])
        return self.names[t]

    def _lower(self, t: Tensor) -> str:
        op = t.op
        rule = _LOWERINGS.get(op.name)
        if rule is not None:
            return rule(self, t)
        if isinstance(op, Elementwise):
            if op.name in NUMPY_PRIMITIVES:
                return _primitive(self, t)
            if _has_onnx_activation(t):
                return _ACTIVATIONS[op.name](self, self.value(t.inputs[0]), t.attr)
            # an activation: its formula's scalar program, as primitive graphc ops
            env = dict(zip(op.formula.inputs, t.inputs, strict=True)) | t.attr
            from graphc.ops.elementwise import cast

            return self.value(cast(op.formula.value.build(env, t.dtype), t.dtype))
        if hasattr(op, "expand"):  # dense, fused kernels: their primitive expansion
            return self.value(op.expand(t))
        raise OnnxExportError(f"graphc op {op.name!r} has no ONNX equivalent; cannot export "
                              f"{t!r}")

    def _note_dims(self, t: Tensor, name: str) -> None:
        for axis, d in enumerate(t.shape):
            if isinstance(d, str):
                self.dim_sources.setdefault(d, (name, axis))

    # -- making nodes ------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        base = "".join(ch if ch.isalnum() or ch in "_./:" else "_" for ch in hint) or "v"
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

    def node(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> Any:
        """Add an ONNX node; its output name (or list of names when ``n_out > 1``)."""
        outs = [self.fresh(f"{op_type.lower()}") for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=outs[0], **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, array: Any, dtype: Any = None, hint: str = "const") -> str:
        """An initializer holding ``array`` (shared between equal small arrays)."""
        array = np.asarray(array, dtype)
        key = (array.dtype.name, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self.consts:
            return self.consts[key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if key is not None:
            self.consts[key] = name
        return name

    def ints(self, values: Sequence[int]) -> str:
        return self.const(np.asarray(list(values), np.int64), hint="ints")

    def cast(self, name: str, have: str, want: str) -> str:
        """``name`` (of dtype ``have``) as ``want``."""
        if have == want:
            return name
        return self.node("Cast", [name], to=dtypes.to_onnx(want))

    def input_as(self, t: Tensor, dtype: str) -> str:
        return self.cast(self.value(t), t.dtype, dtype)

    # -- sizes at run time -------------------------------------------------------------------
    def dim(self, d: int | str) -> str:
        """A 1-D int64 tensor of one element holding the size ``d``."""
        if isinstance(d, int):
            return self.ints([d])
        if d in self.dim_values:
            return self.dim_values[d]
        if d in self.dim_sources:
            source, axis = self.dim_sources[d]
            value = self.node("Shape", [source], start=axis, end=axis + 1)
        elif "*" in d:  # a product of sizes
            factors = [self.dim(int(p) if p.isdigit() else p) for p in d.split("*")]
            value = factors[0]
            for f in factors[1:]:
                value = self.node("Mul", [value, f])
        else:
            raise OnnxExportError(f"the symbolic size {d!r} is not the size of any exported "
                                  "value, so ONNX cannot compute it")
        self.dim_values[d] = value
        return value

    def shape(self, shape: Sequence[int | str]) -> str:
        """A 1-D int64 shape tensor for ``shape`` (static or with symbolic dims)."""
        if all(isinstance(d, int) for d in shape):
            return self.ints(shape)
        return self.node("Concat", [self.dim(d) for d in shape], axis=0)


def _value_info(name: str, t: Tensor) -> onnx.ValueInfoProto:
    try:
        elem = dtypes.to_onnx(t.dtype)
    except KeyError:
        raise OnnxExportError(f"dtype {t.dtype} of {t!r} has no ONNX element type") from None
    return helper.make_tensor_value_info(name, elem, list(t.shape))


# -- lowerings -------------------------------------------------------------------------------

Lowering = Callable[[_Builder, Tensor], str]
_LOWERINGS: dict[str, Lowering] = {}


def lowering(*names: str) -> Callable[[Lowering], Lowering]:
    """Register the ONNX lowering of the graphc ops ``names``."""
    def register(fn: Lowering) -> Lowering:
        for name in names:
            _LOWERINGS[name] = fn
        return fn
    return register


@lowering("param")
def _param(b: _Builder, t: Tensor) -> str:
    assert isinstance(t, Param)
    name = b.fresh(t.name or "param")
    b.initializers.append(numpy_helper.from_array(np.ascontiguousarray(t.value), name))
    return name


@lowering("constant")
def _constant(b: _Builder, t: Tensor) -> str:
    return b.const(t.attr["value"].array, hint="const")


@lowering("input")
def _input(b: _Builder, t: Tensor) -> str:
    raise OnnxExportError(f"input {t.name!r} is not among the graph's inputs")


# -- elementwise primitives --

#: scalar primitive -> ONNX op, for those that are one node with equal-dtype inputs
_SAME_DTYPE = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
               "maximum": "Max", "minimum": "Min", "neg": "Neg", "abs": "Abs", "sign": "Sign",
               "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "reciprocal": "Reciprocal",
               "sin": "Sin", "cos": "Cos", "tanh": "Tanh", "erf": "Erf", "floor": "Floor",
               "sigmoid": "Sigmoid",
               "atan": "Atan", "round": "Round", "trunc_div": "Div",
               "bitwise_and": "BitwiseAnd", "bitwise_or": "BitwiseOr",
               "bitwise_xor": "BitwiseXor", "bitwise_not": "BitwiseNot"}
#: ops that are the identity on integers
_INT_IDENTITY = {"floor", "round"}
#: on bools, NumPy's + and max are "or", * and min are "and"
_BOOL_ARITHMETIC = {"add": "Or", "mul": "And", "maximum": "Or", "minimum": "And",
                    "bitwise_and": "And", "bitwise_or": "Or", "bitwise_xor": "Xor",
                    "bitwise_not": "Not"}
_COMPARE = {"less": "Less", "less_equal": "LessOrEqual", "greater": "Greater",
            "greater_equal": "GreaterOrEqual", "equal": "Equal"}
_LOGICAL = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}


def _primitive(b: _Builder, t: Tensor) -> str:
    """One scalar primitive; inputs cast to the dtype NumPy computes it in."""
    name, out = t.op.name, t.dtype
    if name == "where":
        cond, x, y = t.inputs
        return b.node("Where", [b.input_as(cond, "bool"), b.input_as(x, out), b.input_as(y, out)])
    if name in _COMPARE or name == "not_equal":
        common = promote_types(*(i.dtype for i in t.inputs))
        args = [b.input_as(i, common) for i in t.inputs]
        if name == "not_equal":
            return b.node("Not", [b.node("Equal", args)])
        return b.node(_COMPARE[name], args)
    if name in _LOGICAL or name == "logical_not":
        args = [b.input_as(i, "bool") for i in t.inputs]
        return b.node("Not", args) if name == "logical_not" else b.node(_LOGICAL[name], args)
    args = [b.input_as(i, out) for i in t.inputs]
    if out == "bool":
        if name not in _BOOL_ARITHMETIC:
            raise OnnxExportError(f"graphc op {name!r} on bool values has no ONNX equivalent")
        return b.node(_BOOL_ARITHMETIC[name], args)
    if name in _INT_IDENTITY and out not in FLOAT_DTYPES:
        return b.node("Identity", args)
    if name == "fmod":  # C's fmod: the sign of x
        return b.node("Mod", args, fmod=1)
    if name == "mod":
        return _floor_mod(b, args, out)
    if name in ("left_shift", "right_shift"):
        return _shift(b, args, out, left=name == "left_shift")
    if name == "square":
        return b.node("Mul", [args[0], args[0]])
    if name == "log1p":  # log(1 + x): ONNX has no log1p
        return b.node("Log", [b.node("Add", [args[0], b.const(1, out)])])
    if name == "expm1":
        return b.node("Sub", [b.node("Exp", args), b.const(1, out)])
    if name not in _SAME_DTYPE:
        raise OnnxExportError(f"the scalar primitive {name!r} has no ONNX lowering yet")
    return b.node(_SAME_DTYPE[name], args)


def _floor_mod(b: _Builder, args: list[str], out: str) -> str:
    """NumPy's mod, the sign of y: ONNX Mod(fmod=0) for ints; for floats fmod, then + y
    where the remainder is nonzero and of the other sign (as NumPy computes it)."""
    if out not in FLOAT_DTYPES:
        return b.node("Mod", args, fmod=0)
    x, y = args
    r = b.node("Mod", [x, y], fmod=1)
    zero = b.const(0, out)
    signs_differ = b.node("Xor", [b.node("Less", [r, zero]), b.node("Less", [y, zero])])
    fix = b.node("And", [b.node("Not", [b.node("Equal", [r, zero])]), signs_differ])
    return b.node("Where", [fix, b.node("Add", [r, y]), r])


def _shift(b: _Builder, args: list[str], out: str, left: bool) -> str:
    """NumPy's shifts. ONNX BitShift takes unsigned ints only: signed values shift as
    their two's-complement bits, and right shifts of negatives are arithmetic
    (x >> y = ~(~x >> y) for x < 0)."""
    x, y = args
    direction = "LEFT" if left else "RIGHT"
    if out.startswith("uint"):
        return b.node("BitShift", [x, y], direction=direction)
    unsigned = f"u{out}"
    y_u = b.cast(y, out, unsigned)
    if left:
        return b.cast(b.node("BitShift", [b.cast(x, out, unsigned), y_u], direction="LEFT"),
                      unsigned, out)
    negative = b.node("Less", [x, b.const(0, out)])
    magnitude = b.node("Where", [negative, b.node("BitwiseNot", [x]), x])
    shifted = b.node("BitShift", [b.cast(magnitude, out, unsigned), y_u], direction="RIGHT")
    shifted = b.cast(shifted, unsigned, out)
    return b.node("Where", [negative, b.node("BitwiseNot", [shifted]), shifted])


# -- activations with an ONNX op of the same meaning (others export as their formula) --

def _shrink(lambd: float, bias: float) -> dict[str, float]:
    return {"lambd": lambd, "bias": bias}


_SELU = {"alpha": 1.6732632423543772848170429916717, "gamma": 1.0507009873554804934193349852946}
_ACTIVATIONS: dict[str, Callable[[_Builder, str, dict], str]] = {
    "relu": lambda b, x, a: b.node("Relu", [x]),
    "sigmoid": lambda b, x, a: b.node("Sigmoid", [x]),
    "identity": lambda b, x, a: b.node("Identity", [x]),
    "softsign": lambda b, x, a: b.node("Softsign", [x]),
    "leaky_relu": lambda b, x, a: b.node("LeakyRelu", [x], alpha=a["alpha"]),
    "elu": lambda b, x, a: b.node("Elu", [x], alpha=a["alpha"]),
    "selu": lambda b, x, a: b.node("Selu", [x], **_SELU),
    "hardswish": lambda b, x, a: b.node("HardSwish", [x]),
    "hardsigmoid": lambda b, x, a: b.node("HardSigmoid", [x], alpha=1 / 6, beta=0.5),
    "softshrink": lambda b, x, a: b.node("Shrink", [x], **_shrink(a["lambd"], a["lambd"])),
    "hardshrink": lambda b, x, a: b.node("Shrink", [x], **_shrink(a["lambd"], 0.0)),
}
#: what onnxruntime runs them on (its CPU kernels are float32-only for most)
_ACTIVATION_DTYPES = {"relu": ("float32", "float64"), "sigmoid": ("float32", "float64"),
                      "identity": ("float32", "float64"), "softsign": ("float32",)}


def _has_onnx_activation(t: Tensor) -> bool:
    """Is ``t`` an activation that has an ONNX op, on a dtype onnxruntime runs it on,
    without broadcasting (the ONNX ops are unary)?"""
    name = t.op.name
    if name not in _ACTIVATIONS or len(t.inputs) != 1:
        return False
    x = t.inputs[0]
    return x.dtype == t.dtype and t.dtype in _ACTIVATION_DTYPES.get(name, ("float32",))


@lowering("cast")
def _cast(b: _Builder, t: Tensor) -> str:
    return b.node("Cast", [b.value(t.inputs[0])], to=dtypes.to_onnx(t.dtype))


@lowering("bitcast")
def _bitcast(b: _Builder, t: Tensor) -> str:
    if b.opset < 26:
        raise OnnxExportError(f"graphc op 'bitcast' needs ONNX opset 26 (BitCast); exporting "
                              f"at opset {b.opset}: pass opset=26")
    return b.node("BitCast", [b.value(t.inputs[0])], to=dtypes.to_onnx(t.dtype))


@lowering("full_like")
def _full_like(b: _Builder, t: Tensor) -> str:
    if all(isinstance(d, int) for d in t.shape):
        fill = numpy_helper.from_array(np.asarray([t.attr["value"]], t.dtype))
        return b.node("ConstantOfShape", [b.ints(t.shape)], value=fill)
    # a symbolic shape without shape arithmetic: both branches are the value, broadcast
    # to x's shape (importers that need static shapes read this as plain broadcasting)
    x, fill = b.value(t.inputs[0]), b.const(t.attr["value"], t.dtype)
    return b.node("Where", [b.node("Equal", [x, x]), fill, fill])


# -- shapes --

@lowering("reshape")
def _reshape(b: _Builder, t: Tensor) -> str:
    shape = list(t.attr["shape"])
    allow_zero = 1 if 0 in shape else None  # a literal 0 is a size, not "copy this dim"
    symbolic = [k for k, d in enumerate(shape) if not isinstance(d, int)]
    if len(symbolic) == 1 and not allow_zero:  # one unknown size: ONNX infers a -1
        shape[symbolic[0]] = -1
    return b.node("Reshape", [b.value(t.inputs[0]), b.shape(shape)], allowzero=allow_zero)


@lowering("transpose")
def _transpose(b: _Builder, t: Tensor) -> str:
    return b.node("Transpose", [b.value(t.inputs[0])], perm=list(t.attr["axes"]))


@lowering("broadcast_to")
def _broadcast_to(b: _Builder, t: Tensor) -> str:
    # Expand broadcasts both ways: a 1 keeps the input's own (symbolic) size
    x = t.inputs[0]
    own = (None,) * (len(t.shape) - len(x.shape)) + tuple(x.shape)
    shape = [1 if isinstance(d, str) and d == mine else d
             for d, mine in zip(t.attr["shape"], own, strict=True)]
    return b.node("Expand", [b.value(x), b.shape(shape)])


@lowering("concatenate")
def _concatenate(b: _Builder, t: Tensor) -> str:
    return b.node("Concat", [b.input_as(i, t.dtype) for i in t.inputs], axis=t.attr["axis"])


@lowering("pad")
def _pad(b: _Builder, t: Tensor) -> str:
    (x,) = t.inputs
    widths = t.attr["pad_width"]
    pads = [w[0] for w in widths] + [w[1] for w in widths]
    fill = b.const(t.attr["value"], t.dtype)
    return b.node("Pad", [b.value(x), b.ints(pads), fill], mode="constant")


@lowering("getitem")
def _getitem(b: _Builder, t: Tensor) -> str:
    """Basic indexing: one Slice over every axis, Squeeze the int entries, Unsqueeze None."""
    x = b.value(t.inputs[0])
    starts, ends, axes, steps, dropped, added = [], [], [], [], [], []
    axis = out_axis = 0
    for entry in t.attr["index"]:
        if entry is None:
            added.append(out_axis)
            out_axis += 1
            continue
        if isinstance(entry, int):
            starts.append(entry)
            ends.append(entry + 1 if entry != -1 else _INT64_MAX)
            steps.append(1)
            dropped.append(axis)
        else:
            start, stop, step = entry
            step = 1 if step is None else step
            if (start, stop, step) == (None, None, 1):
                axis, out_axis = axis + 1, out_axis + 1
                continue
            starts.append(start if start is not None else (0 if step > 0 else _INT64_MAX))
            ends.append(stop if stop is not None else (_INT64_MAX if step > 0 else _INT64_MIN))
            steps.append(step)
            out_axis += 1
        axes.append(axis)
        axis += 1
    if axes:
        x = b.node("Slice", [x, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
    if dropped:
        x = b.node("Squeeze", [x, b.ints(dropped)])
    if added:
        x = b.node("Unsqueeze", [x, b.ints(added)])
    return x if x != b.value(t.inputs[0]) else b.node("Identity", [x])


@lowering("slice_scatter")
def _slice_scatter(b: _Builder, t: Tensor) -> str:
    """Zeros with ``g`` written at ``index``: a scatter at flat positions computed now."""
    from graphc.ops.indexing import numpy_index

    g, like = t.inputs
    if not all(isinstance(d, int) for d in like.shape):
        raise OnnxExportError("graphc op 'slice_scatter' exports only for static shapes, got "
                              f"{like.shape}")
    positions = np.arange(int(np.prod(like.shape)), dtype=np.int64).reshape(like.shape)
    positions = positions[numpy_index(t.attr["index"])].reshape(-1)
    zeros = b.const(np.zeros(int(np.prod(like.shape)), t.dtype))
    flat_g = b.node("Reshape", [b.value(g), b.ints([-1])])
    flat = b.node("ScatterElements", [zeros, b.const(positions), flat_g], axis=0)
    return b.node("Reshape", [flat, b.ints(like.shape)])


# -- indexing --

@lowering("take")
def _take(b: _Builder, t: Tensor) -> str:
    x, indices = t.inputs
    return b.node("Gather", [b.value(x), b.value(indices)], axis=t.attr["axis"])


def _expand_along(b: _Builder, t: Tensor, shape: tuple, axis: int, size: Any) -> str:
    """``t`` broadcast to ``shape`` except at ``axis``, which keeps ``size``."""
    target = tuple(size if k == axis else d for k, d in enumerate(shape))
    return b.node("Expand", [b.value(t), b.shape(target)]) if t.shape != target else b.value(t)


@lowering("take_along_axis")
def _take_along_axis(b: _Builder, t: Tensor) -> str:
    # np.take_along_axis broadcasts the other axes; GatherElements does not
    x, indices = t.inputs
    axis = t.attr["axis"]
    data = _expand_along(b, x, t.shape, axis, x.shape[axis])
    where = _expand_along(b, indices, t.shape, axis, indices.shape[axis])
    return b.node("GatherElements", [data, where], axis=axis)


@lowering("take_along_axis_scatter_add")
def _take_along_axis_scatter_add(b: _Builder, t: Tensor) -> str:
    g, indices, _ = t.inputs
    axis = t.attr["axis"]
    zeros = b.node("ConstantOfShape", [b.shape(t.shape)],
                   value=numpy_helper.from_array(np.zeros(1, t.dtype)))
    where = _expand_along(b, indices, g.shape, axis, g.shape[axis])
    return b.node("ScatterElements", [zeros, where, b.value(g)], axis=axis, reduction="add")


@lowering("take_scatter_add")
def _take_scatter_add(b: _Builder, t: Tensor) -> str:
    """``np.add.at`` along ``axis``: ScatterND on the axis moved first."""
    g, indices, like = t.inputs
    axis, ndim = t.attr["axis"], len(t.shape)
    first = [axis, *(k for k in range(ndim) if k != axis)]
    zeros = b.node("ConstantOfShape", [b.shape([t.shape[k] for k in first])],
                   value=numpy_helper.from_array(np.zeros(1, t.dtype)))
    where = b.node("Reshape", [b.value(indices), b.ints([-1, 1])])
    k = len(indices.shape)  # g is like[:axis] + indices.shape + like[axis+1:]
    g_perm = [*range(axis, axis + k), *range(axis), *range(axis + k, len(g.shape))]
    updates = b.node("Transpose", [b.value(g)], perm=g_perm)
    rest = [t.shape[k_] for k_ in first[1:]]
    updates = b.node("Reshape", [updates, b.shape([-1, *rest])])
    out = b.node("ScatterND", [zeros, where, updates], reduction="add")
    return b.node("Transpose", [out], perm=[int(a) for a in np.argsort(first)])


@lowering("one_hot")
def _one_hot(b: _Builder, t: Tensor) -> str:
    # labels[..., None] == arange(depth): out-of-range labels give zeros (ONNX OneHot
    # would count negative labels from the end)
    (labels,) = t.inputs
    column = b.node("Unsqueeze", [b.value(labels), b.ints([-1])])
    hits = b.node("Equal", [column, b.const(np.arange(t.attr["depth"]), labels.dtype)])
    return b.node("Cast", [hits], to=dtypes.to_onnx(t.dtype))


@lowering("scatter_elements")
def _scatter_elements(b: _Builder, t: Tensor) -> str:
    data, indices, updates = t.inputs
    reduction = t.attr["reduction"]
    return b.node("ScatterElements", [b.value(data), b.value(indices), b.value(updates)],
                  axis=t.attr["axis"], reduction=None if reduction == "none" else reduction)


# -- reductions --

def _reduce(b: _Builder, t: Tensor, onnx_op: str) -> str:
    x = b.input_as(t.inputs[0], t.dtype)
    axes = t.attr["axis"]
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    if not axes:  # no axis: nothing reduced
        return b.node("Identity", [x])
    keepdims = int(t.attr.get("keepdims", False))
    return b.node(onnx_op, [x, b.ints(axes)], keepdims=keepdims)


_REDUCE = {"sum": "ReduceSum", "prod": "ReduceProd", "max": "ReduceMax", "min": "ReduceMin",
           "logsumexp": "ReduceLogSumExp", "l2_norm": "ReduceL2", "maxout": "ReduceMax"}
for _name, _op in _REDUCE.items():
    lowering(_name)(lambda b, t, _op=_op: _reduce(b, t, _op))


@lowering("argmax", "argmin")
def _arg_extremum(b: _Builder, t: Tensor) -> str:
    onnx_op = "ArgMax" if t.op.name == "argmax" else "ArgMin"
    x, axis, keepdims = b.value(t.inputs[0]), t.attr["axis"], int(t.attr["keepdims"])
    if axis is not None:
        return b.node(onnx_op, [x], axis=axis, keepdims=keepdims)
    flat = b.node("Reshape", [x, b.ints([-1])])  # NumPy: the index into the flattened array
    index = b.node(onnx_op, [flat], axis=0, keepdims=0)
    return b.node("Reshape", [index, b.ints([1] * len(t.shape))]) if keepdims else index


@lowering("axis_size")
def _axis_size(b: _Builder, t: Tensor) -> str:
    x = t.inputs[0]
    sizes = [x.shape[a] for a in t.attr["axis"]]
    if all(isinstance(d, int) for d in sizes):
        return b.const(np.prod(sizes, dtype=np.int64), t.dtype)
    count = b.node("ReduceProd", [b.shape(sizes)], keepdims=0)
    return b.node("Cast", [count], to=dtypes.to_onnx(t.dtype))


@lowering("first_max_mask")
def _first_max_mask(b: _Builder, t: Tensor) -> str:
    (x,) = t.inputs
    axis = t.attr["axis"]
    axis = axis[0] if isinstance(axis, tuple) else axis
    first = b.node("ArgMax", [b.value(x)], axis=axis, keepdims=1)  # the first maximum
    size = x.shape[axis]
    if isinstance(size, int):
        positions = b.const(np.arange(size))
        column = [1] * len(x.shape)
        column[axis] = -1
        positions = b.node("Reshape", [positions, b.ints(column)])
    else:  # positions 0, 1, ... along the axis, with no shape ops: a running count of ones
        one = b.const(1, "int64")
        ones = b.node("Where", [b.node("Equal", [b.value(x), b.value(x)]), one, one])
        positions = b.node("CumSum", [ones, b.const(axis, "int64")], exclusive=1)
    return b.node("Cast", [b.node("Equal", [first, positions])], to=dtypes.to_onnx(t.dtype))


# -- scans and sorting --

@lowering("cumsum")
def _cumsum(b: _Builder, t: Tensor) -> str:
    a = t.attr
    return b.node("CumSum", [b.input_as(t.inputs[0], t.dtype), b.const(a["axis"], "int64")],
                  exclusive=int(a["exclusive"]), reverse=int(a["reverse"]))


@lowering("cumprod")
def _cumprod(b: _Builder, t: Tensor) -> str:
    """CumProd from opset 26; before, the product over a triangular window of each lane."""
    a = t.attr
    x, axis, ndim = b.input_as(t.inputs[0], t.dtype), a["axis"] % len(t.shape), len(t.shape)
    if b.opset >= 26:
        return b.node("CumProd", [x, b.const(axis, "int64")], exclusive=int(a["exclusive"]),
                      reverse=int(a["reverse"]))
    n = t.shape[axis]
    if not isinstance(n, int):
        raise OnnxExportError(f"graphc op 'cumprod' over the symbolic axis {n!r} needs "
                              "opset >= 26 (CumProd)")
    # out[i] = prod_j where(window[i, j], x[j], 1): window j <= i (j < i exclusive; the
    # mirror image when reversed)
    i, j = np.indices((n, n))
    window = (j >= i) if a["reverse"] else (j <= i)
    if a["exclusive"]:
        window &= i != j
    last = [k for k in range(ndim) if k != axis] + [axis]
    lanes = b.node("Unsqueeze", [b.node("Transpose", [x], perm=last), b.ints([-2])])
    picked = b.node("Where", [b.const(window), lanes, b.const(1, t.dtype)])
    out = b.node("ReduceProd", [picked, b.ints([-1])], keepdims=0)
    return b.node("Transpose", [out], perm=[int(k) for k in np.argsort(last)])


@lowering("argsort")
def _argsort(b: _Builder, t: Tensor) -> str:
    # TopK of the whole axis; on ties ONNX puts the lower index first, as a stable sort
    (x,) = t.inputs
    axis = t.attr["axis"]
    _, indices = b.node("TopK", [b.value(x), b.dim(x.shape[axis])], n_out=2, axis=axis,
                        largest=int(t.attr["descending"]), sorted=1)
    return indices


# -- linear algebra and neural-network ops --

@lowering("matmul")
def _matmul(b: _Builder, t: Tensor) -> str:
    return b.node("MatMul", [b.input_as(i, t.dtype) for i in t.inputs])


@lowering("addmm")
def _addmm(b: _Builder, t: Tensor) -> str:
    c, a, m = (b.input_as(i, t.dtype) for i in t.inputs)
    return b.node("Gemm", [a, m, c], alpha=t.attr["alpha"], beta=t.attr["beta"])


@lowering("einsum")
def _einsum(b: _Builder, t: Tensor) -> str:
    return b.node("Einsum", [b.input_as(i, t.dtype) for i in t.inputs],
                  equation=t.attr["subscripts"])


def _softmax_axes(t: Tensor) -> tuple[int, ...]:
    axis = t.attr["axis"]
    return (axis,) if isinstance(axis, int) else tuple(axis)


@lowering("softmax", "log_softmax")
def _softmax(b: _Builder, t: Tensor) -> str:
    x = b.input_as(t.inputs[0], t.dtype)
    axes = _softmax_axes(t)
    log = t.op.name == "log_softmax"
    if len(axes) == 1:
        return b.node("LogSoftmax" if log else "Softmax", [x], axis=axes[0])
    # several axes: shift by the max, normalize by the sum over all of them
    shifted = b.node("Sub", [x, b.node("ReduceMax", [x, b.ints(axes)], keepdims=1)])
    e = b.node("Exp", [shifted])
    total = b.node("ReduceSum", [e, b.ints(axes)], keepdims=1)
    if log:
        return b.node("Sub", [shifted, b.node("Log", [total])])
    return b.node("Div", [e, total])


def _pads(padding: Any) -> list[int]:
    """graphc's ((top, bottom), (left, right)) as ONNX [top, left, bottom, right]."""
    (top, bottom), (left, right) = padding
    return [top, left, bottom, right]


@lowering("conv2d")
def _conv2d(b: _Builder, t: Tensor) -> str:
    x, w = t.inputs
    a = t.attr
    return b.node("Conv", [b.input_as(x, t.dtype), b.input_as(w, t.dtype)],
                  kernel_shape=list(w.shape[2:]), strides=list(a["stride"]),
                  pads=_pads(a["padding"]), dilations=list(a["dilation"]), group=a["groups"])


@lowering("max_pool2d")
def _max_pool2d(b: _Builder, t: Tensor) -> str:
    a = t.attr
    return b.node("MaxPool", [b.value(t.inputs[0])], kernel_shape=list(a["kernel"]),
                  strides=list(a["stride"]), pads=_pads(a["padding"]),
                  dilations=list(a["dilation"]))


@lowering("avg_pool2d")
def _avg_pool2d(b: _Builder, t: Tensor) -> str:
    a = t.attr
    return b.node("AveragePool", [b.value(t.inputs[0])], kernel_shape=list(a["kernel"]),
                  strides=list(a["stride"]), pads=_pads(a["padding"]),
                  count_include_pad=int(a["count_include_pad"]))


@lowering("col2im")
def _col2im(b: _Builder, t: Tensor) -> str:
    """graphc's (N, C, kh·kw, OH, OW) windows are ONNX Col2Im's (N, C·kh·kw, OH·OW)."""
    (cols,) = t.inputs
    a = t.attr
    n, c, k = cols.shape[:3]
    blocks = b.node("Reshape", [b.value(cols), b.shape([n, _product(c, k), -1])])
    return b.node("Col2Im", [blocks, b.ints(a["image_size"]), b.ints(a["kernel"])],
                  strides=list(a["stride"]), pads=_pads(a["padding"]),
                  dilations=list(a["dilation"]))


def _product(a: int | str, b: int | str) -> int | str:
    return a * b if isinstance(a, int) and isinstance(b, int) else f"{a}*{b}"


# -- random draws: same distributions, not the same numbers as graphc's generator --

@lowering("uniform_like", "normal_like", "bernoulli_like")
def _random(b: _Builder, t: Tensor) -> str:
    a, like = t.attr, b.value(t.inputs[0])
    seed, elem = float(a["key"] % 2**24), dtypes.to_onnx(t.dtype)
    if t.op.name == "uniform_like":
        return b.node("RandomUniformLike", [like], dtype=elem, low=float(a["low"]),
                      high=float(a["high"]), seed=seed)
    if t.op.name == "normal_like":
        return b.node("RandomNormalLike", [like], dtype=elem, mean=float(a["mean"]),
                      scale=float(a["std"]), seed=seed)
    # u < p for u uniform on [0, 1), as graphc draws it (onnxruntime 1.32's Bernoulli
    # gives 1 with probability 1 - p)
    u = b.node("RandomUniformLike", [like], dtype=dtypes.to_onnx("float64"), seed=seed)
    hits = b.node("Less", [u, b.const(a["p"], "float64")])
    return b.node("Cast", [hits], to=elem)


def exportable_ops() -> tuple[str, ...]:
    """The graphc ops ``save`` lowers (directly, by formula or by expansion)."""
    from graphc.ops.base import ALL_OPS

    return tuple(sorted(n for n, op in ALL_OPS.items()
                        if n in _LOWERINGS or isinstance(op, Elementwise)
                        or hasattr(op, "expand")))


__all__ = ["DEFAULT_OPSET", "OnnxExportError", "exportable_ops", "save"]
