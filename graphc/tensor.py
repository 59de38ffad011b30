"""The IR node: one application of an op to input nodes, hash-consed.

A ``Tensor`` is immutable. ``apply(op, inputs, attrs)`` returns the existing
node when the same ``(op, inputs, attrs)`` was built before, so common
subexpressions are shared from the start. Leaves are inputs (fed at call time),
params (hold a value between calls) and constants (hash-consed by value).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.errors import GraphcTypeError, SourceLocation, user_location
from graphc.types import TensorType, as_dtype, as_shape, format_shape, is_static

if TYPE_CHECKING:
    from graphc.ops.base import Op

Attrs = tuple[tuple[str, Any], ...]

_NODES: weakref.WeakValueDictionary[tuple, Tensor] = weakref.WeakValueDictionary()
_LEAF_IDS = itertools.count()


class Tensor:
    """A node of the graph: ``op`` applied to ``inputs`` with ``attrs``, of static ``type``."""

    __slots__ = ("op", "inputs", "attrs", "type", "location", "scope", "__weakref__")
    # NumPy defers to our reflected operators (`array @ tensor` calls __rmatmul__)
    # instead of treating a tensor as a sequence.
    __array_ufunc__ = None

    op: Op
    inputs: tuple[Tensor, ...]
    attrs: Attrs
    type: TensorType
    location: SourceLocation | None
    #: The ``gx.scope`` path the node was built in (``"mlp/layer1"``), or ``""``.
    scope: str

    def __init__(self, op: Op, inputs: tuple[Tensor, ...], attrs: Attrs, type: TensorType,
                 location: SourceLocation | None, scope: str = "") -> None:
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "attrs", attrs)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "scope", scope)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("graphc tensors are immutable")

    # -- static facts -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int | str, ...]:
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def attr(self) -> dict[str, Any]:
        return dict(self.attrs)

    @property
    def name(self) -> str | None:
        return self.attr.get("name")

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<{self.op.name}{label}: {self.dtype}{format_shape(self.shape)}>"

    # ``==`` is identity, as in PyTensor: nodes are dict keys and set members everywhere.
    # Elementwise equality is ``gx.equal`` / ``gx.not_equal``.
    __hash__ = object.__hash__
    __eq__ = object.__eq__

    def __bool__(self) -> bool:
        raise TypeError("a symbolic tensor has no truth value; use gx.where or compare values "
                        "after evaluation")

    def __len__(self) -> int:
        if not self.shape or not isinstance(self.shape[0], int):
            raise TypeError(f"len() of a tensor of shape {format_shape(self.shape)}")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # -- evaluation ---------------------------------------------------------------------------
    def eval(self, feed: Mapping[Tensor, Any] | None = None) -> np.ndarray:
        """Evaluate this tensor with the default backend (``gx.compile``'s), feeding
        ``{input: array}``."""
        from graphc.compile import compile as compile_graph
        feed = dict(feed or {})
        fn = compile_graph(inputs=list(feed), outputs=self)
        return fn(*feed.values())

    # -- operators: the arithmetic lives in graphc.ops; these are only spellings ---------------
    def __add__(self, other): return _ew().add(self, other)
    def __radd__(self, other): return _ew().add(other, self)
    def __sub__(self, other): return _ew().sub(self, other)
    def __rsub__(self, other): return _ew().sub(other, self)
    def __mul__(self, other): return _ew().mul(self, other)
    def __rmul__(self, other): return _ew().mul(other, self)
    def __truediv__(self, other): return _ew().div(self, other)
    def __rtruediv__(self, other): return _ew().div(other, self)
    def __pow__(self, other): return _ew().pow(self, other)
    def __rpow__(self, other): return _ew().pow(other, self)
    def __neg__(self): return _ew().neg(self)
    def __pos__(self): return self
    def __abs__(self): return _ew().abs(self)
    def __lt__(self, other): return _ew().less(self, other)
    def __le__(self, other): return _ew().less_equal(self, other)
    def __gt__(self, other): return _ew().greater(self, other)
    def __ge__(self, other): return _ew().greater_equal(self, other)
    def __and__(self, other): return _ew().logical_and(self, other)
    def __rand__(self, other): return _ew().logical_and(other, self)
    def __or__(self, other): return _ew().logical_or(self, other)
    def __ror__(self, other): return _ew().logical_or(other, self)
    def __xor__(self, other): return _ew().logical_xor(self, other)
    def __invert__(self): return _ew().logical_not(self)

    def __matmul__(self, other):
        from graphc.ops import linalg
        return linalg.matmul(self, other)

    def __rmatmul__(self, other):
        from graphc.ops import linalg
        return linalg.matmul(other, self)

    def __getitem__(self, index):
        from graphc.ops import indexing
        return indexing.getitem(self, index)

    # -- method spellings of common ops, as NumPy users expect ---------------------------------
    def sum(self, axis=None, keepdims=False): return _reduce().sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _reduce().mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _reduce().max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return _reduce().min(self, axis, keepdims)
    def prod(self, axis=None, keepdims=False): return _reduce().prod(self, axis, keepdims)
    def var(self, axis=None, keepdims=False, ddof=0):
        return _reduce().var(self, axis, keepdims, ddof)

    def std(self, axis=None, keepdims=False, ddof=0):
        return _reduce().std(self, axis, keepdims, ddof)

    def argmax(self, axis=None, keepdims=False): return _reduce().argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return _reduce().argmin(self, axis, keepdims)

    def reshape(self, *shape):
        from graphc.ops import shape as shape_ops
        return shape_ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        from graphc.ops import shape as shape_ops
        return shape_ops.transpose(self, (axes[0] if len(axes) == 1 else axes) or None)

    @property
    def T(self):
        from graphc.ops import shape as shape_ops
        return shape_ops.transpose(self)

    def astype(self, dtype):
        return _ew().cast(self, dtype)


class Param(Tensor):
    """A leaf that holds a value between calls; training updates replace it."""

    __slots__ = ("_value",)

    def __setattr__(self, name: str, value: object) -> None:
        if name != "value":  # only the held value may change; the node stays immutable
            super().__setattr__(name, value)
        else:
            Param.value.fset(self, value)  # type: ignore[attr-defined]

    @property
    def value(self) -> np.ndarray:
        return self._value

    @value.setter
    def value(self, new: Any) -> None:
        new = np.asarray(new)
        if new.shape != self.shape or new.dtype.name != self.dtype:
            raise GraphcTypeError(
                "param", f"cannot set {self.name!r} of type {self.type} to an array of "
                f"{new.dtype.name}{format_shape(new.shape)}", (self.type,), self.location)
        object.__setattr__(self, "_value", new.copy())

    def _assign(self, new: np.ndarray) -> None:
        """Overwrite in place, keeping the array object users may hold (shape already checked)."""
        np.copyto(self._value, new, casting="unsafe")


def _ew():
    from graphc.ops import elementwise
    return elementwise


def _reduce():
    from graphc.ops import reduce
    return reduce


# -- where nodes come from: scopes and origins ---------------------------------------------------

_SCOPE: contextvars.ContextVar[str] = contextvars.ContextVar("graphc_scope", default="")
# Set while a rewrite builds replacement nodes: they take the location and scope of the
# node they replace, so errors and drawings still point at the user's line and layer.
_ORIGIN: contextvars.ContextVar[tuple[SourceLocation | None, str] | None] = \
    contextvars.ContextVar("graphc_origin", default=None)


@contextlib.contextmanager
def scope(name: str) -> Iterator[str]:
    """Group the nodes built inside under ``name`` (nested scopes join with ``/``).

    Scopes are for people: drawings cluster and collapse them, and params built inside
    are listed under them. A hash-consed node keeps the scope it was first built in.
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"scope names are non-empty strings without '/', got {name!r}")
    outer = _SCOPE.get()
    path = f"{outer}/{name}" if outer else name
    token = _SCOPE.set(path)
    try:
        yield path
    finally:
        _SCOPE.reset(token)


def current_scope() -> str:
    """The scope path nodes built now are recorded in (``""`` outside every scope)."""
    return _SCOPE.get()


@contextlib.contextmanager
def built_as(node: Tensor) -> Iterator[None]:
    """Nodes built inside take ``node``'s location and scope (rewrites use this, so the
    nodes they create still point at the user's line)."""
    token = _ORIGIN.set((node.location, node.scope))
    try:
        yield
    finally:
        _ORIGIN.reset(token)


def _origin() -> tuple[SourceLocation | None, str]:
    origin = _ORIGIN.get()
    return origin if origin is not None else (user_location(), _SCOPE.get())


# -- building nodes ---------------------------------------------------------------------------

def freeze_attrs(attrs: Mapping[str, Any]) -> Attrs:
    """Sorted ``(name, value)`` pairs with lists turned to tuples and NumPy scalars to Python."""
    return tuple(sorted((k, _freeze(v)) for k, v in attrs.items()))


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype):
        return value.name
    return value


def find_node(op: Op, inputs: tuple[Tensor, ...], attrs: Attrs) -> Tensor | None:
    """The node ``(op, inputs, attrs)`` if it was built before and is still alive."""
    return _NODES.get((op, inputs, attrs))


def make_node(op: Op, inputs: tuple[Tensor, ...], attrs: Attrs, type: TensorType) -> Tensor:
    """Return the unique node for ``(op, inputs, attrs)``, building it if new."""
    key = (op, inputs, attrs)
    node = _NODES.get(key)
    if node is None:
        node = Tensor(op, inputs, attrs, type, *_origin())
        _NODES[key] = node
    return node


def _make_leaf(cls: type[Tensor], op: Op, attrs: dict[str, Any], type: TensorType) -> Tensor:
    """Leaves other than constants are unique: two inputs named "x" are two inputs."""
    attrs = {**attrs, "uid": next(_LEAF_IDS)}
    return cls(op, (), freeze_attrs(attrs), type, user_location(), _SCOPE.get())


def input(name: str, shape: Iterable[int | str] | int = (), dtype: Any = "float32") -> Tensor:
    """A graph input, fed at call time. String dims are symbolic (``("batch", 4)``)."""
    from graphc.ops.leaves import INPUT
    if not isinstance(name, str) or not name:
        raise TypeError(f"input names must be non-empty strings, got {name!r}")
    type = TensorType(as_shape(shape), as_dtype(dtype))
    derived = [d for d in type.shape if isinstance(d, str) and not d.isidentifier()]
    if derived:
        raise ValueError(f"input {name!r}: symbolic dims of inputs are plain names, got "
                         f"derived size {derived[0]!r}; name it, e.g. 'batch'")
    return _make_leaf(Tensor, INPUT, {"name": name}, type)


def param(name: str, value: Any, dtype: Any = None) -> Param:
    """A trainable parameter holding ``value``; read it with ``.value``."""
    from graphc.ops.leaves import PARAM
    if not isinstance(name, str) or not name:
        raise TypeError(f"param names must be non-empty strings, got {name!r}")
    array = np.array(value, dtype=dtype, order="C")  # backends may rely on row-major params
    type = TensorType(array.shape, as_dtype(array.dtype))
    node = _make_leaf(Param, PARAM, {"name": name}, type)
    object.__setattr__(node, "_value", array)
    return node  # type: ignore[return-value]


def constant(value: Any, dtype: Any = None) -> Tensor:
    """A constant, hash-consed by value: equal constants are one node."""
    from graphc.ops.leaves import CONSTANT, Literal
    array = np.array(value, dtype=dtype)
    if array.dtype.kind in "OUSV" or array.dtype.name not in _SUPPORTED:
        raise TypeError(f"constant of unsupported dtype {array.dtype}")
    array.setflags(write=False)
    type = TensorType(array.shape, array.dtype.name)
    return make_node(CONSTANT, (), (("value", Literal(array)),), type)


_SUPPORTED = frozenset(
    ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "float32", "float64"))


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """A tensor for ``value``. Python scalars are weakly typed: they take ``like``'s dtype
    when NumPy's promotion would (``0.1 * float32`` stays float32)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, bool | int | float) and like is not None:
        return constant(value, dtype=_weak_scalar_dtype(like.dtype, type(value)))
    return constant(value)


@functools.lru_cache(maxsize=256)
def _weak_scalar_dtype(dtype: str, kind: type) -> str:
    """NEP 50: the dtype a Python scalar of ``kind`` takes beside a ``dtype`` array."""
    return np.result_type(dtype, kind(0)).name


def shape_is_static(t: Tensor) -> bool:
    return is_static(t.shape)
