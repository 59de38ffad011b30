"""Every example runs and prints the seed facts it promises."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def run(name: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_example_is_tested():
    tested = {"backprop_fxyz.py", "logistic_neuron.py", "logic_gates.py", "softmax.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_backprop_fxyz():
    out = run("backprop_fxyz.py")
    assert "f = -3, df/dx = -1, df/dy = 2, df/dz = -3" in out
    assert "def graph(" in out


def test_logistic_neuron():
    out = run("logistic_neuron.py")
    assert "a = 0.731" in out
    for line in ["da/dx0 = +0.393", "da/dw0 = -0.197", "da/dx1 = -0.590", "da/dw1 = -0.393",
                 "da/dw2 = +0.197"]:
        assert line in out


def test_logic_gates_truth_tables():
    rows = [line.split("|") for line in run("logic_gates.py").splitlines()[1:]]
    table = [[int(c) for c in " ".join(r).split()] for r in rows]
    #             x1 x2 AND OR NOT XOR XOR
    assert table == [[0, 0, 0, 0, 1, 0, 0],
                     [0, 1, 0, 1, 1, 1, 1],
                     [1, 0, 0, 1, 0, 1, 1],
                     [1, 1, 1, 1, 0, 0, 0]]


def test_softmax_seed_fact():
    assert "[0.257 0.257 0.172 0.314]" in run("softmax.py")
