"""The gradient-magnitude overlay: a colour per decade of a gradient's norm.

The scale is fixed (not fitted to the graph), so two drawings compare: a norm ≤ 1e-6 is
dark blue (vanishing), around 1 is pale yellow, ≥ 1e3 dark red (exploding), one colour
per decade in between (ColorBrewer's RdYlBu, reversed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from graphc.viz.style import esc

LOWEST_DECADE = -6
HIGHEST_DECADE = 3
#: One colour per decade from 1e-6 to 1e3 (RdYlBu, 10 classes, blue = small).
PALETTE = ("#313695", "#4575b4", "#74add1", "#abd9e9", "#e0f3f8",
           "#fee090", "#fdae61", "#f46d43", "#d73027", "#a50026")
#: Fills dark enough to need white text.
DARK = frozenset(("#313695", "#4575b4", "#d73027", "#a50026"))


def gradient_norm(arrays: Iterable[np.ndarray]) -> float:
    """The Euclidean norm of all the arrays together."""
    return math.sqrt(sum(float(np.sum(np.square(np.asarray(a, np.float64)))) for a in arrays))


def decade(norm: float) -> int:
    """The palette index of ``norm``: its decade, clipped to the scale."""
    if not norm > 0:  # zero (or nan): nothing flows back, vanishing
        return 0
    exponent = round(math.log10(norm))
    return min(max(exponent, LOWEST_DECADE), HIGHEST_DECADE) - LOWEST_DECADE


def is_dark(norm: float) -> bool:
    """Is the fill of a node with gradient ``norm`` dark (so its text must be light)?"""
    return PALETTE[decade(norm)] in DARK


def node_colors(norm: float) -> dict[str, str]:
    """Fill and text colour of a node whose gradient has ``norm``."""
    fill = PALETTE[decade(norm)]
    return {"fillcolor": fill, "fontcolor": "white" if fill in DARK else "#111827",
            "style": "filled"}


def legend() -> str:
    """The legend as an HTML-like table: one coloured cell per decade."""
    cells = []
    for k, fill in enumerate(PALETTE):
        exponent = LOWEST_DECADE + k
        text = f"1e{exponent}"
        if k == 0:
            text = "≤" + text
        elif k == len(PALETTE) - 1:
            text = "≥" + text
        color = "white" if fill in DARK else "#111827"
        cells.append(f'<td bgcolor="{fill}"><font color="{color}" point-size="9">'
                     f"{esc(text)}</font></td>")
    return ('<table border="0" cellborder="0" cellspacing="1" cellpadding="3"><tr>'
            '<td><font point-size="10">gradient norm (log scale): vanishing</font></td>'
            + "".join(cells) + '<td><font point-size="10">exploding</font></td></tr></table>')
