"""ONNX control flow (If, Loop, Scan) as static graphc graph.

A graphc graph has no control flow of its own, so control flow is resolved at
import:

- ``If`` with a condition known at import imports the chosen branch inline;
  with a run-time condition it imports both branches and selects each output
  with ``where`` (both branches must give the same dtypes and shapes).
- ``Loop`` and ``Scan`` are unrolled: the trip count (and ``Loop``'s condition
  after each iteration) must be known at import; the body is imported once per
  iteration with the iteration's values bound to its inputs.

A subgraph sees the enclosing graph's values by name: it runs on the importer's
environment extended with its own initializers and inputs, and the extension is
dropped afterwards (only the subgraph's outputs flow back out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

import graphc as gx
from graphc.onnx.importer import Value, _array
from graphc.onnx.registry import handler
from graphc.tensor import Tensor


def run_subgraph(node, graph: onnx.GraphProto, bindings: Mapping[str, Value]) -> list[Value]:
    """Import ``graph``'s nodes in a scope extending the outer one; its output values.

    ``bindings`` gives the subgraph's formal inputs their values; the outer
    environment is restored afterwards, so names defined inside do not leak.
    """
    imp = node.importer
    outer = imp.env
    imp.env = dict(outer)
    try:
        for init in graph.initializer:
            imp.env[init.name] = _array(init)
        imp.env.update(bindings)
        imp.run_nodes(graph.node)
        missing = [o.name for o in graph.output if o.name not in imp.env]
        if missing:
            raise node.error(f"subgraph {graph.name!r}: outputs {missing} are produced by no "
                             "node")
        return [imp.env[o.name] for o in graph.output]
    finally:
        imp.env = outer


def _bind(node, graph: onnx.GraphProto, values: Sequence[Value]) -> dict[str, Value]:
    names = [vi.name for vi in graph.input]
    if len(names) != len(values):
        raise node.error(f"subgraph {graph.name!r} takes {len(names)} inputs, "
                         f"the op gives it {len(values)}")
    return dict(zip(names, values, strict=True))


def _check_tensor_types(node, graph: onnx.GraphProto) -> None:
    """Sequence and optional values in a subgraph's signature are not supported."""
    for vi in list(graph.input) + list(graph.output):
        kind = vi.type.WhichOneof("value")
        if kind not in (None, "tensor_type"):
            raise node.unsupported(f"a {kind} value ({vi.name!r}) in subgraph {graph.name!r}")


def _known(v: Value | None) -> bool:
    return isinstance(v, np.ndarray)


def _stack(node, values: list[Value], axis: int = 0) -> Value:
    """Per-iteration values stacked along a new ``axis`` (arrays stay arrays)."""
    if all(_known(v) for v in values):
        return np.stack(values, axis=axis)
    return gx.stack([node.importer.tensor(v) for v in values], axis=axis)


def _index(v: Value, axis: int, i: int) -> Value:
    """``v`` at position ``i`` of ``axis`` (the axis removed)."""
    if _known(v):
        return np.take(v, i, axis=axis)
    return gx.getitem(v, (slice(None),) * axis + (i,))


def _shape_dtype(v: Value) -> tuple[tuple, str]:
    if _known(v):
        return tuple(v.shape), v.dtype.name
    return tuple(v.shape), v.dtype


@handler("If", since=1)
def if_(node):
    then_g, else_g = node.attr("then_branch"), node.attr("else_branch")
    if then_g is None or else_g is None:
        raise node.error("then_branch and else_branch are required")
    _check_tensor_types(node, then_g)
    _check_tensor_types(node, else_g)
    if node.is_const(0):
        cond = np.asarray(node.value(0))
        if cond.size != 1:
            raise node.error(f"cond must hold one value, got shape {cond.shape}")
        return tuple(run_subgraph(node, then_g if bool(cond.reshape(())) else else_g, {}))
    cond = node.input(0)
    if cond.dtype != "bool" or np.prod([d for d in cond.shape if isinstance(d, int)]) != 1:
        raise node.error(f"cond must be one bool, got {cond.dtype}{list(cond.shape)}")
    cond = gx.reshape(cond, ())
    then_v = run_subgraph(node, then_g, {})
    else_v = run_subgraph(node, else_g, {})
    if len(then_v) != len(else_v):
        raise node.error(f"branches give {len(then_v)} and {len(else_v)} outputs")
    results = []
    for k, (a, b) in enumerate(zip(then_v, else_v, strict=True)):
        if _shape_dtype(a) != _shape_dtype(b):
            raise node.unsupported(
                f"a run-time condition with output {k} of different types in the branches "
                f"({_shape_dtype(a)} vs {_shape_dtype(b)}); bind cond at import")
        results.append(gx.where(cond, node.importer.tensor(a), node.importer.tensor(b)))
    return tuple(results)


@handler("Loop", since=1)
def loop(node):
    """Unrolled: body(i, cond, v...) -> (cond, v..., scan outputs...), while i < M and cond.

    With the trip count M known and no scan outputs, the condition may be a run-time
    value: all M iterations are unrolled and each one's update is kept only while
    the condition still holds (``v = where(active, v_new, v)``, ``active &= cond``).
    Otherwise the condition must be known at import after every iteration.
    """
    body = node.attr("body")
    _check_tensor_types(node, body)
    max_trip = int(np.asarray(node.value(0)).reshape(())) if node.has(0) else None
    if max_trip is None and not node.has(1):
        raise node.unsupported("a Loop with neither trip count nor condition (infinite)")
    state = [node.inputs[k] for k in range(2, len(node.inputs))]
    if any(v is None for v in state):
        raise node.error("loop-carried inputs must all be given")
    n_state = len(state)
    n_scan = len(body.output) - 1 - n_state
    if n_scan < 0:
        raise node.error(f"body gives {len(body.output)} outputs for {n_state} loop-carried "
                         "values")
    maskable = max_trip is not None and n_scan == 0
    # active: a Python bool while known at import, else a run-time bool scalar
    active: bool | Tensor = True
    if node.has(1):
        if node.is_const(1) or not maskable:
            active = bool(np.asarray(node.value(1)).reshape(()))
        else:
            active = _scalar_bool(node, node.input(1))
    scans: list[list[Value]] = [[] for _ in range(n_scan)]
    i = 0
    limit = 1 << 16  # an unrolled graph this long is a mistake, not a model
    while active is not False and (max_trip is None or i < max_trip):
        if i >= limit:
            raise node.unsupported(f"unrolling more than {limit} iterations")
        cond_in = np.array(True) if active is True else active
        outs = run_subgraph(node, body, _bind(node, body, [np.array(i, np.int64), cond_in]
                                              + state))
        new_state = outs[1:1 + n_state]
        if active is True:
            state = new_state
        else:
            imp = node.importer
            state = [gx.where(active, imp.tensor(n), imp.tensor(o))
                     for n, o in zip(new_state, state, strict=True)]
        cond_out = outs[0]
        if _known(cond_out):
            if not bool(np.asarray(cond_out).reshape(())):
                active = False
        elif not maskable:
            raise node.unsupported("a loop condition computed at run time with scan outputs "
                                   "or no trip count (it must be known at import to unroll "
                                   "the loop)")
        else:
            c = _scalar_bool(node, cond_out)
            active = c if active is True else gx.logical_and(active, c)
        for k in range(n_scan):
            scans[k].append(outs[1 + n_state + k])
        i += 1
    if n_scan and i == 0:
        raise node.unsupported("a Loop that runs zero iterations with scan outputs")
    return tuple(state) + tuple(_stack(node, s) for s in scans)


def _scalar_bool(node, v: Value) -> Tensor:
    t = node.importer.tensor(v)
    if t.dtype != "bool":
        raise node.error(f"the loop condition must be bool, got {t.dtype}")
    return gx.reshape(t, ())


def _scan_unrolled(node, body, states: list[Value], xs: list[Value], n: int,
                   in_axes: list[int], in_dirs: list[int], out_axes: list[int],
                   out_dirs: list[int]) -> tuple[list[Value], list[Value]]:
    """Run ``body`` n times; final states and the stacked scan outputs."""
    n_state = len(states)
    n_out = len(body.output) - n_state
    outs_per: list[list[Value]] = [[None] * n for _ in range(n_out)]
    for t in range(n):
        slices = [_index(x, ax, n - 1 - t if rev else t)
                  for x, ax, rev in zip(xs, in_axes, in_dirs, strict=True)]
        outs = run_subgraph(node, body, _bind(node, body, states + slices))
        states = outs[:n_state]
        for k in range(n_out):
            pos = n - 1 - t if out_dirs[k] else t
            outs_per[k][pos] = outs[n_state + k]
    stacked = []
    for k in range(n_out):
        first = outs_per[k][0]
        ndim = first.ndim + 1
        axis = out_axes[k] + ndim if out_axes[k] < 0 else out_axes[k]
        stacked.append(_stack(node, outs_per[k], axis=axis))
    return states, stacked


def _scan_attrs(node, n_in: int, n_out: int, dirs_name: str):
    in_axes = list(node.attr("scan_input_axes", []) or [0] * n_in)
    in_dirs = list(node.attr(dirs_name, []) or [0] * n_in)
    out_axes = list(node.attr("scan_output_axes", []) or [0] * n_out)
    out_dirs = list(node.attr("scan_output_directions", []) or [0] * n_out)
    if (len(in_axes), len(in_dirs), len(out_axes), len(out_dirs)) != (n_in, n_in, n_out, n_out):
        raise node.error("scan axes/directions attributes do not match the inputs/outputs")
    return in_axes, in_dirs, out_axes, out_dirs


@handler("Scan", since=9)
def scan(node):
    """Unrolled over the scan inputs' (static) length along their scan axes."""
    body = node.attr("body")
    _check_tensor_types(node, body)
    m = node.attr("num_scan_inputs")
    vals = list(node.inputs)
    n_state = len(vals) - m
    states, xs = vals[:n_state], vals[n_state:]
    n_out = len(body.output) - n_state
    in_axes, in_dirs, out_axes, out_dirs = _scan_attrs(node, m, n_out, "scan_input_directions")
    lengths = set()
    for x, ax in zip(xs, in_axes, strict=True):
        lengths.add(x.shape[ax if ax >= 0 else ax + len(x.shape)])
    if len(lengths) != 1 or not isinstance(next(iter(lengths)), int):
        raise node.error(f"scan inputs have lengths {sorted(map(str, lengths))}, need one "
                         "static length")
    n = lengths.pop()
    in_axes = [ax if ax >= 0 else ax + len(x.shape) for x, ax in zip(xs, in_axes, strict=True)]
    if n == 0 and n_out:
        raise node.unsupported("a Scan of length 0 with scan outputs")
    final, stacked = _scan_unrolled(node, body, states, xs, n, in_axes, in_dirs, out_axes,
                                    out_dirs)
    return tuple(final) + tuple(stacked)


@handler("Scan", since=8)
def scan8(node):
    """Opset 8: inputs carry a leading batch axis; the body runs per batch row."""
    body = node.attr("body")
    _check_tensor_types(node, body)
    m = node.attr("num_scan_inputs")
    vals = list(node.inputs[1:])
    n_state = len(vals) - m
    states, xs = vals[:n_state], vals[n_state:]
    n_out = len(body.output) - n_state
    if node.attr("scan_input_axes") or node.attr("scan_output_axes"):
        raise node.error("opset-8 Scan has no scan axes attributes")
    in_dirs = list(node.attr("directions", []) or [0] * m)
    batch = xs[0].shape[0]
    n = xs[0].shape[1]
    if not isinstance(batch, int) or not isinstance(n, int):
        raise node.unsupported("symbolic batch or sequence length")
    if node.has(0):
        lens = np.asarray(node.value(0)).reshape(-1)
        if np.any(lens != n):
            raise node.unsupported("sequence_lens shorter than the sequence")
    finals: list[list[Value]] = [[] for _ in range(n_state)]
    outs: list[list[Value]] = [[] for _ in range(n_out)]
    for b in range(batch):
        st, stacked = _scan_unrolled(node, body, [_index(s, 0, b) for s in states],
                                     [_index(x, 0, b) for x in xs], n, [0] * m, in_dirs,
                                     [0] * n_out, [0] * n_out)
        for k in range(n_state):
            finals[k].append(st[k])
        for k in range(n_out):
            outs[k].append(stacked[k])
    return tuple(_stack(node, f) for f in finals) + tuple(_stack(node, o) for o in outs)
