"""XOR from threshold neurons a = θ(Σ wⱼxⱼ − w₀), the network of the lectures.

XOR is not linearly separable, so one neuron cannot compute it; a hidden layer can.
The hidden layer computes OR (w = (1, 1), threshold 1/2) and AND (w = (1, 1),
threshold 3/2); the output neuron fires on OR and not AND: XOR = θ(OR − AND − 1/2).

Each neuron's weights are params in its own scope (``hidden/OR``, ``hidden/AND``,
``output/XOR``), so the drawing groups them. Run it to print the truth table and draw
the network with its weights and the four input rows into $GRAPHC_OUT (default ``out/``);
from the command line: ``graphc draw examples/xor.py:xor -o xor.svg --values``.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import graphc as gx
from graphc import viz


def threshold_neuron(name: str, inputs: Sequence[gx.Tensor], weights: Sequence[float],
                     threshold: float) -> gx.Tensor:
    """θ(w1·x1 + w2·x2 + … − w0), with the weights and the threshold w0 as params."""
    with gx.scope(name):
        pairs = enumerate(zip(weights, inputs, strict=True), start=1)
        terms = [gx.param(f"w{j}", w) * x for j, (w, x) in pairs]
        return gx.heaviside(sum(terms[1:], terms[0]) - gx.param("w0", threshold))


# the four rows of the truth table at once: x1, x2 ∈ {0, 1}
x1 = gx.input("x1", (4,), "float64")
x2 = gx.input("x2", (4,), "float64")
with gx.scope("hidden"):
    or_ = threshold_neuron("OR", [x1, x2], [1.0, 1.0], 0.5)
    and_ = threshold_neuron("AND", [x1, x2], [1.0, 1.0], 1.5)
with gx.scope("output"):
    xor = threshold_neuron("XOR", [or_, and_], [1.0, -1.0], 0.5)
values = {"x1": [0.0, 0.0, 1.0, 1.0], "x2": [0.0, 1.0, 0.0, 1.0]}


def main() -> None:
    network = gx.compile([x1, x2], [or_, and_, xor])
    columns = network(values["x1"], values["x2"])
    print("x1 x2 | OR AND | XOR")
    for a, b, h_or, h_and, out in zip(values["x1"], values["x2"], *columns, strict=True):
        print(f" {a:.0f}  {b:.0f} | {h_or:2.0f} {h_and:3.0f} | {out:3.0f}")

    out = Path(os.environ.get("GRAPHC_OUT", "out"))
    print("drawn:", viz.save(xor, out / "xor.svg", values=values, summary="values",
                             title="XOR = θ(OR − AND − 1/2)"))


if __name__ == "__main__":
    main()
