"""Canonicalize: constant folding and the algebraic identities every graph wants.

Dead code and common subexpressions need no rule: a rewritten graph is rebuilt
from its outputs (so nothing dead is kept) and nodes are hash-consed (so equal
subterms, equal constants included, are one node).
"""

from __future__ import annotations

import numpy as np

from graphc.ops.random import RandomOp
from graphc.passes.engine import rule
from graphc.passes.pattern import Var, constant_value
from graphc.tensor import constant
from graphc.types import is_static, shape_size

x = Var("x")

#: Never fold into a constant bigger than this many elements, unless no input is smaller
#: (folding must not turn a broadcast scalar into a huge array baked into the program).
FOLD_MAX_ELEMENTS = 1 << 16


def _foldable(node) -> bool:
    if not node.inputs or isinstance(node.op, RandomOp):
        return False
    if not all(i.op.name == "constant" for i in node.inputs) or not is_static(node.shape):
        return False
    size = shape_size(node.shape)
    return size <= FOLD_MAX_ELEMENTS or size <= max(shape_size(i.shape) for i in node.inputs)


@rule("constant_fold", Var("node", where=_foldable), phase="canonicalize")
def constant_fold(b):
    """An op whose inputs are all constants becomes the constant it computes (with the
    op's reference implementation; random draws are never folded)."""
    node = b["node"]
    with np.errstate(all="ignore"):
        value = node.op.impl(*(constant_value(i) for i in node.inputs), **node.attr)
    return constant(np.asarray(value, dtype=node.dtype))


rule("add_zero", x + 0, x, phase="canonicalize")
rule("sub_zero", x - 0, x, phase="canonicalize")
rule("mul_one", x * 1, x, phase="canonicalize")
rule("div_one", x / 1, x, phase="canonicalize")
