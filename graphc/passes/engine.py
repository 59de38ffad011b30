"""The rewrite engine: named rules, grouped in phases, applied to a fixed point.

A ``Rule`` is ``pattern → replacement``: the replacement is a pattern built
from the same ``Var``\\ s, or a short function of the bindings returning a node
(or ``None`` to decline). Rules register into a phase with ``@rule`` /
``rule(...)``; ``rewrite(graph, rules)`` applies a set of them.

The driver makes bottom-up sweeps: each node is rebuilt on its already
rewritten inputs (hash-consing returns the existing node when nothing changed),
then the rules indexed by its op are tried at it until none fires. Nodes a
replacement creates are visited by the next sweep; sweeps repeat until one
fires nothing. A sweep is linear in the graph, and a rule set that does not
terminate raises ``RewriteError`` naming the rules that kept firing.

A function rule also finds ``bindings["uses"]``: how many consumers each node of
the graph has (a graph output counts as one; an upper bound, exact at the start
of each sweep), so that a rule fusing a node into its consumer can check that the
consumer is the only one and the fused node will not be computed alongside it.

Every replacement must have the matched node's type. One whose dtype differs is
cast; one whose shape only broadcasts to it is broadcast (``x * ones → x`` when
``x`` is smaller); any other mismatch declines the rewrite.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graphc.errors import GraphcError
from graphc.graph import Graph, toposort
from graphc.passes.pattern import Bindings, instantiate, match, root_op
from graphc.passes.report import PassReport
from graphc.tensor import Tensor, built_as, make_node
from graphc.types import broadcast_shapes

PHASES = ("inference", "canonicalize", "stabilize", "specialize")

#: Every registered rule, by name.
RULES: dict[str, Rule] = {}

MAX_SWEEPS = 32
MAX_LOCAL_REWRITES = 64


class RewriteError(GraphcError):
    """A rule set did not reach a fixed point (some rules undo each other)."""


@dataclass(frozen=True, eq=False)
class Rule:
    """``pattern → replacement`` in ``phase``, applied only ``when`` the guard holds."""

    name: str
    phase: str
    pattern: Any
    replacement: Any
    when: Callable[[Bindings], bool] | None = None
    doc: str = ""

    def apply(self, node: Tensor, uses: Mapping[Tensor, int] | None = None) -> Tensor | None:
        """The replacement of ``node``, or ``None`` when the rule does not apply.
        ``uses`` counts consumers in the graph being rewritten (none known: empty)."""
        bindings = match(self.pattern, node)
        if bindings is None:
            return None
        bindings["uses"] = {} if uses is None else uses
        bindings["node"] = node
        if self.when is not None and not self.when(bindings):
            return None
        with built_as(node):
            if callable(self.replacement):  # patterns are not callable; functions are
                new = self.replacement(bindings)
            else:
                new = instantiate(self.replacement, bindings)
            return None if new is None else _fit(new, node)

    def __repr__(self) -> str:
        return f"<rule {self.name}: {self.pattern!r} → {self.replacement!r}>"


def _fit(new: Any, node: Tensor) -> Tensor | None:
    """``new`` with ``node``'s exact type, or ``None`` if it cannot have it."""
    from graphc.ops import elementwise as ew
    from graphc.ops import shape as shape_ops
    from graphc.tensor import as_tensor

    new = as_tensor(new, node)
    if new.dtype != node.dtype:
        new = ew.cast(new, node.dtype)
    if new.shape != node.shape:
        try:
            if broadcast_shapes(new.shape, node.shape) != node.shape:
                return None
        except ValueError:
            return None
        new = shape_ops.broadcast_to(new, node.shape)
    return new


def rule(name: str, pattern: Any, replacement: Any = None, *, phase: str,
         when: Callable[[Bindings], bool] | None = None) -> Any:
    """Register ``pattern → replacement`` as rule ``name`` in ``phase``.

    With ``replacement`` left out, works as a decorator on the replacement function
    (``fn(bindings) -> Tensor | None``); the function's docstring documents the rule.
    """
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; phases are {PHASES}")

    def register(replacement: Any) -> Any:
        if name in RULES:
            raise ValueError(f"rule {name!r} is already registered")
        doc = getattr(replacement, "__doc__", None) if callable(replacement) else None
        RULES[name] = Rule(name, phase, pattern, replacement, when, (doc or "").strip())
        return replacement

    if replacement is None:
        return register
    register(replacement)
    return RULES[name]


def rules_in(phases: Iterable[str], exclude: Iterable[str] = ()) -> list[Rule]:
    """The registered rules of ``phases``, less those named in ``exclude``."""
    phases, excluded = set(phases), set(exclude)
    unknown = excluded - set(RULES)
    if unknown:
        raise ValueError(f"exclude names unknown rules: {sorted(unknown)}")
    return [r for r in RULES.values() if r.phase in phases and r.name not in excluded]


def rebuild(node: Tensor, inputs: tuple[Tensor, ...]) -> Tensor:
    """``node``'s op and attributes on new ``inputs`` of the same types (no type rule
    runs: rewrites preserve types, so the node's type still holds)."""
    if inputs == node.inputs:
        return node
    with built_as(node):
        return make_node(node.op, inputs, node.attrs, node.type)


def rewrite(graph: Graph, rules: list[Rule], name: str = "rewrite",
            settled: Iterable[Rule] = ()) -> tuple[Graph, PassReport]:
    """Apply ``rules`` to every node of ``graph`` until none fires.

    ``settled`` rules (also applied) are known to be at a fixed point on ``graph``
    already (an earlier phase ran them): they are tried only on nodes this pass
    changes. Likewise a later sweep tries no rule on a node an earlier sweep left as
    it was, since rules look only at a node's subgraph.
    """
    start = time.perf_counter()
    before = len(graph)
    settled = list(settled)
    fresh_only = {r.name for r in settled}
    fired: Counter = Counter()

    def index(rule_list: list[Rule]) -> Callable[[str], list[Rule]]:
        by_op: dict[str | None, list[Rule]] = {}
        for r in rule_list:
            by_op.setdefault(root_op(r.pattern), []).append(r)
        anywhere = by_op.pop(None, [])
        cache: dict[str, list[Rule]] = {}  # op name → rules to try, op-specific first

        def rules_for(op_name: str) -> list[Rule]:
            found = cache.get(op_name)
            if found is None:
                found = cache[op_name] = by_op.get(op_name, []) + anywhere
            return found
        return rules_for

    all_rules = index(rules + [r for r in settled if r not in rules])
    phase_rules = index([r for r in rules if r.name not in fresh_only])

    def rewrite_at(node: Tensor, uses: Counter, candidates: Callable) -> tuple[Tensor, int]:
        count = 0
        history: list[str] = []
        while True:
            for r in candidates(node.op.name):
                new = r.apply(node, uses)
                if new is not None and new is not node:
                    fired[r.name] += 1
                    history.append(r.name)
                    node, count = new, count + 1
                    candidates = all_rules  # a new node is tried with everything
                    break
            else:
                return node, count
            if count > MAX_LOCAL_REWRITES:
                raise RewriteError(f"{name}: rules keep rewriting one node; last fired: "
                                   f"{', '.join(history[-8:])}")

    current = graph
    examined: set[Tensor] = set()
    sweep = 0
    while sweep < MAX_SWEEPS:
        sweep += 1
        memo: dict[Tensor, Tensor] = {}
        changes = 0
        order = toposort(current.roots)
        uses = Counter(i for node in order for i in node.inputs) + Counter(current.roots)
        counted = set(order)  # nodes whose references to their inputs are in `uses`
        for node in order:
            rebuilt = rebuild(node, tuple(memo[i] for i in node.inputs))
            if rebuilt is not node:
                candidates = all_rules
            elif sweep == 1:
                candidates = phase_rules
            else:
                candidates = None if node in examined else all_rules
            new, n = (node, 0) if candidates is None else rewrite_at(rebuilt, uses, candidates)
            memo[node] = new
            changes += n
            if new is not node:  # node's consumers now read new
                uses[new] += uses[node]
                if n:  # and the nodes rules built read their inputs
                    _count_references(new, uses, counted)
                counted.add(new)
        current = Graph(current.inputs, tuple(memo[o] for o in current.outputs),
                        tuple((p, memo[v]) for p, v in current.updates))
        examined = set(memo.values())  # fixed points of every rule, unless inputs change
        if changes == 0:
            break
    if changes:
        raise RewriteError(f"{name}: no fixed point after {MAX_SWEEPS} sweeps; rules that "
                           f"fired most: {', '.join(n for n, _ in fired.most_common(5))}")
    return current, PassReport(name, fired, before, len(current),
                               time.perf_counter() - start, sweep)


def _count_references(new: Tensor, uses: Counter, counted: set[Tensor]) -> None:
    """Add the input references of ``new`` and of every node below it not yet counted."""
    stack = [new]
    while stack:
        node = stack.pop()
        if node not in counted:
            counted.add(node)
            uses.update(node.inputs)
            stack.extend(node.inputs)
