"""``graphc.optim``: optimizers whose step is graph nodes, compiled with the loss."""

from graphc.optim.base import SGD, Optimizer

__all__ = ["Optimizer", "SGD"]
