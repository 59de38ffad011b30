"""Rendering: the renderer shim, SVG and PNG output, files, and Jupyter."""

import os
import shutil
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import graphc as gx
import graphc.viz as viz
from graphc.viz import render, style

needs_renderer = pytest.mark.skipif(render.find_renderer() is None,
                                    reason="no Graphviz renderer installed")
SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture
def fxyz():
    x, y, z = gx.input("x", ()), gx.input("y", ()), gx.input("z", ())
    f = (x + y) * (y - z)
    return viz.draw(f, values={x: 1.0, y: 2.0, z: 3.0}, backward=True)


def svg_nodes(svg: bytes | str) -> dict[str, list[tuple[str, str | None]]]:
    """Each drawn node's id and its texts with their fill colours, from SVG."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    nodes = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "node":
            title = group.find(f"{SVG}title").text
            nodes[title] = [(t.text, t.get("fill")) for t in group.iter(f"{SVG}text")]
    return nodes


@needs_renderer
def test_svg_of_fxyz_has_every_node_with_green_values_and_red_gradients(fxyz):
    nodes = svg_nodes(fxyz.pipe(format="svg"))
    assert len(nodes) == 6
    texts = {texts[0][0]: texts[1:] for texts in nodes.values()}
    assert texts["×"] == [("-3.000", style.VALUE_COLOR), ("1.000", style.GRAD_COLOR)]
    assert texts["y"] == [("2.000", style.VALUE_COLOR), ("2.000", style.GRAD_COLOR)]


@needs_renderer
def test_png(fxyz):
    assert fxyz.pipe(format="png")[:8] == PNG_MAGIC


@needs_renderer
def test_jupyter_shows_svg(fxyz):
    svg = fxyz._repr_svg_()
    assert isinstance(svg, str) and svg_nodes(svg)
    bundle = fxyz._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"] and bundle["image/svg+xml"] == svg
    assert fxyz._repr_mimebundle_(include=["image/png"])["image/png"][:8] == PNG_MAGIC
    assert fxyz._repr_mimebundle_(exclude=["image/svg+xml"]) == {}


@needs_renderer
def test_render_writes_the_source_and_the_drawing_beside_it(fxyz, tmp_path):
    out = fxyz.render(tmp_path / "fxyz", format="svg")
    assert out == str(tmp_path / "fxyz.svg")
    assert (tmp_path / "fxyz").read_text() == fxyz.source
    assert svg_nodes(Path(out).read_bytes())
    png = fxyz.render(outfile=tmp_path / "sub" / "f.png", cleanup=True)
    assert Path(png).read_bytes()[:8] == PNG_MAGIC and not (tmp_path / "sub" / "f.gv").exists()


@needs_renderer
@pytest.mark.parametrize("name, magic", [("f.svg", b"<?xml"), ("f.png", PNG_MAGIC),
                                         ("f.dot", b"digraph"), ("f.gv", b"digraph")])
def test_save_picks_the_format_from_the_suffix(fxyz, tmp_path, name, magic):
    path = viz.save(fxyz, tmp_path / "new" / name)
    assert path == tmp_path / "new" / name and path.read_bytes().startswith(magic)


def test_save_draws_a_target_with_options(tmp_path):
    x = gx.input("x", ())
    path = viz.save(gx.exp(x), tmp_path / "e.dot", values={"x": 0.0})
    assert "exp" in path.read_text() and "1.000" in path.read_text()


def test_save_mistakes(fxyz, tmp_path):
    with pytest.raises(ValueError, match=r"the suffix must be one of \.svg, \.png, \.dot"):
        viz.save(fxyz, tmp_path / "f.pdf")
    with pytest.raises(TypeError, match="takes no drawing options, got values"):
        viz.save(fxyz, tmp_path / "f.svg", values={})


def executable(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def no_system_dot(monkeypatch, tmp_path):
    """A machine where nothing is on PATH and no graphviz-pure sits beside Python."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    return tmp_path


@pytest.mark.skipif(os.name == "nt", reason="shell-script stand-ins for renderers")
def test_the_renderer_search_order(no_system_dot, monkeypatch):
    assert render.find_renderer() is None
    on_path = no_system_dot / "bin"
    on_path.mkdir()
    pure_on_path = executable(on_path / "graphviz-pure", "exit 0")
    monkeypatch.setenv("PATH", str(on_path))
    assert render.find_renderer() == str(pure_on_path)
    beside_python = executable(no_system_dot / "graphviz-pure", "exit 0")
    assert render.find_renderer() == str(beside_python)
    system_dot = executable(on_path / "dot", "exit 0")
    assert render.find_renderer() == str(system_dot)


def test_without_a_renderer_save_keeps_the_dot_and_says_how_to_render(no_system_dot, fxyz):
    with pytest.raises(viz.RendererNotFound, match="pip install graphviz-pure") as error:
        viz.save(fxyz, no_system_dot / "f.svg")
    dot = no_system_dot / "f.dot"
    assert dot.read_text() == fxyz.source
    assert f"dot -Tsvg {dot}" in str(error.value)
    assert viz.save(fxyz, no_system_dot / "g.dot").exists()  # DOT needs no renderer


def test_without_a_renderer_render_keeps_the_source(no_system_dot, fxyz):
    with pytest.raises(viz.RendererNotFound, match="the graph is saved as"):
        fxyz.render(no_system_dot / "fxyz")
    assert (no_system_dot / "fxyz").read_text() == fxyz.source
    with pytest.raises(viz.RendererNotFound):
        fxyz._repr_svg_()


@pytest.mark.skipif(os.name == "nt", reason="shell-script stand-ins for renderers")
def test_a_renderer_that_hangs_is_stopped(no_system_dot, monkeypatch):
    executable(no_system_dot / "graphviz-pure", f"exec {SLEEP} 30")
    with pytest.raises(render.RenderError, match="took longer than 0.3 s"):
        render.render("digraph { a -> b }", "svg", timeout=0.3)


@needs_renderer
def test_a_renderer_error_is_reported():
    with pytest.raises(render.RenderError, match="failed"):
        render.render("digraph { a -> ", "svg")
