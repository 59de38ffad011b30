"""Symbolic sizes at call time: the dims arguments bind, and the dims slicing derives.

The runtime needs every size before the native call (to size buffers), so the
derived dims that the numpy backend binds while running (``"n-1"``, ``"n/2"``,
``"(n·4)-2"``, ``"n[-5:3]"``; see ``graphc.ops._dims``) are computed here from
their names, which spell how they were derived.
"""

from __future__ import annotations

import re

_SLICE = re.compile(r"(.+)\[(-?\d*):(-?\d*)(?::(-?\d+))?\]")
_DIV = re.compile(r"(.+)/(\d+)")
_OFFSET = re.compile(r"(.+?)([+-]\d+)")


def resolve(dim: int | str, dims: dict[str, int]) -> int:
    """The size of ``dim`` given the bound ``dims`` (derived names evaluated)."""
    if isinstance(dim, int):
        return dim
    if dim in dims:
        return dims[dim]
    if dim.isdigit():
        return int(dim)
    parts = _split_top(dim, "*")
    if len(parts) > 1:
        total = 1
        for p in parts:
            total *= resolve(p, dims)
        return total
    if dim.startswith("(") and dim.endswith(")") and _balanced(dim[1:-1]):
        return resolve(dim[1:-1].replace("·", "*"), dims)
    if m := _SLICE.fullmatch(dim):
        n = resolve(m[1], dims)
        bounds = [int(g) if g not in (None, "") else None for g in (m[2], m[3], m[4])]
        return len(range(n)[slice(*bounds)])
    if m := _DIV.fullmatch(dim):
        return -(-resolve(m[1], dims) // int(m[2]))
    if m := _OFFSET.fullmatch(dim):
        return max(0, resolve(m[1], dims) + int(m[2]))
    raise KeyError(dim)


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        depth += ch in "(["
        depth -= ch in ")]"
        if ch == sep and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    return parts


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0
