"""``Drawing``: a ``graphviz.Digraph`` that renders through graphc's renderer shim.

It is a plain Digraph for building (``.source`` is the DOT text, ``.node``/``.edge``
work), but ``pipe`` and ``render`` go through ``graphc.viz.render`` (system ``dot``,
else ``graphviz-pure``, with a timeout) instead of requiring a system Graphviz, and
Jupyter shows it inline as SVG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import graphviz

from graphc.viz import render as shim

SVG_MIME = "image/svg+xml"
PNG_MIME = "image/png"


class Drawing(graphviz.Digraph):
    """A drawn graph. ``str(d)`` / ``d.source`` is DOT; ``d.pipe("svg")`` renders;
    ``d.render("name", format="png")`` writes ``name`` (DOT) and ``name.png``.

    Besides the Digraph, it records what the drawing left out, for people and tests:
    ``collapsed`` (the scopes folded into boxes), ``auto_collapsed`` (whether the folding
    was automatic, the graph having more than ``max_nodes`` nodes), ``elided`` (how many
    nodes were left out entirely) and ``node_count`` (nodes of the graph drawn).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("format", "svg")
        super().__init__(*args, **kwargs)
        self.collapsed: tuple[str, ...] = ()
        self.auto_collapsed = False
        self.elided = 0
        self.node_count = 0

    # -- rendering ------------------------------------------------------------------------------
    def pipe(self, format: str | None = None, renderer: str | None = None,
             formatter: str | None = None, neato_no_op: Any = None, quiet: bool = False, *,
             engine: str | None = None, encoding: str | None = None,
             timeout: float = shim.TIMEOUT_SECONDS) -> Any:
        """Render to ``format`` (default: the drawing's, ``svg``); bytes, or ``str`` when an
        ``encoding`` is given. Renderer options of ``graphviz`` are not supported."""
        _no_renderer_options(renderer, formatter, neato_no_op)
        data = shim.render(self.source, format or self.format or "svg",
                           engine=engine or self.engine, timeout=timeout)
        return data.decode(encoding) if encoding else data

    def render(self, filename: str | os.PathLike | None = None,
               directory: str | os.PathLike | None = None, view: bool = False,
               cleanup: bool = False, format: str | None = None, renderer: str | None = None,
               formatter: str | None = None, neato_no_op: Any = None, quiet: bool = False,
               quiet_view: bool = False, *, outfile: str | os.PathLike | None = None,
               engine: str | None = None, raise_if_result_exists: bool = False,
               overwrite_source: bool = False, timeout: float = shim.TIMEOUT_SECONDS) -> str:
        """Save the DOT source to ``filename`` and render it beside, as ``graphviz`` does:
        ``d.render("fxyz", format="svg")`` writes ``fxyz`` and ``fxyz.svg``; with
        ``outfile="fxyz.png"`` the format comes from its suffix. Returns the rendered path.

        Without a renderer, the source is still written and ``RendererNotFound`` says how
        to render it.
        """
        _no_renderer_options(renderer, formatter, neato_no_op)
        if outfile is not None:
            out = Path(outfile)
            fmt = format or out.suffix.lstrip(".") or self.format
            if filename is None:
                filename = out.with_suffix(".gv").name
                directory = directory if directory is not None else out.parent
        else:
            fmt = format or self.format
        source_path = Path(self.save(filename, directory=directory))
        if outfile is None:
            out = source_path.with_name(f"{source_path.name}.{fmt}")
        if out.resolve() == source_path.resolve() and not overwrite_source:
            raise ValueError(f"the output {out} would overwrite the DOT source; pass "
                             "overwrite_source=True to allow it")
        if raise_if_result_exists and out.exists():
            raise FileExistsError(f"{out} exists")
        try:
            data = shim.render(self.source, fmt, engine=engine or self.engine, timeout=timeout)
        except shim.RendererNotFound:
            raise shim.RendererNotFound(shim.how_to_render(source_path)) from None
        out.write_bytes(data)
        if cleanup:
            source_path.unlink()
        if view or quiet_view:
            graphviz.view(out, quiet=quiet_view)
        return str(out)

    # -- Jupyter --------------------------------------------------------------------------------
    def _repr_svg_(self) -> str:
        return self.pipe(format="svg", encoding="utf-8")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None,
                          **_: Any) -> dict[str, Any]:
        wanted = set(include) if include is not None else {SVG_MIME}
        wanted -= set(exclude or ())
        bundle: dict[str, Any] = {}
        if SVG_MIME in wanted:
            bundle[SVG_MIME] = self._repr_svg_()
        if PNG_MIME in wanted:
            bundle[PNG_MIME] = self.pipe(format="png")
        return bundle


def _no_renderer_options(renderer: Any, formatter: Any, neato_no_op: Any) -> None:
    if renderer is not None or formatter is not None or neato_no_op is not None:
        raise ValueError("graphc drawings render with the default renderer; renderer, "
                         "formatter and neato_no_op are not supported")
