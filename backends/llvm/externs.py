"""External functions native code calls through the entry's ``fns`` argument.

Their addresses are looked up at run time (never baked into code), so a compiled
object can be cached on disk and reloaded in another process. A name's position in
``NAMES`` is part of the compiled code (``fns[position]``), so names are registered
here, at import, in a fixed order.

BLAS functions are Fortran-style, every argument by pointer (``sgemm(char *transa,
char *transb, int *m, int *n, int *k, float *alpha, float *a, int *lda, float *b,
int *ldb, float *beta, float *c, int *ldc)``, column-major), from the first of:

1. NumPy's own OpenBLAS (``numpy.libs/libscipy_openblas64_*``, already loaded by NumPy):
   ``scipy_sgemm_64_``, with 64-bit ints (ILP64; names ``sgemm64`` / ``dgemm64`` here).
   Sharing NumPy's library shares its thread pool: two OpenBLAS copies in one process
   each keep threads spinning after a product, and on 2 cores they starve each other
   (an MLP step that alternates with NumPy matmuls ran 2-5x slower on 2 threads).
2. The OpenBLAS SciPy's wheel bundles (``scipy.libs``), opened without importing SciPy
   (``import scipy.linalg`` costs ~0.4 s): ``scipy_sgemm_``, 32-bit ints (LP64), the very
   function ``cython_blas.sgemm`` calls.
3. ``scipy.linalg.cython_blas``'s ``PyCapsule`` (a distribution's or conda's SciPy).

Lowering asks ``ilp64()`` which interface to emit; the choice is part of the cache key.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the runtime resolves addresses without loading llvmlite
    import llvmlite.ir as ir


def capsule_address(capsule: object) -> int:
    """The pointer a ``PyCapsule`` holds (looked up under the capsule's own name)."""
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    address = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    if not address:
        raise RuntimeError(f"empty capsule {capsule!r}")
    return address


def _wheel_libraries(package: str, pattern: str) -> list[Path]:
    """The shared libraries matching ``pattern`` that ``package``'s wheel bundles (in
    ``site-packages/<package>.libs``), found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return []
    return sorted((Path(spec.origin).parent.parent / f"{package}.libs").glob(pattern))


@functools.cache
def numpy_openblas() -> ctypes.CDLL | None:
    """NumPy's own OpenBLAS (ILP64), when its wheel bundles one with the ``scipy_*64_``
    symbols; None otherwise (NumPy built against another BLAS)."""
    for path in _wheel_libraries("numpy", "libscipy_openblas64_*.so*"):
        library = ctypes.CDLL(str(path))
        if all(hasattr(library, f"scipy_{n}_64_") for n in ("sgemm", "dgemm")):
            return library
    return None


def ilp64() -> bool:
    """Does this process call BLAS with 64-bit ints (NumPy's OpenBLAS)?"""
    return numpy_openblas() is not None


@functools.cache
def bundled_openblas() -> ctypes.CDLL | None:
    """The OpenBLAS in SciPy's wheel (``site-packages/scipy.libs``), opened without
    importing SciPy; None where SciPy was built against another BLAS."""
    for path in _wheel_libraries("scipy", "libscipy_openblas*.so*"):
        if "64_" not in path.name:  # the LP64 build (32-bit ints), as cython_blas uses
            return ctypes.CDLL(str(path))
    return None


def _blas(name: str) -> Callable[[], int]:
    def resolve() -> int:
        library = bundled_openblas()
        symbol = getattr(library, f"scipy_{name}_", None) if library is not None else None
        if symbol is not None:
            return ctypes.cast(symbol, ctypes.c_void_p).value
        from scipy.linalg import cython_blas  # loaded only by code that calls BLAS

        return capsule_address(cython_blas.__pyx_capi__[name])
    return resolve


def _blas64(name: str) -> Callable[[], int]:
    def resolve() -> int:
        library = numpy_openblas()
        if library is None:
            raise RuntimeError(f"{name}64 needs NumPy's bundled OpenBLAS, not found")
        return ctypes.cast(getattr(library, f"scipy_{name}_64_"), ctypes.c_void_p).value
    return resolve


def _libc(name: str) -> Callable[[], int]:
    def resolve() -> int:
        return ctypes.cast(getattr(ctypes.CDLL(None), name), ctypes.c_void_p).value
    return resolve


#: name -> resolver returning the function's address in this process. The order is fixed
#: here, once: a name's position is compiled into code that may be cached on disk.
RESOLVERS: dict[str, Callable[[], int]] = {
    "sgemm": _blas("sgemm"),
    "dgemm": _blas("dgemm"),
    "pthread_create": _libc("pthread_create"),
    "pthread_join": _libc("pthread_join"),
    "sgemm64": _blas64("sgemm"),
    "dgemm64": _blas64("dgemm"),
}
NAMES: tuple[str, ...] = tuple(RESOLVERS)


@functools.cache
def address(name: str) -> int:
    """The address of external function ``name`` in this process."""
    return RESOLVERS[name]()


def addresses(used: Iterable[str] = NAMES) -> tuple[int, ...]:
    """The ``fns`` array: the address of each name in ``NAMES`` that ``used`` lists, 0 for
    the others (so a graph that calls no BLAS never imports SciPy)."""
    wanted = set(used)
    return tuple(address(name) if name in wanted else 0 for name in NAMES)


class Callee:
    """A function pointer as ``IRBuilder.call`` wants it (opaque pointers carry no type)."""

    def __init__(self, pointer: ir.Value, function_type: ir.FunctionType) -> None:
        self.pointer = pointer
        self.function_type = function_type
        self.type = pointer.type

    def get_reference(self) -> str:
        return self.pointer.get_reference()
