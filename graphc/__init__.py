"""graphc: a symbolic graph compiler for neural networks.

Build a static graph with ``gx.input``, ``gx.param``, ``gx.constant`` and ops;
differentiate it with ``gx.grad`` (the gradient is more graph); compile it with
``gx.compile`` to a NumPy program.
"""

from graphc import ops as ops
from graphc.autodiff import grad, hessian, jacobian, jvp, vjp
from graphc.check import GradCheckReport, check_grad
from graphc.compile import compile
from graphc.compiled import Compiled
from graphc.errors import (
    ArgumentError,
    CompileError,
    GradientError,
    GraphcError,
    GraphcTypeError,
)
from graphc.export import export
from graphc.graph import Graph, toposort
from graphc.ops.activations import *  # noqa: F403
from graphc.ops.conv import *  # noqa: F403
from graphc.ops.dense import *  # noqa: F403
from graphc.ops.elementwise import *  # noqa: F403
from graphc.ops.indexing import *  # noqa: F403
from graphc.ops.linalg import *  # noqa: F403
from graphc.ops.losses import *  # noqa: F403
from graphc.ops.nn import *  # noqa: F403
from graphc.ops.random import *  # noqa: F403
from graphc.ops.reduce import *  # noqa: F403
from graphc.ops.scan import *  # noqa: F403
from graphc.ops.scatter import *  # noqa: F403
from graphc.ops.shape import *  # noqa: F403
from graphc.passes import optimize
from graphc.sympy_bridge import latex, to_sympy
from graphc.tensor import Param, Tensor, as_tensor, constant, current_scope, input, param, scope
from graphc.types import TensorType

__version__ = "0.1.0"

# the front end, built on everything above
from graphc import nn as nn  # noqa: E402
from graphc import optim as optim  # noqa: E402


def __getattr__(name: str):
    """``gx.viz``, ``gx.data``, ``gx.train`` and ``gx.onnx`` load on first use only
    (graphviz, scikit-learn, tqdm and onnx are slow to import)."""
    if name in ("viz", "data", "train", "onnx"):
        import importlib

        return importlib.import_module(f"graphc.{name}")
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")
