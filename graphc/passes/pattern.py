"""Patterns that read like the algebra they rewrite.

A pattern is built from ``Var``\\ s, numbers and ``op.<name>(...)`` calls, with the
usual operators::

    x, y = Var("x"), Var("y")
    x * 1             # mul(x, 1): any node times a constant equal to 1 everywhere
    op.log(op.softmax(x, axis=Var("axis")))
    x - x             # the same node twice (hash-consing makes equal subterms one node)

``match(pattern, node)`` returns the bindings (``Var`` name → tensor or attribute
value) or ``None``. Commutative ops match either way round. ``instantiate``
builds a pattern back into graph nodes from bindings, so a replacement can be a
pattern too: ``x * 1 → x``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc.ops.leaves import constant_value
from graphc.tensor import Tensor

#: Ops whose two inputs may be swapped.
COMMUTATIVE = frozenset(("add", "mul", "maximum", "minimum", "equal", "not_equal",
                         "logical_and", "logical_or", "logical_xor"))

Bindings = dict[str, Any]


class _Algebra:
    """Operators on patterns build patterns."""

    def __add__(self, other): return Pat("add", (self, other))
    def __radd__(self, other): return Pat("add", (other, self))
    def __sub__(self, other): return Pat("sub", (self, other))
    def __rsub__(self, other): return Pat("sub", (other, self))
    def __mul__(self, other): return Pat("mul", (self, other))
    def __rmul__(self, other): return Pat("mul", (other, self))
    def __truediv__(self, other): return Pat("div", (self, other))
    def __rtruediv__(self, other): return Pat("div", (other, self))
    def __pow__(self, other): return Pat("pow", (self, other))
    def __neg__(self): return Pat("neg", (self,))


@dataclass(frozen=True, eq=False)
class Var(_Algebra):
    """Matches any node (or attribute value) satisfying ``where``; binds it to ``name``."""

    name: str
    where: Callable[[Any], bool] | None = None

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False)
class Pat(_Algebra):
    """Matches a node of op ``op`` whose inputs match ``args`` and whose attributes
    match ``attrs`` (attributes not named are not looked at)."""

    op: str
    args: tuple[Any, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.attrs.items()]
        return f"{self.op}({', '.join(parts)})"


class _OpPatterns:
    """``op.exp(x)`` is the pattern ``Pat("exp", (x,))``."""

    def __getattr__(self, name: str) -> Callable[..., Pat]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **attrs: Pat(name, args, attrs)


op = _OpPatterns()


def root_op(pattern: Any) -> str | None:
    """The op a node must have to match (``None``: any node)."""
    return pattern.op if isinstance(pattern, Pat) else None


def is_constant_equal_to(node: Tensor, number: float) -> bool:
    """Is ``node`` a constant with every element equal to ``number``?"""
    array = constant_value(node)
    return array is not None and array.size > 0 and bool(np.all(array == number))


def match(pattern: Any, node: Any, bindings: Bindings | None = None) -> Bindings | None:
    """Bindings under which ``pattern`` equals ``node``, or ``None``."""
    found = dict(bindings) if bindings else {}
    if _backtracks(pattern):
        return next((dict(found) for _ in _matches(pattern, node, found)), None)
    return found if _match(pattern, node, found) else None


_BACKTRACKS: weakref.WeakKeyDictionary[Pat, bool] = weakref.WeakKeyDictionary()


def _backtracks(pattern: Any) -> bool:
    """Does matching need to search? Only when a commutative op sits below the root and
    a Var occurs twice: which order the inner op matched in decides whether the rest
    can match (``add(mul(x, y), x)`` against ``a·b + b``). Other patterns take the
    single-pass matcher."""
    if not isinstance(pattern, Pat):
        return False
    if pattern not in _BACKTRACKS:
        names: list[str] = []
        nested = []

        def walk(p: Any, depth: int) -> None:
            if isinstance(p, Var):
                names.append(p.name)
            elif isinstance(p, Pat):
                nested.append(depth > 0 and p.op in COMMUTATIVE)
                for a in (*p.args, *p.attrs.values()):
                    walk(a, depth + 1)

        walk(pattern, 0)
        _BACKTRACKS[pattern] = any(nested) and len(names) != len(set(names))
    return _BACKTRACKS[pattern]


def _matches(pattern: Any, node: Any, found: Bindings) -> Iterator[None]:
    """Every way ``pattern`` matches ``node``: each time it yields, ``found`` holds one
    set of bindings; they are undone before the next."""
    if isinstance(pattern, Pat):
        if not isinstance(node, Tensor) or node.op.name != pattern.op \
                or len(node.inputs) != len(pattern.args):
            return
        before = len(found)
        if not pattern.attrs or _match_attrs(pattern, node, found):
            orders = [pattern.args]
            if pattern.op in COMMUTATIVE and len(pattern.args) == 2:
                orders.append(pattern.args[::-1])
            for args in orders:
                yield from _matches_all(args, node.inputs, found)
        for key in list(found)[before:]:
            del found[key]
    elif isinstance(pattern, Var) and pattern.name not in found:
        if pattern.where is None or pattern.where(node):
            found[pattern.name] = node
            yield
            del found[pattern.name]
    elif _match(pattern, node, found):  # a bound Var or a number: binds nothing
        yield


def _matches_all(patterns: tuple, nodes: tuple, found: Bindings) -> Iterator[None]:
    if not patterns:
        yield
        return
    for _ in _matches(patterns[0], nodes[0], found):
        yield from _matches_all(patterns[1:], nodes[1:], found)


def _match(pattern: Any, node: Any, found: Bindings) -> bool:
    """Match, adding bindings to ``found``; on failure ``found`` may hold partial ones
    (callers that try alternatives roll back, see ``_match_all``)."""
    if isinstance(pattern, Pat):
        if not isinstance(node, Tensor) or node.op.name != pattern.op \
                or len(node.inputs) != len(pattern.args):
            return False
        if pattern.attrs and not _match_attrs(pattern, node, found):
            return False
        if pattern.op in COMMUTATIVE and len(pattern.args) == 2:
            return _match_all(pattern.args, node.inputs, found) or \
                _match_all(pattern.args[::-1], node.inputs, found)
        return _match_all(pattern.args, node.inputs, found)
    if isinstance(pattern, Var):
        if pattern.name in found:
            return found[pattern.name] is node or (
                not isinstance(node, Tensor) and found[pattern.name] == node)
        if pattern.where is not None and not pattern.where(node):
            return False
        found[pattern.name] = node
        return True
    if isinstance(pattern, bool | int | float):
        if isinstance(node, Tensor):
            return is_constant_equal_to(node, pattern)
        return node == pattern
    raise TypeError(f"not a pattern: {pattern!r}")


def _match_all(patterns: tuple, nodes: tuple, found: Bindings) -> bool:
    """Match pairwise; on failure, undo the bindings this call added."""
    before = len(found)
    for p, n in zip(patterns, nodes):  # noqa: B905 - lengths checked by the caller
        if not _match(p, n, found):
            for key in list(found)[before:]:  # dicts keep insertion order
                del found[key]
            return False
    return True


def _match_attrs(pattern: Pat, node: Tensor, found: Bindings) -> bool:
    attrs = node.attr
    return all(key in attrs and _match(p, attrs[key], found) for key, p in pattern.attrs.items())


def instantiate(pattern: Any, bindings: Bindings) -> Any:
    """Build ``pattern`` as graph nodes (or an attribute value) from ``bindings``."""
    from graphc.ops.base import ALL_OPS

    if isinstance(pattern, Var):
        return bindings[pattern.name]
    if isinstance(pattern, Pat):
        args = [instantiate(a, bindings) for a in pattern.args]
        attrs = {k: instantiate(v, bindings) for k, v in pattern.attrs.items()}
        return ALL_OPS[pattern.op](*args, **attrs)
    return pattern
