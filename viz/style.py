"""How things look: colours, shapes, fonts, and the text of labels.

Every visual decision of the drawings lives here, so the builder only says *what* a
node is. Labels are Graphviz HTML-like labels (``<...>``), so one node can show its
op in bold, its value in green and its gradient in red, the colours of the lecture
convention ("green: the value, red: the partial derivative").
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.ops.leaves import constant_value
from graphc.tensor import Tensor
from graphc.types import format_shape as format_shape  # (4, 3), (batch, 4), (3,), ()

FONT = "Helvetica"
MONO_FONT = "Courier"
FONT_SIZE = "11"
SMALL_FONT_SIZE = "9"
TITLE_FONT_SIZE = "14"

VALUE_COLOR = "#15803d"  # green: forward values
GRAD_COLOR = "#b91c1c"  # red: gradients
#: The same, on the dark fills of the gradient overlay.
VALUE_COLOR_ON_DARK = "#86efac"
GRAD_COLOR_ON_DARK = "#fca5a5"
MUTED_COLOR = "#6b7280"  # grey: types, attributes, edge labels
INK = "#1f2937"  # text and outlines
BACKWARD_COLOR = "#dc2626"  # outline of nodes of the backward pass
FUSED_COLOR = "#7c3aed"  # fused kernels

GRAPH_ATTRS = {
    "fontname": FONT, "fontsize": TITLE_FONT_SIZE, "labelloc": "t", "labeljust": "l",
    "nodesep": "0.25", "ranksep": "0.4", "bgcolor": "white", "pad": "0.25",
}
NODE_ATTRS = {"fontname": FONT, "fontsize": FONT_SIZE, "color": INK, "fontcolor": INK,
              "penwidth": "1.2", "margin": "0.12,0.05"}
EDGE_ATTRS = {"fontname": FONT, "fontsize": SMALL_FONT_SIZE, "fontcolor": MUTED_COLOR,
              "color": "#4b5563", "arrowsize": "0.7"}

#: Node attributes by kind. Kinds differ in shape as well as colour, so the drawing
#: reads in greyscale too: inputs are (square) boxes, params cylinders (storage: they
#: hold a value between calls), constants notes, ops rounded boxes (compact for the
#: several lines of a value and a gradient).
KIND_ATTRS: dict[str, dict[str, str]] = {
    "input": {"shape": "box", "style": "filled", "fillcolor": "#dbeafe",
              "color": "#1d4ed8"},
    "param": {"shape": "cylinder", "style": "filled", "fillcolor": "#fef3c7",
              "color": "#b45309"},
    "constant": {"shape": "note", "style": "filled", "fillcolor": "#f3f4f6",
                 "color": "#9ca3af", "fontsize": SMALL_FONT_SIZE},
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "white"},
    "collapsed": {"shape": "box3d", "style": "filled", "fillcolor": "#e5e7eb",
                  "color": "#4b5563"},
    "elided": {"shape": "box", "style": "dashed,rounded", "color": MUTED_COLOR,
               "fontcolor": MUTED_COLOR},
    "instr": {"shape": "ellipse", "style": "filled", "fillcolor": "#ede9fe",
              "color": FUSED_COLOR, "fontsize": SMALL_FONT_SIZE, "height": "0.3",
              "margin": "0.04,0.02"},
}

#: Extra attributes for a node of the backward pass (added to its kind's).
BACKWARD_ATTRS = {"color": BACKWARD_COLOR, "penwidth": "1.6"}
#: A graph output gets a double outline.
OUTPUT_ATTRS = {"peripheries": "2"}

#: Clusters: scopes are light grey boxes, nested ones a shade darker.
SCOPE_FILLS = ("#f9fafb", "#f3f4f6", "#e5e7eb", "#d1d5db")
SECTION_ATTRS = {
    "forward": {"style": "rounded", "color": "#9ca3af"},
    "backward": {"style": "rounded,dashed", "color": BACKWARD_COLOR},
}
FUSED_ATTRS = {"style": "dashed,rounded", "color": FUSED_COLOR, "fontcolor": FUSED_COLOR,
               "fontsize": SMALL_FONT_SIZE}

#: Edges: ordinary data flow, a param's training update, a gradient's link to the
#: forward node it differentiates (dotted, red, no arrow; drawn from the forward node,
#: which always comes first in the data flow, so it never loops back).
UPDATE_EDGE = {"style": "dashed", "color": "#b45309", "fontcolor": "#b45309",
               "constraint": "false", "label": "update"}
GRADIENT_LINK_EDGE = {"style": "dotted", "color": BACKWARD_COLOR, "dir": "none",
                      "penwidth": "1.2"}
FUSED_BODY_EDGE = {"color": FUSED_COLOR, "arrowsize": "0.5"}

#: Symbols for arithmetic, as the op appears in a lecture's figure.
OP_SYMBOLS = {"add": "+", "sub": "−", "mul": "×", "div": "÷", "neg": "−", "matmul": "@",
              "pow": "^", "square": "x²", "sqrt": "√", "reciprocal": "1/x", "maximum": "max",
              "minimum": "min", "less": "<", "less_equal": "≤", "greater": ">",
              "greater_equal": "≥", "equal": "=", "not_equal": "≠"}
#: Binary ops written infix when one operand is a constant written into the label.
INFIX_OPS = frozenset(("add", "sub", "mul", "div", "pow", "maximum", "minimum", "less",
                       "less_equal", "greater", "greater_equal", "equal", "not_equal"))
#: Attributes that are bookkeeping, not meaning (or too long for a label).
HIDDEN_ATTRS = frozenset(("name", "uid", "key", "program", "kernel", "compute", "dtype",
                          "params"))
MAX_ATTR_TEXT = 28

_DTYPE_ABBREVIATIONS = {"float16": "f16", "float32": "f32", "float64": "f64", "bool": "bool"}


def esc(text: Any) -> str:
    """``text`` safe inside an HTML-like label."""
    return html.escape(str(text), quote=True)


def html_label(*lines: str) -> str:
    """An HTML-like label of already escaped/marked-up lines, centred."""
    return "<" + "<br/>".join(line for line in lines if line) + ">"


def bold(text: str) -> str:
    return f"<b>{esc(text)}</b>"


def colored(markup: str, color: str, size: str | None = None) -> str:
    size_attr = f' point-size="{size}"' if size else ""
    return f'<font color="{color}"{size_attr}>{markup}</font>'


def small(text: str) -> str:
    return colored(esc(text), MUTED_COLOR, SMALL_FONT_SIZE)


def dtype_abbreviation(dtype: str) -> str:
    """``float32`` -> ``f32``, ``int64`` -> ``i64``, ``uint8`` -> ``u8``."""
    if dtype in _DTYPE_ABBREVIATIONS:
        return _DTYPE_ABBREVIATIONS[dtype]
    return dtype.replace("uint", "u").replace("int", "i")


def type_text(t: Tensor) -> str:
    """An edge's label: dtype and shape of the tensor flowing along it (``f32 (4, 3)``)."""
    return f"{dtype_abbreviation(t.dtype)} {format_shape(t.shape)}"


def format_number(v: Any) -> str:
    """Three decimals in the everyday range, scientific notation outside it."""
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if v == 0:
        return "0.000"  # also for -0.0
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:.3f}"
    return f"{v:.2e}"


def summarize(array: np.ndarray, summary: str, first: int = 4) -> str:
    """A one-line summary of a value: scalars in full; tensors by ``summary``:
    ``"stats"`` (mean and range) or ``"values"`` (the first few, flattened)."""
    a = np.asarray(array)
    if a.size == 1:
        return format_number(a.reshape(()).item())
    if a.size == 0:
        return "empty"
    if summary == "values" or a.dtype.kind == "b":
        head = ", ".join(format_number(v) for v in a.reshape(-1)[:first].tolist())
        return f"[{head}{', …' if a.size > first else ''}]"
    mean = format_number(float(np.mean(a, dtype=np.float64)))
    return f"μ {mean}  [{format_number(a.min())}, {format_number(a.max())}]"


def format_constant(v: Any) -> str:
    """A constant written into an op's label: as short as exact enough (``1``, ``0.5``)."""
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    return f"{float(v):.4g}" if isinstance(v, float | np.floating) else str(v)


def operation_text(op: str, operands: Sequence[str | None] = ()) -> str:
    """The op as a lecture's figure shows it: its symbol (``×``) or name (``sigmoid``),
    with constant operands written in: ``+ 1`` is x + 1, ``1 −`` is 1 − x,
    ``where(·, ·, 0)`` marks with ``·`` where the drawn inputs go."""
    symbol = OP_SYMBOLS.get(op, op)
    if all(o is None for o in operands):
        return symbol
    if len(operands) == 2 and op in INFIX_OPS:
        left, right = operands
        if left is None:
            return f"{symbol} {right}"
        if right is None:
            return f"{left} {symbol}"
    return f"{op}({', '.join('·' if o is None else o for o in operands)})"


def attrs_text(node: Tensor) -> str:
    """The attributes that change what an op means (``axis=(1,)``), short and readable."""
    parts = []
    for key, value in node.attrs:
        if key in HIDDEN_ATTRS or value is None or value is False or value == ():
            continue
        shown = format_shape(value) if isinstance(value, tuple) else repr(value) \
            if isinstance(value, str) else value
        text = f"{key}={shown}"
        if len(text) <= MAX_ATTR_TEXT:
            parts.append(text)
    return ", ".join(parts)


def leaf_title(node: Tensor) -> str:
    """An input's or param's name; a constant's value."""
    if node.op.name == "constant":
        return summarize(constant_value(node), "values")
    return node.name or node.op.name
