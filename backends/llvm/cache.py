"""The disk cache of compiled code: optimizing and generating code costs ~0.1-1 s, loading
an object a few milliseconds.

Entries live in ``$GRAPHC_CACHE_DIR``, else ``$XDG_CACHE_HOME/graphc/llvm``, else
``~/.cache/graphc/llvm``; ``GRAPHC_CACHE=0`` turns the cache off. There are two kinds,
each named by a sha256:

- ``<object key>.o``, the object files (``pack_objects``: a module compiled in parts has
  one per part), keyed by what the machine code depends on: the unoptimized IR of the
  parts (it encodes the whole graph: ops, shapes, dtypes, slot order), the layout that
  calls it, the host (CPU, features, llvmlite) and graphc's version.
  Constant *values* are slots filled at run time, not part of the object: two graphs
  differing only in constant values share an object exactly when their IR is the same.
- ``<graph key>.json``, an index entry, keyed by the graph itself (every node's op,
  attributes, type and inputs, constant values included), by the source of graphc and
  of this backend, and by the settings lowering reads (the thread count): it holds the
  layout, the schedule and the object key, so a hit skips lowering too (lowering an MLP
  training step in Python takes ~50-100 ms, far more than loading its object). Any change
  to graphc's source changes every graph key, so an index never describes code that a
  newer lowering would generate differently.

Writes are atomic (a temporary file in the same directory, fsync, ``os.replace``), so no
process ever sees a partial entry, and the object is written before the index naming it.
Each entry starts with a header (magic, payload length, payload sha256): a corrupt or
truncated entry reads as absent, so it is recompiled and overwritten. A cache that
cannot be written (a read-only disk) is skipped with a warning: it never stops a compile.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import struct
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from graphc.backends.llvm.abi import Buffer, Layout
from graphc.graph import Graph
from graphc.ops.leaves import Literal
from graphc.tensor import Tensor

MAGIC = b"GRAPHCO1"
HEADER = struct.Struct("<8sQ32s")  # magic, payload length, sha256 of the payload
#: what an object depends on beyond its IR: bump when the pass pipeline or an entry ABI changes
FORMAT = "llvm-object-3|O3+loop-vectorize+slp"  # 3: several objects per entry
#: attributes that tell apart leaves built alike and mean nothing to the code
IGNORED_ATTRS = ("uid",)


class Uncacheable(Exception):
    """A graph holds an attribute with no stable serialization (never for graphc's ops)."""


# -- where and how entries are stored ------------------------------------------------------------

def directory() -> Path | None:
    """Where entries live, or None when ``GRAPHC_CACHE=0``."""
    if os.environ.get("GRAPHC_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if path := os.environ.get("GRAPHC_CACHE_DIR"):
        return Path(path).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc" / "llvm"


def read(name: str) -> bytes | None:
    """The payload of entry ``name``, or None if absent, disabled or corrupt."""
    where = directory()
    if where is None:
        return None
    try:
        data = (where / name).read_bytes()
    except OSError:
        return None
    return unpack(data)


def write(name: str, payload: bytes, where: Path | None = None) -> None:
    """Store ``payload`` as entry ``name``, atomically, in ``where`` (default: the cache
    directory now; a no-op when disabled)."""
    where = directory() if where is None else where
    if where is None:
        return
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pack(payload))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, where / name)  # readers see the old file or the new one, whole
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:  # Python's warning filter shows this once per message
        warnings.warn(f"graphc: cannot write the code cache at {where} ({e}); "
                      "set GRAPHC_CACHE_DIR, or GRAPHC_CACHE=0", RuntimeWarning, stacklevel=2)


def pack(payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest()) + payload


def unpack(data: bytes) -> bytes | None:
    """The payload of an entry, or None if its magic, length or checksum is wrong."""
    if len(data) < HEADER.size:
        return None
    magic, length, digest = HEADER.unpack_from(data)
    payload = data[HEADER.size:]
    if magic != MAGIC or length != len(payload) or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


_COUNT = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")


def pack_objects(objects: Sequence[bytes]) -> bytes:
    """Object files as one payload: their count, their lengths, then their bytes."""
    head = _COUNT.pack(len(objects)) + b"".join(_LENGTH.pack(len(o)) for o in objects)
    return head + b"".join(objects)


def unpack_objects(payload: bytes) -> list[bytes] | None:
    """The object files of a ``pack_objects`` payload, or None if it is not one."""
    try:
        (count,) = _COUNT.unpack_from(payload)
        lengths = [_LENGTH.unpack_from(payload, _COUNT.size + _LENGTH.size * k)[0]
                   for k in range(count)]
    except struct.error:
        return None
    start = _COUNT.size + _LENGTH.size * count
    if count == 0 or start + sum(lengths) != len(payload):
        return None
    objects = []
    for length in lengths:
        objects.append(payload[start:start + length])
        start += length
    return objects


# -- keys -----------------------------------------------------------------------------------------

def digest(parts: Iterable[str | bytes]) -> str:
    """The sha256 (hex) of ``parts``, each length-prefixed so no two splits collide."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(struct.pack("<Q", len(data)))
        h.update(data)
    return h.hexdigest()


def graphc_version() -> str:
    import graphc

    return graphc.__version__


@functools.cache
def source_digest() -> str:
    """A digest of graphc's and this backend's Python source files: their paths, sizes and
    modification times, as CPython validates its bytecode caches. Editing or reinstalling
    any file changes it; reading the files would cost a warm start ~10 ms (and pathlib's
    ``rglob`` 4 ms, ``os.walk`` 1.4)."""
    import graphc

    roots = {os.path.dirname(graphc.__file__), os.path.dirname(__file__)}
    entries = set()
    for root in roots:
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = [d for d in subfolders if d != "__pycache__"]
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    st = os.stat(path)
                    entries.add(f"{path}|{st.st_size}|{st.st_mtime_ns}")
    return digest(sorted(entries))


def layout_json(layout: Layout) -> dict[str, Any]:
    """The layout as JSON data: everything but the constants' values."""
    def buffers(group: list[Buffer]) -> list[list[Any]]:
        return [[list(b.shape), b.dtype, list(b.live)] for b in group]

    return {"inputs": buffers(layout.inputs), "params": buffers(layout.params),
            "constants": [[list(c.shape), c.dtype.name] for c in layout.constants],
            "outputs": buffers(layout.outputs), "updates": buffers(layout.updates),
            "scratch": buffers(layout.scratch), "dims": list(layout.dims),
            "updates_in_place": sorted(layout.updates_in_place),
            "update_params": list(layout.update_params), "externs": list(layout.externs)}


def layout_from_json(data: dict[str, Any], constants: list[Any]) -> Layout:
    """The ``Layout`` that ``layout_json`` wrote, with the constants' arrays given."""
    def buffers(group: list[list[Any]]) -> list[Buffer]:
        return [Buffer(tuple(shape), dtype, tuple(live)) for shape, dtype, live in group]

    return Layout(inputs=buffers(data["inputs"]), params=buffers(data["params"]),
                  constants=constants, outputs=buffers(data["outputs"]),
                  updates=buffers(data["updates"]), scratch=buffers(data["scratch"]),
                  dims=list(data["dims"]), updates_in_place=set(data["updates_in_place"]),
                  update_params=list(data["update_params"]),
                  externs=list(data.get("externs", ())))


def object_key(ir_text: str, layout: Layout, host: str) -> str:
    """The name of the object compiled from ``ir_text`` on ``host``."""
    return digest((FORMAT, graphc_version(), host,
                    json.dumps(layout_json(layout), sort_keys=True), ir_text))


def nodes_of(graph: Graph) -> list[Tensor]:
    """Every node the layout can name: the schedule's, then listed inputs the outputs do not
    read, then params only updated (the graph key and index entries number these)."""
    nodes = list(graph.toposort())
    seen = set(nodes)
    nodes += [n for n in (*graph.inputs, *graph.params) if n not in seen]
    return nodes


def settings() -> str:
    """What lowering reads besides the graph: the thread count loops are split across, and
    the integer width of the BLAS this process calls."""
    from graphc.backends.llvm import externs, host

    try:
        return f"threads={host.num_threads()}|blas ilp64={externs.ilp64()}"
    except ValueError as e:  # a bad GRAPHC_NUM_THREADS: lowering will say so
        raise Uncacheable(str(e)) from None


def graph_key(graph: Graph, host: str) -> str:
    """The name of the index entry of ``graph`` on ``host``; raises ``Uncacheable``."""
    nodes = nodes_of(graph)
    index = {n: k for k, n in enumerate(nodes)}
    parts: list[str | bytes] = [FORMAT, graphc_version(), source_digest(), host, settings()]
    for n in nodes:
        attrs = tuple((k, v) for k, v in n.attrs if k not in IGNORED_ATTRS)
        parts.append(f"{n.op.name}|{_canon(attrs)}|{n.shape!r}|{n.dtype}|"
                     f"{[index[i] for i in n.inputs]}")
    parts.append(repr([index[i] for i in graph.inputs]))
    parts.append(repr([index[p] for p in graph.params]))
    parts.append(repr([index[o] for o in graph.outputs]))
    parts.append(repr([(index[p], index[v]) for p, v in graph.updates]))
    return digest(parts)


def _canon(value: Any) -> str:
    """A text that differs whenever ``value`` does (types included)."""
    if value is None or isinstance(value, bool | int | float | str):
        return f"{type(value).__name__}:{value!r}"  # repr round-trips floats exactly
    if isinstance(value, tuple):
        return "(" + ",".join(_canon(v) for v in value) + ")"
    if isinstance(value, Literal):
        a = value.array
        return f"lit:{a.dtype.str}{a.shape}:{hashlib.sha256(a.tobytes()).hexdigest()}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (_canon(getattr(value, f.name)) for f in dataclasses.fields(value))
        return f"{type(value).__qualname__}(" + ",".join(fields) + ")"
    raise Uncacheable(f"no stable serialization for a {type(value).__name__} attribute")
