"""Cached objects linked into shared libraries, loaded with ctypes.

Loading an object file takes LLVM's JIT linker, so a process that runs cached code
would import llvmlite for that alone (30-40 ms, the largest part of a warm start).
A shared library needs only the system's dynamic loader. The first process that loads
an object from the cache links it (``cc -shared``, on a thread of its own while the
program goes on) and stores the library beside it with its sha256; later processes
load the library. A graph compiled once and never loaded again is never linked.
Without a C compiler, or if the library is missing, corrupt or does not load, the
object is used as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from graphc.backends.llvm import cache
from graphc.backends.llvm.abi import ENTRY

#: the links running on background threads (tests wait for them; exit waits too)
_LINKS: list[threading.Thread] = []


class Library:
    """A shared library from the cache, loaded; keep it alive while calling into it."""

    def __init__(self, path: Path) -> None:
        self._dll = ctypes.CDLL(str(path))

    def address(self, symbol: str) -> int:
        """The address of a function the library exports."""
        try:
            return ctypes.cast(getattr(self._dll, symbol), ctypes.c_void_p).value or 0
        except AttributeError:
            raise KeyError(f"symbol {symbol!r} not found in the cached library") from None


def _names(object_key: str) -> tuple[str, str]:
    return f"{object_key}.so", f"{object_key}.so.sha256"


def load(object_key: str) -> Library | None:
    """The library linked from object ``object_key``, or None when there is none, or it
    does not match its checksum, or does not load."""
    where = cache.directory()
    if where is None:
        return None
    name, checksum = _names(object_key)
    expected = cache.read(checksum)
    try:
        data = (where / name).read_bytes()
    except OSError:
        return None
    if expected is None or hashlib.sha256(data).digest() != expected:
        return None
    try:
        library = Library(where / name)
        library.address(ENTRY)
    except (OSError, KeyError):
        return None
    return library


def compiler() -> str | None:
    """The C compiler driver (``$CC``, else ``cc``), or None when there is none."""
    return shutil.which(os.environ.get("CC", "cc"))


def link_later(object_key: str, objects: Sequence[bytes]) -> None:
    """Link ``objects`` into the cached library of ``object_key`` on a background thread
    (nothing when the cache is off or there is no C compiler)."""
    where, cc = cache.directory(), compiler()
    if where is None or cc is None:
        return
    thread = threading.Thread(target=_link, args=(cc, where, object_key, objects),
                              name=f"graphc link {object_key[:12]}")
    _LINKS.append(thread)
    thread.start()


def wait() -> None:
    """Wait for the links started so far."""
    while _LINKS:
        _LINKS.pop().join()


def _link(cc: str, where: Path, object_key: str, objects: Sequence[bytes]) -> None:
    """``cc -shared`` in a scratch directory, then the library and its checksum moved in:
    readers see no library, or a whole one (which the checksum then vouches for)."""
    name, checksum = _names(object_key)
    with contextlib.suppress(OSError), tempfile.TemporaryDirectory(dir=where,
                                                                   prefix=".link-") as tmp:
        sources = [Path(tmp) / f"code{k}.o" for k in range(len(objects))]
        built = Path(tmp) / "code.so"
        for source, obj in zip(sources, objects, strict=True):
            source.write_bytes(obj)
        # no executable stack: LLVM's objects do not say, and some loaders refuse one
        done = subprocess.run([cc, "-shared", "-Wl,-z,noexecstack", "-o", str(built),
                               *map(str, sources)], capture_output=True)
        if done.returncode:
            return
        digest = hashlib.sha256(built.read_bytes()).digest()
        os.replace(built, where / name)
        cache.write(checksum, digest, where)
