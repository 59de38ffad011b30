"""The optimizer: every pass is Graph → Graph.

The pipeline, by ``level``:

====  ===========================================================================
0     nothing
1     ``canonicalize``: constant folding, algebraic identities, dead code (rebuilding
      from the outputs drops it) and common subexpressions (hash-consing merges them)
2     + ``stabilize`` (log(softmax) → log_softmax, ...) and ``specialize`` (dense
      layers, x·x → square, division by a constant → multiplication)
3     + ``fuse``: maximal elementwise subgraphs become one kernel (the default)
====  ===========================================================================

``inference=True`` first runs the ``inference`` phase: params become constants
(their current values), dropout is removed and batch norm is folded into the
layer before it. Later phases keep the canonical rules on, so what one phase
exposes (a constant, an ``x * 1``) is cleaned up at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from graphc.graph import Graph, toposort

# the rule modules register their rules when imported
from graphc.passes import canonicalize as _canonicalize  # noqa: F401
from graphc.passes import inference as _inference  # noqa: F401
from graphc.passes import specialize as _specialize  # noqa: F401
from graphc.passes import stabilize as _stabilize  # noqa: F401
from graphc.passes.engine import RULES, RewriteError, Rule, rewrite, rule, rules_in
from graphc.passes.report import PassReport, Report
from graphc.tensor import Tensor

DEFAULT_LEVEL = 3


def run_pipeline(graph: Graph, *, level: int = DEFAULT_LEVEL, inference: bool = False,
                 exclude: Iterable[str] = ()) -> tuple[Graph, Report]:
    """Optimize ``graph``; return the new graph and the report of every pass."""
    from graphc.passes import fusion

    if level not in (0, 1, 2, 3):
        raise ValueError(f"optimization level must be 0, 1, 2 or 3, got {level!r}")
    exclude = tuple(exclude)
    unknown = set(exclude) - set(RULES) - {"fuse"}
    if unknown:
        raise ValueError(f"exclude names unknown rules: {sorted(unknown)}")
    rule_names = tuple(name for name in exclude if name != "fuse")
    report = Report()
    phases: list[tuple[str, ...]] = []
    if inference:
        phases.append(("inference", "canonicalize"))
    if level >= 1:
        phases.append(("canonicalize",))
    if level >= 2:
        phases += [("stabilize", "canonicalize"), ("specialize", "canonicalize")]
    done: list[Rule] = []  # rules at a fixed point on the graph so far
    for phase in phases:
        rules = rules_in(phase, rule_names)
        graph, step = rewrite(graph, rules, name=phase[0], settled=done)
        report.passes.append(step)
        done = [r for r in rules if r.phase == "canonicalize"]
    if level >= 3 and "fuse" not in exclude:
        graph, step = fusion.fuse(graph)
        report.passes.append(step)
    return graph, report


def optimize(target: Graph | Tensor | Sequence[Tensor], *, level: int = DEFAULT_LEVEL,
             inference: bool = False, exclude: Iterable[str] = (),
             explain: bool = False) -> Any:
    """The optimized form of a graph, for inspection and drawing.

    Parameters
    ----------
    target : Graph, Tensor or sequence of Tensor
        What to optimize. Tensors come back as tensors, in the same structure.
    level : int
        0 (nothing) to 3 (everything, the default); see ``graphc.passes``.
    inference : bool
        Also fold params into constants, remove dropout and fold batch norm.
    exclude : iterable of str
        Names of rules not to apply (``["mul_one"]``); ``"fuse"`` skips fusion.
    explain : bool
        Return ``(result, report)``; ``print(report)`` shows what each pass did.
    """
    if isinstance(target, Graph):
        graph, report = run_pipeline(target, level=level, inference=inference,
                                     exclude=exclude)
        result: Any = graph
    else:
        single = isinstance(target, Tensor)
        outputs = [target] if single else list(target)
        inputs = [n for n in toposort(outputs) if n.op.name == "input"]
        graph, report = run_pipeline(Graph.build(inputs, outputs), level=level,
                                     inference=inference, exclude=exclude)
        result = graph.outputs[0] if single else type(target)(graph.outputs) \
            if isinstance(target, tuple | list) else list(graph.outputs)
    return (result, report) if explain else result


__all__ = ["optimize", "run_pipeline", "rule", "Rule", "RULES", "rules_in", "rewrite",
           "Report", "PassReport", "RewriteError"]
