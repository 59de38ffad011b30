"""``graphc.nn``: layers with named params, initializers and models.

``model = nn.Sequential([nn.Dense(64, "relu"), nn.Dense(10)])`` builds nothing until it
is called on a tensor; ``model(x)`` then returns graph nodes to differentiate, compile
and draw, and ``model.summary()`` prints the table of layers.

Layers: ``Dense`` (``Linear``), ``DropConnect``, ``Maxout``, ``Highway``, ``Conv2d``,
``MaxPool2d``, ``AvgPool2d``, ``Flatten``, ``BatchNorm`` (``BatchNorm1d``/``2d``),
``LayerNorm``, ``Dropout``, ``Residual``, and every activation as a layer (``ReLU``,
``LeakyReLU(alpha=0.2)``, ``GELU(approximate="tanh")``, ``Softmax(axis=-1)``, ...;
``ACTIVATION_LAYERS`` maps each registry name to its class), or ``Activation(name_or_fn)``.
"""

from graphc.nn import init as init
from graphc.nn import layers as layers
from graphc.nn.layers import *  # noqa: F403
from graphc.nn.module import Layer, Sequential, register_state_updates, state_updates

__all__ = ["init", "layers", "Layer", "Sequential", "state_updates", "register_state_updates",
           *layers.__all__]
