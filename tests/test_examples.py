"""Every example runs as a script, prints the seed facts it promises and draws what it says.

The examples run in quick mode (``GRAPHC_QUICK=1``: fewer epochs, units and steps), so
the accuracies asserted here are the quick runs'; the full runs reach the targets their
docstrings state.
"""

import ast
import os
import re
import runpy
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from graphc.viz.overlay import PALETTE, decade
from graphc.viz.style import GRAD_COLOR, VALUE_COLOR

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``run(name) -> (stdout, out_dir)``: each example runs once per module, in quick mode,
    in a fresh folder, writing its drawings where ``GRAPHC_OUT`` says. The first call
    starts every example, as many at a time as there are CPUs."""
    started: dict[str, tuple[Future[str], Path]] = {}

    def start(name: str) -> None:
        folder = tmp_path_factory.mktemp(name.removesuffix(".py"))
        out = folder / "drawings"
        env = {**os.environ, "GRAPHC_OUT": str(out), "GRAPHC_QUICK": "1"}
        started[name] = (pool.submit(_run_script, name, folder, env), out)

    def run_example(name: str) -> tuple[str, Path]:
        if not started:
            for path in sorted(EXAMPLES.glob("*.py")):
                start(path.name)
        future, out = started[name]
        return future.result(), out

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        yield run_example


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


def png_size(path: Path) -> tuple[int, int]:
    """The (width, height) of a PNG, read from its header (which must be a PNG's)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def plotted(stdout: str, out: Path, *names: str) -> list[tuple[int, int]]:
    """The example printed each plot's path, the PNG is in ``out``; their sizes."""
    printed = [line.removeprefix("drawn: ") for line in stdout.splitlines()
               if line.startswith("drawn: ")]
    assert sorted(Path(p).name for p in printed) == sorted(names)
    return [png_size(out / name) for name in names]


def printed_number(stdout: str, name: str) -> float:
    """The number on the line ``<name> = <number>``."""
    (match,) = re.findall(rf"^{re.escape(name)} = (\S+)$", stdout, re.MULTILINE)
    return float(match)


def table(stdout: str, first: str) -> list[list[str]]:
    """The rows of the ``|``-separated table whose rows start with ``first`` (a regex),
    each split into its whitespace-separated cells."""
    return [line.replace("|", " ").split() for line in stdout.splitlines()
            if re.match(rf"\s*{first}\s*\|", line)]


def test_every_example_is_tested():
    tested = {"fxyz.py", "logistic_neuron.py", "logic_gates.py", "softmax.py", "xor.py",
              "mlp_backprop.py", "universal_approximation.py", "digits_linear.py",
              "digits_mlp.py", "digits_cnn.py", "breast_cancer_bce.py", "optimizers.py",
              "vanishing_gradients.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_fxyz_values_gradients_and_drawing(run):
    out, folder = run("fxyz.py")
    assert "f = -3, df/dx = -1, df/dy = 2, df/dz = -3" in out
    assert "def graph(" in out or "graphc_entry" in out  # NumPy source, or LLVM IR on llvm
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
    threshold, _ = run("logic_gates.py")[0].split("\nXOR learned")
    #                          x1 x2 AND OR NOT XOR XOR
    assert truth_table(threshold) == [[0, 0, 0, 0, 1, 0, 0],
                                      [0, 1, 0, 1, 1, 1, 1],
                                      [1, 0, 0, 1, 0, 1, 1],
                                      [1, 1, 1, 1, 0, 0, 0]]


def test_logic_gates_xor_learned_by_a_sigmoid_network(run):
    learned = run("logic_gates.py")[0].split("\nXOR learned")[1]
    rows = table(learned, r"[01]\s+[01]")
    inputs = [(int(a), int(b)) for a, b, _, _ in rows]
    outputs = [float(out) for _, _, out, _ in rows]
    assert inputs == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [int(r) for *_, r in rows] == [round(o) for o in outputs] == [0, 1, 1, 0]
    assert float(learned.split("loss = ")[1].split()[0]) < 0.05
    # 2-2-1: W (2, 2) and b (2,) of the hidden layer, W (2, 1) and b (1,) of the output
    weights = dict(re.findall(r"^  (\S+) = (.+)$", learned, re.MULTILINE))
    assert list(weights) == ["dense/W", "dense/b", "dense_1/W", "dense_1/b"]
    shapes = [np.array(ast.literal_eval(text)).shape for text in weights.values()]
    assert shapes == [(2, 2), (2,), (2, 1), (1,)]


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


def test_universal_approximation_errors_shrink_as_units_grow(run):
    out, folder = run("universal_approximation.py")
    rows = np.array(table(out, r"\d+"), dtype=float)
    units, built_max, built_rmse, trained_max, trained_rmse = rows.T
    assert units.tolist() == [1, 2, 4, 8]
    # the proof's staircase: error about π/h, so shrinking with every doubling
    assert np.all(np.diff(built_max) <= 0) and np.all(np.diff(built_rmse) < 0)
    assert built_max[-1] < 0.5
    # gradient descent places the sigmoids better than the staircase does
    assert np.all(np.diff(trained_max) < 0) and np.all(np.diff(trained_rmse) < 0)
    assert np.all(trained_max[1:] < built_max[1:])
    assert trained_max[0] > 0.5 and trained_max[-1] < 0.1  # one step cannot follow a wave
    (width, height), = plotted(out, folder, "universal_approximation.png")
    assert width > height > 100


@pytest.mark.parametrize(("name", "quick_accuracy", "plots"), [
    ("digits_linear.py", 0.85, ["digits_linear.png", "digits_linear_templates.png"]),
    ("digits_mlp.py", 0.85, ["digits_mlp.png"]),
    ("digits_cnn.py", 0.85, ["digits_cnn.png"]),
    ("breast_cancer_bce.py", 0.9, ["breast_cancer_bce.png"]),
])
def test_classifiers_reach_their_quick_accuracy(run, name, quick_accuracy, plots):
    out, folder = run(name)
    assert "Total params:" in out  # the model summary
    accuracy = printed_number(out, "test accuracy")
    assert quick_accuracy <= accuracy <= 1.0
    assert printed_number(out, "test loss") > 0
    assert all(w > 100 and h > 100 for w, h in plotted(out, folder, *plots))


def test_digits_cnn_has_conv_pool_and_batch_norm(run):
    summary = run("digits_cnn.py")[0]
    for row in ["conv2d (Conv2d)           (batch, 16, 8, 8)      144",
                "batch_norm (BatchNorm)    (batch, 16, 8, 8)       64",
                "max_pool2d (MaxPool2d)    (batch, 16, 4, 4)        0",
                "max_pool2d_1 (MaxPool2d)  (batch, 32, 2, 2)        0",
                "Non-trainable params: 96"]:  # the running means and variances
        assert row in summary


def test_breast_cancer_confusion_matrix_matches_accuracy(run):
    out, _ = run("breast_cancer_bce.py")
    (malignant, benign) = [[int(n) for n in row[1:]] for row in
                           (line.split() for line in out.splitlines())
                           if row and row[0] in ("malignant", "benign") and len(row) == 3]
    assert sum(malignant) + sum(benign) == 114  # the test part: 20% of 569
    correct = malignant[0] + benign[1]
    assert printed_number(out, "test accuracy") == pytest.approx(correct / 114, abs=1e-4)


def test_optimizers_table_and_loss_curves(run):
    out, folder = run("optimizers.py")
    rows = table(out, r"[A-Za-z]+")[1:]  # after the header
    names = [row[0] for row in rows]
    assert names == ["SGD", "momentum", "Nesterov", "Adagrad", "RMSprop", "Adam", "AdaDelta",
                     "Nadam", "AdamW"]
    losses, accuracies = (np.array([float(row[k]) for row in rows]) for k in (1, 2))
    assert np.all(np.isfinite(losses)) and np.all(losses < np.log(10))  # all learned
    assert np.all(accuracies > 0.5) and accuracies.max() > 0.9
    # momentum's heavy ball gets further than plain SGD in the same steps
    assert losses[names.index("momentum")] < losses[names.index("SGD")]
    plotted(out, folder, "optimizers.png")


def test_vanishing_gradients_table_and_overlay(run):
    out, folder = run("vanishing_gradients.py")
    rows = table(out, r"(\d+|output)")
    assert [row[0] for row in rows] == [*map(str, range(1, 11)), "output"]
    sigmoid, relu, residual = np.array([row[1:] for row in rows], dtype=float).T
    # through sigmoids the gradient shrinks layer by layer towards the input: by 1e-6
    assert np.all(np.diff(sigmoid) > 0) and sigmoid[0] / sigmoid[-1] < 1e-5
    for norms in (relu, residual):  # no layer's gradient is 100 times the first's
        assert norms.max() / norms[0] < 100 and norms[0] / norms[-1] > 0.1
    (text,) = drawn(out, folder, "vanishing_gradients.svg")
    assert "(log scale)" in text and "vanishing" in text
    # each weight is filled with the colour of its gradient norm's decade
    fills = node_fills(folder / "vanishing_gradients.svg")
    weights = [f"dense{'_' + str(k) if k else ''}/W" for k in range(10)] + ["output/W"]
    assert [fills[w] for w in weights] == [PALETTE[decade(norm)] for norm in sigmoid]


def node_fills(path: Path) -> dict[str, str]:
    """Each drawn node's label (its first line) and the fill of its shape."""
    fills = {}
    for group in ET.parse(path).getroot().iter(f"{SVG}g"):
        if group.get("class") == "node":
            label = " ".join("".join(next(group.iter(f"{SVG}text")).itertext()).split())
            fills[label] = next(el.get("fill") for el in group.iter()
                                if el.tag in (f"{SVG}path", f"{SVG}polygon", f"{SVG}ellipse")
                                and el.get("fill") not in (None, "none"))
    return fills
