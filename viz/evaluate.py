"""Every node's value, and the gradient of the output with respect to every node.

One compiled call computes them all: the drawn nodes and the gradient nodes (built by
``backprop`` from the output to every node, so intermediates get gradients too) are
the outputs of a single graph, run by the numpy backend without optimization, so each
value is exactly the node's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc.compile import compile as compile_graph
from graphc.errors import ArgumentError
from graphc.ops.leaves import constant_value
from graphc.tensor import Tensor


@dataclass(frozen=True)
class Evaluation:
    """``values[node]``: the node's value; ``gradients[node]``: ∂f/∂node."""

    values: dict[Tensor, np.ndarray] = field(default_factory=dict)
    gradients: dict[Tensor, np.ndarray] = field(default_factory=dict)


def bind(inputs: Sequence[Tensor], values: Mapping[Any, Any]) -> dict[Tensor, Any]:
    """``{input: value}`` from ``{input tensor or input name: value}``; every key must be
    one of ``inputs``."""
    by_name: dict[str, list[Tensor]] = {}
    for i in inputs:
        by_name.setdefault(i.name, []).append(i)
    bound: dict[Tensor, Any] = {}
    for key, value in values.items():
        if isinstance(key, Tensor):
            if key not in by_name.get(key.name, ()):
                kind = "a param (it has its value already)" if key.op.name == "param" else \
                    "not an input of the drawn graph"
                raise ArgumentError(f"values= has {key!r}, which is {kind}; the inputs are "
                                    f"{_names(inputs)}")
            bound[key] = value
        elif isinstance(key, str):
            matches = by_name.get(key, [])
            if not matches:
                raise ArgumentError(f"values= has {key!r}, which is not an input of the "
                                    f"drawn graph; the inputs are {_names(inputs)}")
            if len(matches) > 1:
                raise ArgumentError(f"the drawn graph has {len(matches)} inputs named {key!r}; "
                                    "key values= by the input tensors instead")
            bound[matches[0]] = value
        else:
            raise ArgumentError(f"values= keys are inputs or input names, got {key!r}")
    return bound


def _names(inputs: Sequence[Tensor]) -> str:
    return ", ".join(repr(i.name) for i in inputs) or "none"


def evaluate(nodes: Sequence[Tensor], inputs: Sequence[Tensor], values: Mapping[Any, Any],
             gradient_nodes: Mapping[Tensor, Tensor] | None = None) -> Evaluation:
    """Evaluate ``nodes`` and the ``gradient_nodes`` (``{node: ∂f/∂node}``) at ``values``.

    Only the inputs ``nodes`` depend on need values. Params take their current values;
    training updates are never applied.
    """
    gradient_nodes = dict(gradient_nodes or {})
    bound = bind(inputs, values)
    drawn = set(nodes)
    needed = [i for i in inputs if i in drawn]
    missing = [i for i in needed if i not in bound]
    if missing:
        raise ArgumentError(f"values= has no value for {_names(missing)}; every input of the "
                            f"drawn graph needs one (the inputs are {_names(needed)})")
    args = [bound[i] for i in needed]
    constants = {n: constant_value(n) for n in nodes if n.op.name == "constant"}
    wanted = list(dict.fromkeys([*(n for n in nodes if n not in constants),
                                 *gradient_nodes.values()]))
    results: dict[Tensor, np.ndarray] = dict(constants)
    if wanted:
        fn = compile_graph(needed, wanted, optimize=False)
        arrays = fn(*args)  # a tuple: the outputs were given as a list
        results.update(zip(wanted, (np.asarray(a) for a in arrays), strict=True))
    return Evaluation(values=results,
                      gradients={n: results[g] for n, g in gradient_nodes.items()})
