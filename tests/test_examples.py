"""Every example runs as a script, prints the seed facts it promises and draws what it says."""

import os
import runpy
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from graphc.viz.style import GRAD_COLOR, VALUE_COLOR

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``run(name) -> (stdout, out_dir)``: each example runs once per module, in a fresh
    folder, writing its drawings where ``GRAPHC_OUT`` says."""
    done: dict[str, tuple[str, Path]] = {}

    def run_example(name: str) -> tuple[str, Path]:
        if name not in done:
            folder = tmp_path_factory.mktemp(name.removesuffix(".py"))
            out = folder / "drawings"
            env = {**os.environ, "GRAPHC_OUT": str(out)}
            done[name] = (_run_script(name, folder, env), out)
        return done[name]

    return run_example


def _run_script(name: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                            text=True, timeout=120, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


SVG = "{http://www.w3.org/2000/svg}"


def svg_text(path: Path) -> str:
    """All the text an SVG shows, whitespace collapsed (it must parse as XML)."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return " ".join(" ".join(el.itertext()) for el in root.iter(f"{SVG}text")).replace(
        "\xa0", " ")


def svg_nodes(path: Path) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Each drawn node as ``(label, values, gradients)``: its first line, then its lines
    in the value colour (green) and in the gradient colour (red)."""
    nodes = []
    for group in ET.parse(path).getroot().iter(f"{SVG}g"):
        if group.get("class") != "node":
            continue
        texts = [(" ".join("".join(t.itertext()).split()), t.get("fill"))
                 for t in group.iter(f"{SVG}text")]
        nodes.append((texts[0][0], tuple(t for t, fill in texts if fill == VALUE_COLOR),
                      tuple(t for t, fill in texts if fill == GRAD_COLOR)))
    return nodes


def drawn(stdout: str, out: Path, *names: str) -> list[str]:
    """The example printed each drawing's path, the file is in ``out``; their text."""
    printed = [line.removeprefix("drawn: ") for line in stdout.splitlines()
               if line.startswith("drawn: ")]
    assert sorted(Path(p).name for p in printed) == sorted(names)
    return [svg_text(out / name) for name in names]


def test_every_example_is_tested():
    tested = {"fxyz.py", "logistic_neuron.py", "logic_gates.py", "softmax.py", "xor.py",
              "mlp_backprop.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_fxyz_values_gradients_and_drawing(run):
    out, folder = run("fxyz.py")
    assert "f = -3, df/dx = -1, df/dy = 2, df/dz = -3" in out
    assert "def graph(" in out
    drawn(out, folder, "fxyz.svg")
    nodes = svg_nodes(folder / "fxyz.svg")
    #       node  value       ∂f/∂node
    for expected in [("x", ("1.000",), ("-1.000",)), ("y", ("2.000",), ("2.000",)),
                     ("z", ("3.000",), ("-3.000",)), ("+", ("3.000",), ("-1.000",)),
                     ("−", ("-1.000",), ("3.000",)), ("×", ("-3.000",), ("1.000",))]:
        assert expected in nodes
    assert len(nodes) == 6


def test_an_example_draws_into_out_by_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GRAPHC_OUT"}
    stdout = _run_script("fxyz.py", tmp_path, env)
    assert drawn(stdout, tmp_path / "out", "fxyz.svg")


def test_logistic_neuron(run):
    out, folder = run("logistic_neuron.py")
    assert "a = 0.731" in out
    for line in ["da/dx0 = +0.393", "da/dw0 = -0.197", "da/dx1 = -0.590", "da/dw1 = -0.393",
                 "da/dw2 = +0.197"]:
        assert line in out
    drawn(out, folder, "logistic_neuron.svg")
    nodes = svg_nodes(folder / "logistic_neuron.svg")
    for expected in [("x0", ("-1.000",), ("0.393",)), ("w0", ("2.000",), ("-0.197",)),
                     ("x1", ("-2.000",), ("-0.590",)), ("w1", ("-3.000",), ("-0.393",)),
                     ("w2", ("-3.000",), ("0.197",)), ("sigmoid", ("0.731",), ("1.000",))]:
        assert expected in nodes


def truth_table(stdout: str) -> list[list[int]]:
    rows = [line.split("|") for line in stdout.splitlines()[1:] if "|" in line]
    return [[int(c) for c in " ".join(r).split()] for r in rows]


def test_logic_gates_truth_tables(run):
    #                                  x1 x2 AND OR NOT XOR XOR
    assert truth_table(run("logic_gates.py")[0]) == [[0, 0, 0, 0, 1, 0, 0],
                                                     [0, 1, 0, 1, 1, 1, 1],
                                                     [1, 0, 0, 1, 0, 1, 1],
                                                     [1, 1, 1, 1, 0, 0, 0]]


def test_xor_network_truth_table_and_drawing(run):
    out, folder = run("xor.py")
    assert out.splitlines()[0] == "x1 x2 | OR AND | XOR"
    #                          x1 x2 OR AND XOR
    assert truth_table(out) == [[0, 0, 0, 0, 0],
                                [0, 1, 1, 0, 1],
                                [1, 0, 1, 0, 1],
                                [1, 1, 1, 1, 0]]
    (text,) = drawn(out, folder, "xor.svg")
    for scope in ["hidden", "OR", "AND", "output", "XOR"]:
        assert scope in text.split()
    nodes = svg_nodes(folder / "xor.svg")
    weights = sorted((label, value) for label, (value,), _ in nodes if label.startswith("w"))
    #       the three neurons' weights w1, w2 and thresholds w0
    assert weights == [("w0", "0.500"), ("w0", "0.500"), ("w0", "1.500"),
                       ("w1", "1.000"), ("w1", "1.000"), ("w1", "1.000"),
                       ("w2", "-1.000"), ("w2", "1.000"), ("w2", "1.000")]
    outputs = [values for label, values, _ in nodes if label.startswith("heaviside")]
    assert ("[0.000, 1.000, 1.000, 0.000]",) in outputs  # XOR of the four rows


def mlp_reference() -> tuple[float, dict[str, float]]:
    """The example's loss and its gradient norms, in plain NumPy: the forward pass by hand,
    the gradients by central differences (float64)."""
    module = runpy.run_path(str(EXAMPLES / "mlp_backprop.py"), run_name="reference")
    x, labels = module["values"]["x"], module["values"]["labels"]
    arrays = {p.name: p.value.copy() for p in module["params"]}

    def loss(a: dict[str, np.ndarray]) -> float:
        logits = np.tanh(x @ a["W1"] + a["b1"]) @ a["W2"] + a["b2"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_probs[np.arange(len(labels)), labels].mean())

    norms = {}
    for name, array in arrays.items():
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            step = np.zeros_like(array)
            step[index] = 1e-6
            grad[index] = (loss({**arrays, name: array + step})
                           - loss({**arrays, name: array - step})) / 2e-6
        norms[name] = float(np.linalg.norm(grad))
    return loss(arrays), norms


def test_mlp_backprop_loss_and_gradient_norms_match_numpy(run):
    out, _ = run("mlp_backprop.py")
    loss, norms = mlp_reference()
    assert f"loss = {loss:.4f}" in out
    for name, norm in norms.items():
        assert f"|dloss/d{name}| = {norm:.4f}" in out


def test_mlp_backprop_drawings(run):
    out, folder = run("mlp_backprop.py")
    before, after = (int(n) for n in out.split("optimized: ")[1].split(" nodes")[0].split("->"))
    assert after < before
    overlay, optimized, compare = drawn(out, folder, "mlp_backprop.svg", "mlp_optimized.svg",
                                        "mlp_compare.svg")
    loss = float(out.split("loss = ")[1].split()[0])
    nodes = svg_nodes(folder / "mlp_backprop.svg")
    assert any(values == (f"{loss:.3f}",) and grads == ("1.000",) for _, values, grads in nodes)
    params = {label: (values, grads) for label, values, grads in nodes
              if label in ("W1", "b1", "W2", "b2")}
    assert len(params) == 4 and all(v[0].startswith("μ") and g[0].startswith("μ")
                                    for v, g in params.values())
    assert "(log scale)" in overlay  # the gradient-norm legend
    for text in (overlay, optimized):
        assert "layer1" in text and "layer2" in text and "f64 (4, 3)" in text
    assert f"before: {before} nodes" in compare and f"after: {after} nodes" in compare
    assert "fuse_reduction" in compare  # the optimizer's report, below the two graphs


def test_softmax_seed_fact(run):
    assert "[0.257 0.257 0.172 0.314]" in run("softmax.py")[0]
