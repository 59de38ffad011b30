"""Shared pieces of the training tests: small data, small models, a NumPy forward pass,
and an optimizer with per-param state (so checkpoints have slots to save)."""

from __future__ import annotations

import numpy as np

import graphc as gx
from graphc import nn, optim


class Momentum(optim.Optimizer):
    """Heavy-ball momentum, v ← μv + g, θ ← θ − ηv: one slot ``v`` per param. Written on
    the base class's lasting API only (``slot``, ``step``, ``lr``)."""

    def __init__(self, lr: float = 0.1, mu: float = 0.9, **kwargs) -> None:
        super().__init__(lr, **kwargs)
        self.mu = mu

    def apply(self, grads):
        updates = {}
        for param, grad in grads.items():
            v = self.slot(param, "v")
            updates[v] = self.mu * v + grad
            updates[param] = param - self.lr * updates[v]
        updates[self.step] = self.step + 1
        return updates


def moons(n: int = 200, seed: int = 0) -> gx.data.Dataset:
    return gx.data.two_moons(n=n, noise=0.1, seed=seed)


def mlp(hidden: int = 16, outputs: int = 2, seed: int = 0, activation: str | None = None,
        inputs: int | None = 2) -> nn.Sequential:
    """Dense(hidden, tanh) → Dense(hidden, tanh) → Dense(outputs, activation)."""
    return nn.Sequential([nn.Dense(hidden, "tanh"), nn.Dense(hidden, "tanh"),
                          nn.Dense(outputs, activation)], seed=seed,
                         input_shape=None if inputs is None else (inputs,))


def numpy_forward(model: nn.Sequential, X: np.ndarray) -> np.ndarray:
    """The same MLP in NumPy, from the params' values."""
    activations = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), None: lambda z: z,
                   "sigmoid": lambda z: 1 / (1 + np.exp(-z))}
    h = X.astype(np.float64)
    for layer in model.layers:
        h = activations[layer.activation](h @ layer.W.value + layer.b.value)
    return h


def param_values(model: nn.Layer) -> dict[str, np.ndarray]:
    return {name: p.value.copy() for name, p in model.named_params().items()}


def assert_same_values(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
