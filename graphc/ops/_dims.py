"""What the shape and indexing ops share: argument errors, and the dims that slicing
and padding derive at run time.

Slicing and padding symbolic dims
---------------------------------
A slice of a symbolic dim ``n`` has a size that follows Python's slice rules at
run time. Its static type is chosen so that it is never silently wrong:

* a slice whose bounds do not depend on ``n`` (``x[1:3]``, ``x[:4]``, ``x[-2:]``,
  ``x[-1:-4:-1]``) gets the **static** size it has whenever ``n`` is large enough;
  the op checks at run time that it really produced that many elements and raises
  (naming the node) otherwise;
* the full slice (``x[:]``, ``x[::-1]``) keeps ``n``;
* a slice whose size grows with ``n`` gets a **derived** dim named after that size:
  ``n-k`` (``x[1:]``, ``x[:-1]`` both give ``"n-1"``, so ``x[1:] - x[:-1]``
  broadcasts), ``n/s`` or ``(n-k)/s`` for a step ``s`` (``/`` is ceiling division);
  padding adds the other way (``"n+2"``) and cancels (``pad`` of ``"n-2"`` by 2 is
  ``n`` again). A derived product such as ``"n*4"`` is written ``(n·4)`` inside
  such a name so that products still split on ``*``. Bounds of mixed sign with a
  negative start (``x[-5:3]``) get an opaque name spelling the slice (``"n[-5:3]"``).

The numpy backend binds a derived dim when the node that creates it runs (the op
is passed the call's ``dims``): its size is then known to every node downstream,
and a later node deriving the same name checks that it agrees.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from graphc.errors import GraphcTypeError, user_location
from graphc.ops.base import Op
from graphc.tensor import Tensor
from graphc.types import Dim, Shape, as_shape, resolve_dim


class checked_arguments:  # noqa: N801 - used as a function: ``with checked_arguments(...)``
    """Report a ``ValueError``/``TypeError`` raised while normalising ``op``'s arguments
    (a bad axis, a bad index) as a ``GraphcTypeError`` naming the op and its input types.

    A class rather than ``contextlib.contextmanager``, so that the user's line is found
    by walking out of graphc's own frames.
    """

    def __init__(self, op: str, *inputs: Tensor) -> None:
        self.op, self.inputs = op, inputs

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, tb: Any) -> None:
        if isinstance(error, GraphcTypeError) or not isinstance(error, TypeError | ValueError):
            return
        raise GraphcTypeError(self.op, str(error), tuple(t.type for t in self.inputs),
                              user_location()) from None


def as_result_shape(shape: Any) -> Shape:
    """``types.as_shape``, also accepting the dims that slicing and padding derive at run
    time (``"n-1"``, ``"n/2"``), read off other tensors' shapes."""
    dims = (shape,) if isinstance(shape, int | str) else tuple(shape)
    runtime = {k for k, d in enumerate(dims) if isinstance(d, str) and _RUNTIME_DIM.search(d)}
    checked = list(as_shape(tuple("_" if k in runtime else d for k, d in enumerate(dims))))
    for k in runtime:
        checked[k] = dims[k]
    return tuple(checked)


# -- derived dims (see the module docstring) ---------------------------------------------------

_OFFSET = re.compile(r"(.+?)([+-]\d+)")
_RUNTIME_DIM = re.compile(r"[-+/()\[\]·]")  # characters only run-time derived dims hold
_WRAPPED_PRODUCT = re.compile(r"\(([^()]*·[^()]*)\)")


def _atom(dim: str) -> str:
    """``dim`` as one factor of a product: a derived product ``a*b`` becomes ``(a·b)``."""
    return f"({dim.replace('*', '·')})" if "*" in dim else dim


def _unatom(dim: str) -> str:
    product = _WRAPPED_PRODUCT.fullmatch(dim)
    return product[1].replace("·", "*") if product else dim


def offset_dim(dim: Dim, delta: int) -> Dim:
    """The size ``dim + delta``: an int, ``dim`` itself, or a derived name ``"n-1"``."""
    if isinstance(dim, int):
        return dim + delta
    match = _OFFSET.fullmatch(dim)
    base, offset = (match[1], int(match[2])) if match else (_atom(dim), 0)
    offset += delta
    return _unatom(base) if offset == 0 else f"{base}{offset:+d}"


def _ceil_div_dim(dim: Dim, step: int) -> Dim:
    """``ceil(dim / step)`` for a positive ``step``."""
    if step == 1:
        return dim
    if isinstance(dim, int):
        return -(-dim // step)
    return f"{dim}/{step}" if dim.isidentifier() else f"({dim.replace('*', '·')})/{step}"


def _endpoint(value: int | None, default: tuple[str, int]) -> tuple[str, int]:
    """A slice bound over a symbolic size ``n``: ``("abs", c)`` is ``c``, ``("end", c)`` is
    ``n - c``."""
    if value is None:
        return default
    return ("abs", value) if value >= 0 else ("end", -value)


def slice_length(n: Dim, start: int | None, stop: int | None, step: int | None) -> Dim:
    """How many elements ``range(n)[start:stop:step]`` has, for a static or symbolic ``n``."""
    if isinstance(n, int):
        return len(range(*slice(start, stop, step).indices(n)))
    step = 1 if step is None else step
    if step > 0:
        hi, lo = _endpoint(stop, ("end", 0)), _endpoint(start, ("abs", 0))
    else:  # counting down from start to just above stop; "abs -1" is "below index 0"
        hi, lo = _endpoint(start, ("end", 1)), _endpoint(stop, ("abs", -1))
    if hi[0] == lo[0]:  # n cancels: the size is static once n is large enough
        span = hi[1] - lo[1] if hi[0] == "abs" else lo[1] - hi[1]
        return max(0, -(-span // abs(step)))
    if hi[0] == "end":  # (n - c) - b
        return _ceil_div_dim(offset_dim(n, -(hi[1] + lo[1])), abs(step))
    spelled = ":".join("" if v is None else str(v) for v in (start, stop))
    return f"{_atom(n)}[{spelled}{'' if step == 1 else f':{step}'}]"


class BindsDims(Op):
    """An op whose result may hold a dim known only at run time (a slice or a padding of a
    symbolic dim). The numpy backend passes it the call's ``dims``: it checks the dims it
    promised and binds the derived ones for the nodes downstream."""

    def binds_dims(self, node: Tensor) -> tuple[str, ...]:
        """The symbolic dims of ``node``'s type that its inputs' types do not hold: known
        once it has run (the graph check counts them as bound from there on)."""
        known = {d for i in node.inputs for d in i.shape if isinstance(d, str)}
        return tuple(d for d in node.shape if isinstance(d, str) and d not in known)

    def emit(self, args: list[str], attrs: dict[str, str]) -> str:
        params = [*args, *(f"{k}={v}" for k, v in attrs.items()), "dims=dims"]
        return f"{self.name}({', '.join(params)})"


def check_result_shape(out: np.ndarray, declared: Shape, dims: dict | None) -> np.ndarray:
    for axis, (want, got) in enumerate(zip(declared, out.shape, strict=True)):
        if isinstance(want, str) and dims is not None:
            try:
                want = resolve_dim(want, dims)
            except KeyError:  # a derived dim this node creates: bind it
                dims[want] = got
                continue
        if isinstance(want, int) and want != got:
            raise ValueError(f"the result has {got} elements along axis {axis} where the graph "
                             f"was built for {want} (a slice or padding of a symbolic dim that "
                             "is too small at run time)")
    return out
