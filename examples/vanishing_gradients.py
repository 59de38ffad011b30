"""Vanishing gradients: a deep sigmoid network against a ReLU and a residual ReLU one.

Backpropagation multiplies, layer by layer, by each activation's derivative and by the
transposed weights: ∂L/∂h_{l−1} = Wₗᵀ·(σ'(zₗ) ⊙ ∂L/∂hₗ). The sigmoid's derivative is
σ(1 − σ) ≤ 1/4, so through ten sigmoid layers the gradient shrinks roughly fourfold per
layer: the first layers barely learn. The ReLU's derivative is 1 wherever
the unit is active, and with He initialization (Var W = 2/fan_in) the gradient keeps its
size from layer to layer. A residual block h + f(h) adds the identity to every layer's
Jacobian, I + ∂f/∂h, so the gradient has a path around every layer and cannot vanish
(its branches start small, Glorot weights with gain 1/2, so that the sums h + f(h) grow
little from block to block).

The three networks have ten hidden layers of 32 units on the 64 pixels of the digits,
then a dense output layer with the softmax cross-entropy. The table gives the norm of
each layer's weight gradient |∂L/∂W| at initialization on one batch of 256 digits; the
deep sigmoid network is drawn with its gradient-magnitude overlay (each weight coloured
by log10 of its gradient's norm) into $GRAPHC_OUT (default ``out/``).
"""

import os
from pathlib import Path

import numpy as np

import graphc as gx
from graphc import nn, viz

DEPTH, WIDTH, BATCH = 10, 32, 256


def deep_network(kind: str) -> nn.Sequential:
    """``DEPTH`` hidden layers of ``WIDTH`` units of ``kind``, then ``Dense(10)``."""
    if kind == "sigmoid":
        hidden = [nn.Dense(WIDTH, "sigmoid") for _ in range(DEPTH)]
    elif kind == "relu":
        hidden = [nn.Dense(WIDTH, "relu", kernel_init="he_normal") for _ in range(DEPTH)]
    elif kind == "residual":  # the first layer maps 64 pixels to WIDTH; blocks keep WIDTH
        hidden = [nn.Dense(WIDTH, "relu", kernel_init="he_normal"),
                  *(nn.Residual(nn.Dense(WIDTH, "relu", kernel_init=nn.init.xavier_uniform(0.5)))
                    for _ in range(DEPTH - 1))]
    else:
        raise ValueError(f"unknown kind {kind!r}; use sigmoid, relu or residual")
    return nn.Sequential([*hidden, nn.Dense(10, name="output")], seed=0)


def weight_gradient_norms(model: nn.Sequential, loss: gx.Tensor, inputs: list[gx.Tensor],
                          values: list[np.ndarray]) -> list[float]:
    """|∂loss/∂W| of every weight matrix of ``model``, input layer first."""
    weights = [p for p in model.params() if p.ndim == 2]
    return [float(np.linalg.norm(g))
            for g in gx.compile(inputs, gx.grad(loss, weights))(*values)]


def main() -> None:
    data = gx.data.digits()
    X, y = data.X_train[:BATCH], data.y_train[:BATCH]
    x = gx.input("x", (BATCH, 64), "float32")
    labels = gx.input("labels", (BATCH,), "int64")

    norms, losses = {}, {}
    for kind in ("sigmoid", "relu", "residual"):
        model = deep_network(kind)
        losses[kind] = gx.cross_entropy(model(x), labels, reduction="mean")
        norms[kind] = weight_gradient_norms(model, losses[kind], [x, labels], [X, y])

    print(f"|dL/dW| at initialization: {DEPTH} hidden layers of {WIDTH} units, "
          f"a batch of {BATCH} digits")
    print(f"{'layer':>6} | {'sigmoid':>9} | {'relu':>9} | {'residual':>9}")
    names = [f"{k}" for k in range(1, DEPTH + 1)] + ["output"]
    for row, name in enumerate(names):
        print(f"{name:>6} | " + " | ".join(f"{norms[kind][row]:9.2e}" for kind in norms))
    print("layer 1 / output: " + ", ".join(
        f"{kind} {values[0] / values[-1]:.1e}" for kind, values in norms.items()))

    out = Path(os.environ.get("GRAPHC_OUT", "out"))
    path = viz.save(losses["sigmoid"], out / "vanishing_gradients.svg",
                    values={x: X, labels: y}, overlay=True,
                    title=f"{DEPTH} sigmoid layers: each weight coloured by |dL/dW|")
    print(f"drawn: {path}")


if __name__ == "__main__":
    main()
