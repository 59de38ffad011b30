"""The renderer shim: DOT text in, SVG or PNG bytes out, on any machine.

Tries, in order: the system Graphviz ``dot`` on ``PATH``; the ``graphviz-pure``
executable (a static renderer installed with graphc, so SVG works after ``pip
install`` alone) next to the running Python, then on ``PATH``. Every run has a
timeout, so a drawing never hangs. With no renderer at all, ``RendererNotFound``
says how to get one, and ``graphc.viz.save`` leaves the ``.dot`` file behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Seconds a render may take before it is stopped (large graphs are collapsed well
#: before they get near this).
TIMEOUT_SECONDS = 60.0
#: Output formats every renderer we use can write.
FORMATS = ("svg", "png")
#: Resolution of PNG output: twice the 72 dpi default, so text stays crisp.
PNG_DPI = 144

PURE_NAME = "graphviz-pure"


class RenderError(RuntimeError):
    """The renderer failed or took too long."""


class RendererNotFound(RenderError):
    """Neither ``dot`` nor ``graphviz-pure`` could be found."""


def find_renderer() -> str | None:
    """The path of the first renderer found: system ``dot``, then ``graphviz-pure`` beside
    ``sys.executable``, then ``graphviz-pure`` on ``PATH``; ``None`` if there is none."""
    system_dot = shutil.which("dot")
    if system_dot:
        return system_dot
    exe_suffix = ".exe" if os.name == "nt" else ""
    beside_python = Path(sys.executable).parent / f"{PURE_NAME}{exe_suffix}"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which(PURE_NAME)


def how_to_render(dot_path: str | Path | None = None) -> str:
    """The advice a user without a renderer needs."""
    source = str(dot_path) if dot_path else "graph.dot"
    saved = f"the graph is saved as {dot_path}; " if dot_path else ""
    return (f"no Graphviz renderer found (looked for `dot` on PATH and `{PURE_NAME}` next to "
            f"{sys.executable} and on PATH); {saved}install one with `pip install {PURE_NAME}` "
            f"(or your system's graphviz package), or render it elsewhere with "
            f"`dot -Tsvg {source} -o graph.svg`")


def render(source: str, fmt: str, *, engine: str = "dot",
           timeout: float = TIMEOUT_SECONDS) -> bytes:
    """Lay out and render DOT ``source`` to ``fmt`` (``"svg"`` or ``"png"``) bytes.

    Raises
    ------
    RendererNotFound
        No renderer is installed.
    RenderError
        The renderer exited with an error, or ran longer than ``timeout`` seconds.
    """
    if fmt not in FORMATS:
        raise ValueError(f"cannot render to {fmt!r}; formats: {', '.join(FORMATS)} "
                         "(or save the .dot source)")
    exe = find_renderer()
    if exe is None:
        raise RendererNotFound(how_to_render())
    command = [exe, f"-K{engine}", f"-T{fmt}"]
    if fmt == "png":
        command.append(f"-Gdpi={PNG_DPI}")
    try:
        done = subprocess.run(command, input=source.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{Path(exe).name} took longer than {timeout:g} s to lay out the "
                          "graph; collapse scopes (collapse='auto' or a scope name) or lower "
                          "max_nodes") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"{Path(exe).name} failed (exit status {done.returncode}): "
                          f"{message}")
    return done.stdout
