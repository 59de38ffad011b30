"""Packaging: ``backends/`` installs as ``graphc.backends``, in editable mode and in a wheel."""

import importlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: what a wheel build never needs from the checkout
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                      ".*_cache", ".hypothesis", "*.whl")


def test_numpy_backend_imports_under_graphc():
    numpy_backend = importlib.import_module("graphc.backends.numpy")
    assert callable(numpy_backend.lower)
    assert numpy_backend.__name__ == "graphc.backends.numpy"


def test_editable_install_maps_graphc_backends_to_the_repo_backends_dir():
    def location(module: str) -> Path:
        return Path(importlib.import_module(module).__file__).resolve()

    assert location("graphc") == REPO / "graphc" / "__init__.py"
    assert location("graphc.backends") == REPO / "backends" / "__init__.py"
    assert location("graphc.backends.numpy") == REPO / "backends" / "numpy" / "__init__.py"


def test_installed_graphc_provides_backends_only_under_graphc(tmp_path):
    """Outside the checkout (so it is not on sys.path), as a user's script sees it."""
    script = ("import importlib.util, graphc.backends.numpy as b; "
              "print(b.__file__); print(importlib.util.find_spec('backends'))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60, env={"PATH": os.environ.get("PATH", "")})
    assert result.returncode == 0, result.stderr
    backend_file, bare_backends = result.stdout.splitlines()
    assert Path(backend_file).resolve() == REPO / "backends" / "numpy" / "__init__.py"
    assert bare_backends == "None"


@pytest.mark.slow
def test_wheel_installs_backends_as_graphc_backends(tmp_path):
    """Build a wheel from a copy of the sources (so no stale ``build/`` leaks in) with the
    venv's own setuptools, and look inside."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCES)
    out = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, (
        "building the wheel failed (are setuptools and wheel installed in the venv?)\n"
        + result.stderr[-3000:])
    (wheel,) = out.glob("graphc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "graphc/backends/__init__.py" in names
    assert "graphc/backends/numpy/__init__.py" in names
    assert "graphc/backends/numpy/codegen.py" in names
    assert "graphc/ops/_generated.py" in names
    top_level = {n.split("/", 1)[0] for n in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"graphc"}
    assert not any(n.startswith(("backends/", "tests/")) for n in names)
