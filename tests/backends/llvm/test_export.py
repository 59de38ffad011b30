"""``gx.export``: the shared library, its header and example program, built with ``cc``,
run, and compared with the same graph called from Python."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm import dims as dim_rules
from graphc.backends.llvm.export import ExportError, Spec, example_values

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")
DIM = 3  # the value the example program gives every symbolic dim


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


def _elementwise():
    x = gx.input("x", (2, 5))
    y = gx.input("y", (5,))
    return [x, y], [gx.maximum(x * y + 1.0, 0.0), (x - y).sum(axis=0)], None


def _dense_symbolic():
    x = gx.input("x", ("batch", 4))
    w = gx.param("W", np.arange(12, dtype="float32").reshape(4, 3) / 10 - 0.5)
    b = gx.param("b", np.array([0.1, -0.2, 0.3], "float32"))
    return [x], [gx.maximum(x @ w + b, 0.0), x.sum(axis=1)], None


def _training_step():
    x = gx.input("x", ("batch", 4))
    t = gx.input("t", ("batch", 2))
    w = gx.param("W", np.linspace(-1, 1, 8).reshape(4, 2))
    b = gx.param("b", np.zeros(2))
    loss = ((gx.maximum(x.astype("float64") @ w + b, 0.0) - t) ** 2).mean()
    gw, gb = gx.grad(loss, [w, b])
    return [x, t], [loss], {w: w - 0.1 * gw, b: b - 0.1 * gb}


def _build_and_run(tmp_path: Path, fn, weights: str) -> dict[str, np.ndarray]:
    """Export ``fn``, compile and run the example program; its printed arrays by name."""
    lib = tmp_path / "libmodel.so"
    gx.export(fn, lib, header=tmp_path / "model.h", example=tmp_path / "model_example.c",
              weights=weights)
    exe = tmp_path / "model_example"
    subprocess.run(["cc", "-O1", "-o", str(exe), str(tmp_path / "model_example.c"),
                    f"-L{tmp_path}", "-lmodel", f"-Wl,-rpath,{tmp_path}"], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    arrays, lines = {}, out.splitlines()
    k = 0
    while k < len(lines):
        _, name, size = lines[k].split()
        arrays[name] = np.array([float(v) for v in lines[k + 1:k + 1 + int(size)]])
        k += 1 + int(size)
    return arrays


def _example_arguments(fn, weights: str) -> tuple[list[np.ndarray], list]:
    """The arrays the example program passes, for Python: inputs, and params (set)."""
    spec = Spec(fn.graph, None, [], "model", weights)  # type: ignore[arg-type]
    env = {d: DIM for i in fn.graph.inputs for d in i.shape if isinstance(d, str)}
    arrays = []
    for position, (role, _, _, shape) in enumerate(spec.arguments()):
        if role == "output":
            continue
        concrete = tuple(dim_rules.resolve(d, env) for d in shape)
        node = (fn.graph.inputs[position] if role == "input"
                else fn.graph.params[position - len(fn.graph.inputs)])
        arrays.append(example_values(position, int(np.prod(concrete)), node.dtype)
                      .reshape(concrete))
    return arrays[:len(fn.graph.inputs)], arrays[len(fn.graph.inputs):]


@pytest.mark.parametrize("build", [_elementwise, _dense_symbolic, _training_step])
@pytest.mark.parametrize("weights", ["embedded", "argument"])
def test_the_example_program_prints_what_python_computes(tmp_path, build, weights):
    inputs, outputs, updates = build()
    fn = gx.compile(inputs, outputs, updates, backend="llvm")
    printed = _build_and_run(tmp_path, fn, weights)
    args, param_values = _example_arguments(fn, weights)
    for p, value in zip(fn.graph.params, param_values, strict=False):  # argument mode only
        p.value = value.astype(p.dtype)
    expected = fn(*args)
    tol = 1e-6 if all(o.dtype == "float32" for o in fn.graph.outputs) else 1e-12
    for k, value in enumerate(expected):
        np.testing.assert_allclose(printed[f"out{k}"], np.ravel(value), rtol=tol, atol=tol)
    if weights == "argument":  # updated in place, as Python updated its params
        for p in fn.graph.params:
            tol = 1e-6 if p.dtype == "float32" else 1e-12  # printed with 9 / 17 digits
            np.testing.assert_allclose(printed[p.name], np.ravel(p.value), rtol=tol, atol=tol)


def test_the_header_documents_the_abi(tmp_path):
    inputs, outputs, updates = _training_step()
    fn = gx.compile(inputs, outputs, updates, backend="llvm")
    exported = gx.export(fn, tmp_path / "libnet.so", header=tmp_path / "net.h", name="net",
                         weights="argument")
    text = (tmp_path / "net.h").read_text()
    assert exported.dims == ("batch",)
    assert ("int net_run(int64_t batch, const float *x, const float *t, double *W, double *b, "
            "double *out0);") in text
    assert "const char *net_strerror(int status);" in text
    assert " * param  W (argument #0): double[4][2], updated in place" in text
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(tmp_path / "libnet.so")],
                             capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in symbols.splitlines()}
    assert {"net_run", "net_strerror"} <= names and "graphc_entry" not in names


def test_a_library_can_be_built_from_output_tensors(tmp_path):
    inputs, outputs, _ = _elementwise()
    exported = gx.export(outputs, tmp_path / "libew.so", inputs=inputs)
    assert exported.library.exists() and exported.header is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"weights": "shared"}, "weights must be one of"),
    ({"name": "my model"}, "C identifier"),
])
def test_bad_options_are_refused(tmp_path, kwargs, message):
    inputs, outputs, _ = _elementwise()
    with pytest.raises(ExportError, match=message):
        gx.export(outputs, tmp_path / "lib.so", inputs=inputs, **kwargs)


def test_a_missing_compiler_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "no-such-cc")
    inputs, outputs, _ = _elementwise()
    with pytest.raises(ExportError, match="'no-such-cc' is not on PATH"):
        gx.export(outputs, tmp_path / "lib.so", inputs=inputs)
