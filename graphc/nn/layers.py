"""The layers of ``graphc.nn``: each builds its params on first call and graph nodes on
every call (see ``graphc.nn.module``)."""

from __future__ import annotations

from typing import Any

import graphc as gx
from graphc.nn.module import Layer, float_dtype
from graphc.tensor import Tensor
from graphc.types import TensorType, format_shape


class Dense(Layer):
    """A fully connected layer, ``activation(x @ W + b)``: a layer of the neurons
    a(x, w) = σ(Σ wⱼxⱼ − w₀), whose thresholds w₀ are the negated biases ``−b``.

    Parameters
    ----------
    units : int
        Number of neurons (output features).
    activation : str, optional
        Any activation ``gx.dense`` fuses (``"relu"``, ``"sigmoid"``, ``"tanh"``, ...).
    use_bias : bool
    kernel_init, bias_init : str or initializer
        ``W`` (shape (in, units)) and ``b`` (shape (units,)); Glorot uniform and zeros
        by default, as Keras.
    """

    def __init__(self, units: int, activation: str | None = None, *, use_bias: bool = True,
                 kernel_init: Any = "xavier_uniform", bias_init: Any = "zeros",
                 name: str | None = None, **activation_params: Any) -> None:
        super().__init__(name)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units, self.activation, self.use_bias = units, activation, use_bias
        self.kernel_init, self.bias_init = kernel_init, bias_init
        self.activation_params = activation_params

    def build(self, input_type: TensorType) -> None:
        if input_type.ndim < 1 or not isinstance(input_type.shape[-1], int):
            raise ValueError(f"Dense {self.name!r}: input of shape "
                             f"{format_shape(input_type.shape)} has no fixed last dim")
        dtype = float_dtype(input_type)
        self.W = self.add_param("W", (input_type.shape[-1], self.units), self.kernel_init,
                                dtype=dtype)
        self.b = self.add_param("b", (self.units,), self.bias_init, dtype=dtype) \
            if self.use_bias else None

    def forward(self, x: Tensor, training: bool) -> Tensor:
        return gx.dense(x, self.W, self.b, self.activation, **self.activation_params)


Linear = Dense
