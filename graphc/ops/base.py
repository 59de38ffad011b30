"""The ``Op``: everything true of an operation, whatever the backend.

An op holds three things in one place:

* ``infer(input_types, **attrs) -> TensorType``: its type rule; raise ``ValueError``
  or ``TypeError`` with a short reason and ``apply`` turns it into a
  ``GraphcTypeError`` naming the op, the input types and the user's line;
* ``vjp(node, g) -> tuple``: its derivative, one cotangent per input written with
  other graphc ops (so grad of grad works), ``None`` where an input gets none;
  cotangents may have the output's broadcast shape: the autodiff driver sums
  them back to each input's shape, centrally;
* ``impl(*arrays, **attrs)``: its reference NumPy implementation, the meaning of
  the op, used by the numpy backend and by every test.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from graphc.errors import GraphcTypeError, user_location
from graphc.tensor import Tensor, as_tensor, find_node, freeze_attrs, make_node
from graphc.types import TensorType

ALL_OPS: dict[str, Op] = {}


class Op:
    """Base class of graphc operations; each op is one instance, registered by name."""

    name: ClassVar[str] = ""
    #: False for ops whose output carries no gradient (comparisons, argmax, random draws).
    differentiable: ClassVar[bool] = True

    def __init__(self) -> None:
        if not self.name or self.name in ALL_OPS:
            raise ValueError(f"op name {self.name!r} is empty or already registered")
        ALL_OPS[self.name] = self

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def __reduce__(self):
        return (ALL_OPS.__getitem__, (self.name,))

    # -- the three facets ------------------------------------------------------------------
    def infer(self, inputs: tuple[TensorType, ...], **attrs: Any) -> TensorType:
        raise NotImplementedError(f"{self.name} has no type rule")

    def vjp(self, node: Tensor, g: Tensor) -> tuple[Tensor | None, ...]:
        raise NotImplementedError(f"{self.name} has no derivative rule")

    def impl(self, *arrays: np.ndarray, **attrs: Any) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no reference implementation")

    def binds_dims(self, node: Tensor) -> tuple[str, ...]:
        """Derived symbolic dims this node fixes when it runs (a slice of a symbolic dim
        has a size only known then); nodes after it may use them."""
        return ()

    # -- numpy backend: one line of source per node -----------------------------------------
    def emit(self, args: list[str], attrs: dict[str, str]) -> str:
        """A Python expression computing this node, given the source of its arguments
        and attributes; by default a call of ``impl``, bound under the op's name in the
        generated module's namespace."""
        params = [*args, *(f"{k}={v}" for k, v in attrs.items())]
        return f"{self.name}({', '.join(params)})"

    # -- building -----------------------------------------------------------------------------
    def __call__(self, *inputs: Any, **attrs: Any) -> Tensor:
        return apply(self, inputs, attrs)


def apply(op: Op, inputs: tuple[Any, ...], attrs: dict[str, Any]) -> Tensor:
    """Build (or find) the node ``op(inputs, attrs)``, checking its type.

    Python scalars among the inputs are weakly typed constants: they take the dtype
    of the first tensor input where NumPy's promotion would.
    """
    like = next((i for i in inputs if isinstance(i, Tensor)), None)
    try:
        tensors = tuple(as_tensor(i, like) for i in inputs)
    except (TypeError, ValueError, OverflowError) as e:
        raise GraphcTypeError(op.name, f"cannot use {type(e).__name__}: {e}", (),
                              user_location()) from None
    frozen = freeze_attrs(attrs)
    existing = find_node(op, tensors, frozen)
    if existing is not None:  # hash-consed: the type was checked when it was built
        return existing
    types = tuple(t.type for t in tensors)
    try:
        out_type = op.infer(types, **dict(frozen))
    except GraphcTypeError:
        raise
    except (TypeError, ValueError) as e:
        raise GraphcTypeError(op.name, str(e), types, user_location()) from None
    return make_node(op, tensors, frozen, out_type)
