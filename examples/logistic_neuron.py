"""The logistic neuron a = σ(w0·x0 + w1·x1 + w2), the cs231n backprop example.

At w = (2, −3, −3) and x = (−1, −2): the weighted sum is 1, a = σ(1) ≈ 0.731, and
σ'(1) = a(1 − a) ≈ 0.197 flows back to every input: ∂a/∂x0 = w0·0.197 ≈ 0.393,
∂a/∂w0 = x0·0.197 ≈ −0.197, ∂a/∂x1 ≈ −0.590, ∂a/∂w1 ≈ −0.393, ∂a/∂w2 ≈ 0.197.

Run it to print these and to draw the neuron with every node's value (green) and
gradient (red) into $GRAPHC_OUT (default ``out/``); from the command line:
``graphc draw examples/logistic_neuron.py:a -o neuron.svg --backward``.
"""

import os
from pathlib import Path

import graphc as gx
from graphc import viz

x0, x1 = gx.input("x0", ()), gx.input("x1", ())
w0, w1, w2 = gx.input("w0", ()), gx.input("w1", ()), gx.input("w2", ())
a = gx.sigmoid(w0 * x0 + w1 * x1 + w2)
values = {"x0": -1.0, "x1": -2.0, "w0": 2.0, "w1": -3.0, "w2": -3.0}


def main() -> None:
    wrt = [x0, w0, x1, w1, w2]
    neuron = gx.compile([x0, x1, w0, w1, w2], [a, *gx.grad(a, wrt)])
    value, *grads = neuron(*(values[n] for n in ["x0", "x1", "w0", "w1", "w2"]))
    print(f"logistic neuron: a = {float(value):.3f}")
    for name, g in zip(["x0", "w0", "x1", "w1", "w2"], grads, strict=True):
        print(f"  da/d{name} = {float(g):+.3f}")

    out = Path(os.environ.get("GRAPHC_OUT", "out"))
    print("drawn:", viz.save(a, out / "logistic_neuron.svg", values=values, backward=True))


if __name__ == "__main__":
    main()
