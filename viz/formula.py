"""Formulas of scalar graphs: LaTeX source, and a one-line form for a drawing's title.

Both go through ``gx.to_sympy`` (sympy is imported only when a formula is asked for).
"""

from __future__ import annotations

from typing import Any

from graphc.sympy_bridge import latex as graph_latex
from graphc.sympy_bridge import to_sympy
from graphc.tensor import Tensor
from graphc.viz.scene import as_outputs

#: sympy's ASCII operators, as a reader writes them.
_READABLE = (("**", "^"), ("*", "·"), ("-", "−"))


def single_output(target: Any, what: str) -> Tensor:
    """The one output of ``target`` (a tensor, a one-tensor list, a graph, a compiled
    function); a clear error otherwise."""
    if isinstance(target, Tensor):
        return target
    outputs = as_outputs(target)[0]
    if len(set(outputs)) != 1:
        raise ValueError(f"{what} needs a graph with one output, this one has {len(outputs)}")
    return outputs[0]


def latex(target: Any, **options: Any) -> str:
    """LaTeX source of a scalar graph's formula (``options`` go to ``sympy.latex``)."""
    return graph_latex(single_output(target, "latex"), **options)


def formula_text(f: Tensor, name: str = "f") -> str:
    """``f = (x + y)·(y − z)``: the formula on one line, for a title."""
    text = str(to_sympy(f))
    for ascii_op, readable in _READABLE:
        text = text.replace(ascii_op, readable)
    return f"{name} = {text}"
