"""Forward and backward through a small MLP, drawn with tensor values and gradients.

Two scoped layers, logits = tanh(x·W1 + b1)·W2 + b2, and the mean cross-entropy of
four examples (x of shape (4, 3)) against their class labels. ``gx.grad`` gives the
gradient of the loss with respect to every param; the drawing shows each tensor's value
(green) and gradient (red), and colours each param by the norm of its gradient (the
overlay, log scale: vanishing and exploding gradients stand out).

The optimizer then rewrites the graph (``gx.optimize``); the optimized graph and a
side-by-side before/after drawing with the optimizer's report are drawn too. All three
SVGs go to $GRAPHC_OUT (default ``out/``). From the command line:
``graphc draw examples/mlp_backprop.py:loss -o mlp.svg --backward --optimized``.
"""

import os
from pathlib import Path

import numpy as np

import graphc as gx
from graphc import viz

rng = np.random.default_rng(0)
x = gx.input("x", (4, 3), "float64")
labels = gx.input("labels", (4,), "int64")
with gx.scope("layer1"):
    W1 = gx.param("W1", rng.normal(0.0, 0.5, (3, 4)))
    b1 = gx.param("b1", np.zeros(4))
    hidden = gx.tanh(x @ W1 + b1)
with gx.scope("layer2"):
    W2 = gx.param("W2", rng.normal(0.0, 0.5, (4, 2)))
    b2 = gx.param("b2", np.zeros(2))
    logits = hidden @ W2 + b2
loss = gx.cross_entropy(logits, labels, reduction="mean")
params = [W1, b1, W2, b2]
values = {"x": rng.normal(0.0, 1.0, (4, 3)), "labels": np.array([0, 1, 1, 0])}


def main() -> None:
    step = gx.compile([x, labels], [loss, *gx.grad(loss, params)])
    value, *grads = step(values["x"], values["labels"])
    print(f"loss = {float(value):.4f}")
    for p, g in zip(params, grads, strict=True):
        print(f"  |dloss/d{p.name}| = {np.linalg.norm(g):.4f}")

    optimized, report = gx.optimize(loss, explain=True)
    print(f"optimized: {len(gx.toposort([loss]))} -> {len(gx.toposort([optimized]))} nodes")

    out = Path(os.environ.get("GRAPHC_OUT", "out"))
    print("drawn:", viz.save(loss, out / "mlp_backprop.svg", values=values, backward=True,
                             overlay=True))
    print("drawn:", viz.save(optimized, out / "mlp_optimized.svg", values=values))
    print("drawn:", viz.save(viz.compare(loss, optimized, report), out / "mlp_compare.svg"))


if __name__ == "__main__":
    main()
