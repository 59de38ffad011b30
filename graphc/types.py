"""Tensor types: a shape of ints and symbolic dims, and a NumPy dtype.

A symbolic dim is a string naming a size known only at call time (``"batch"``).
Two dims with the same name are the same size; the compiled function checks
that every argument agrees. Derived dims (``reshape`` of a symbolic shape) are
strings such as ``"batch*4"``: they compare equal when derived the same way.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

Dim = int | str
Shape = tuple[Dim, ...]

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
DTYPES = ("bool", *INT_DTYPES, *FLOAT_DTYPES)


@dataclass(frozen=True, slots=True)
class TensorType:
    """The static type of a node: its shape and dtype name."""

    shape: Shape
    dtype: str

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def __str__(self) -> str:
        return f"{self.dtype}{format_shape(self.shape)}"


def format_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def as_dtype(dtype: object) -> str:
    """Normalise any NumPy dtype spelling to its canonical name, rejecting unsupported ones."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return dtype
    name = np.dtype(dtype).name  # type: ignore[call-overload]
    if name not in DTYPES:
        raise TypeError(f"unsupported dtype {name!r}; graphc supports {', '.join(DTYPES)}")
    return name


def as_shape(shape: object) -> Shape:
    """Normalise a user shape: an int, or a sequence of non-negative ints and dim names.

    A name is an identifier (``"batch"``) or a derived size, a product such as
    ``"batch*4"``; derived sizes are put in the canonical form ``shape_size`` uses, so
    ``"4*batch"`` and ``"batch*4"`` are one dim.
    """
    if isinstance(shape, int | str):
        shape = (shape,)
    dims = []
    for d in shape:  # type: ignore[union-attr]
        if isinstance(d, np.integer):
            d = int(d)
        if isinstance(d, bool) or not isinstance(d, int | str):
            raise TypeError(f"shape dims must be ints or names, got {d!r} in {shape!r}")
        if isinstance(d, int) and d < 0:
            raise ValueError(f"shape dims must be non-negative, got {d} in {shape!r}")
        dims.append(_canonical_dim(d, shape) if isinstance(d, str) else d)
    return tuple(dims)


def is_derived(dim: Dim) -> bool:
    """True for a derived symbolic size such as ``"batch*4"`` (not a plain name)."""
    return isinstance(dim, str) and "*" in dim


def _canonical_dim(dim: str, shape: object) -> Dim:
    parts = dim.split("*")
    if not all(p.isidentifier() or p.isdigit() for p in parts):
        raise ValueError(f"symbolic dims are identifiers or products of identifiers and ints "
                         f"(\"batch*4\"), got {dim!r} in {shape!r}")
    return shape_size(tuple(int(p) if p.isdigit() else p for p in parts))


def is_static(shape: Shape) -> bool:
    return all(isinstance(d, int) for d in shape)


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting over static and symbolic dims.

    A symbolic dim broadcasts against 1 and against itself; against any other
    size it is an error, since the sizes would have to agree at call time.
    Raises ValueError naming the dims that clash.
    """
    if all(s == shapes[0] for s in shapes):
        return shapes[0] if shapes else ()
    ndim = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for axis in range(ndim):
        dims = [s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0]
        out.append(_broadcast_dim(dims, axis - ndim))
    return tuple(out)


def _broadcast_dim(dims: list[Dim], axis: int) -> Dim:
    sizes = {d for d in dims if d != 1}
    if not sizes:
        return 1
    if len(sizes) > 1:
        raise ValueError(f"dims {' vs '.join(map(str, sorted(sizes, key=str)))} at axis {axis}")
    return sizes.pop()


@functools.lru_cache(maxsize=1024)
def promote_types(*dtypes: str) -> str:
    """NumPy's type promotion (``np.result_type``) on dtype names."""
    return np.result_type(*dtypes).name


def shape_size(shape: Shape) -> Dim:
    """The number of elements: an int, or a derived symbolic name such as ``"batch*12"``.

    Derived dims inside ``shape`` are split into their factors, so the result is canonical:
    names sorted, their static factor last (``("n", "batch*2", 3)`` → ``"batch*n*6"``).
    """
    static, names = 1, []
    for d in shape:
        for part in (d.split("*") if isinstance(d, str) else (d,)):
            if isinstance(part, int) or part.isdigit():
                static *= int(part)
            else:
                names.append(part)
    if not names or static == 0:
        return static
    return "*".join(sorted(names) + ([str(static)] if static != 1 else []))


def resolve_dim(dim: Dim, dims: dict[str, int]) -> int:
    """The size of ``dim`` once the symbolic sizes ``dims`` are known (``"batch*4"`` too)."""
    if isinstance(dim, int):
        return dim
    return math.prod(int(part) if part.isdigit() else dims[part] for part in dim.split("*"))


def normalize_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise ValueError(f"axis {axis} is out of range for {ndim} dims")
    return axis % max(ndim, 1)


def normalize_axes(axis: int | tuple[int, ...] | list[int] | None, ndim: int) -> tuple[int, ...]:
    """Sorted, non-negative axes; ``None`` means all of them."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int | np.integer):
        axis = (int(axis),)
    axes = tuple(sorted(normalize_axis(int(a), ndim) for a in axis))
    if len(set(axes)) != len(axes):
        raise ValueError(f"repeated axis in {axis}")
    return axes
