"""``graphc.nn``: layers with named params, initializers and models.

``model = nn.Sequential([nn.Dense(64, "relu"), nn.Dense(10)])`` builds nothing until it
is called on a tensor; ``model(x)`` then returns graph nodes to differentiate, compile
and draw, and ``model.summary()`` prints the table of layers.
"""

from graphc.nn import init as init
from graphc.nn.layers import *  # noqa: F403
from graphc.nn.layers import Dense, Linear
from graphc.nn.module import Layer, Sequential, register_state_updates, state_updates

__all__ = ["init", "Layer", "Sequential", "Dense", "Linear", "state_updates",
           "register_state_updates"]
