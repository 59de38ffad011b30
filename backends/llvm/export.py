"""Ahead-of-time export: a graph becomes a shared library with a C ABI, a header and an
example program.

The library defines, for ``name="model"``::

    int model_run(int64_t batch, ..., const float *x, ..., float *W, ..., float *y, ...);
    const char *model_strerror(int status);

Arguments, in this order: one ``int64_t`` per symbolic dim (in the order the inputs
first name them), the inputs (``const``), the params when ``weights="argument"``, then
the outputs. Arrays are C-contiguous (row-major), of the dtype the header names, and must
not overlap. It returns 0, -1 when scratch memory could not be allocated, or a positive
status naming the node that failed (an index out of range); ``model_strerror`` says which.

Decisions:

- The wrapper is LLVM IR in the graph's own module (the graph's entry becomes internal
  and is inlined into it): it computes derived dims, ``malloc``s one arena for the
  intermediates (buffers whose lifetimes do not overlap share memory when every dim is
  static; with symbolic dims each buffer has its own range), fills the entry's slot
  array, calls the entry and ``free``s the arena. Thread-safe when weights are arguments.
- ``weights="embedded"``: params and constants become globals of the library (params
  writable). ``weights="argument"``: params are pointer arguments; constants stay
  embedded. A training graph updates its params *in place* after a successful call (in
  the caller's arrays, or in the embedded globals, whose values then persist for the
  life of the process); a failed call changes no param.
- BLAS (matmul, dense): the entry's ``fns`` table becomes a constant array of the BLAS
  symbols (the optimizer turns the calls direct; a graph without BLAS references none).
  The symbols are the Fortran ``sgemm_``/``dgemm_`` of a system OpenBLAS/BLAS when the
  linker finds one (``-lopenblas``, ``-lblas``), else SciPy's bundled OpenBLAS
  (``scipy.libs/libscipy_openblas*.so``, symbols ``scipy_sgemm_``...), linked with an
  rpath to that directory: such a library runs where that SciPy stays installed.
- Linking needs a C compiler driver (``$CC`` or ``cc``); the object comes from
  ``target.emit_object``, for the host CPU (the library is not portable to older CPUs).
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import llvmlite.ir as ir
import numpy as np

from graphc.backends.llvm import dims as dim_rules
from graphc.backends.llvm import externs, library, loops, target
from graphc.backends.llvm.dtypes import I8, I32, I64, PTR
from graphc.backends.llvm.lowering import ENTRY, Buffer, Layout, Lowered
from graphc.backends.llvm.lowering import lower as lower_graph
from graphc.backends.llvm.runtime import ALIGN, arena_layout
from graphc.errors import CompileError
from graphc.graph import Graph
from graphc.types import is_derived

WEIGHTS = ("embedded", "argument")
C_TYPES = {"bool": "bool", "float32": "float", "float64": "double", "float16": "uint16_t",
           **{f"int{b}": f"int{b}_t" for b in (8, 16, 32, 64)},
           **{f"uint{b}": f"uint{b}_t" for b in (8, 16, 32, 64)}}
#: external functions the library can link: name in ``externs`` -> Fortran BLAS symbol
BLAS_SYMBOLS = {"sgemm": "sgemm_", "dgemm": "dgemm_"}
#: other external functions: name in ``externs`` -> (C symbol, linker flag)
LIBC_SYMBOLS = {"pthread_create": ("pthread_create", "-lpthread"),
                "pthread_join": ("pthread_join", "-lpthread")}


class ExportError(CompileError):
    """The graph cannot be exported, or the library cannot be built here."""


@dataclass(frozen=True)
class Exported:
    """What ``export`` wrote."""

    library: Path
    header: Path | None
    example: Path | None
    #: the symbolic dims the run function takes, in order
    dims: tuple[str, ...]


@dataclass(frozen=True)
class Blas:
    """Where BLAS comes from: the symbol prefix and the linker flags."""

    prefix: str
    flags: tuple[str, ...]


def export(graph: Graph, path: str | os.PathLike, *, header: str | os.PathLike | None = None,
           weights: str = "embedded", name: str = "model",
           example: str | os.PathLike | None = None) -> Exported:
    """Build ``graph`` into the shared library ``path`` (see the module docstring)."""
    if weights not in WEIGHTS:
        raise ExportError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    if not name.isidentifier():
        raise ExportError(f"the function prefix must be a C identifier, got {name!r}")
    cc = compiler()
    lowered = lower_graph(graph, name, blas_ilp64=False)  # the linked BLAS takes 32-bit ints
    dims = base_dims(graph, lowered.layout)
    blas = find_blas(cc)
    _wrap(lowered, graph, dims, name, weights, blas)
    optimized = target.optimize(str(lowered.module))
    obj = target.emit_object(optimized)
    path = Path(path)
    flags = [*blas.flags] if any(_declared(optimized, blas.prefix + s)
                                 for s in BLAS_SYMBOLS.values()) else []
    flags += sorted({flag for symbol, flag in LIBC_SYMBOLS.values()
                     if _declared(optimized, symbol)})
    _link(cc, obj, path, flags)
    spec = Spec(graph, lowered.layout, dims, name, weights)
    header_path = Path(header) if header is not None else None
    if header_path is not None:
        header_path.write_text(spec.header())
    example_path = Path(example) if example is not None else None
    if example_path is not None:
        include = header_path.name if header_path is not None else f"{name}.h"
        example_path.write_text(spec.example(include))
    return Exported(path, header_path, example_path, tuple(dims))


# -- the wrapper -----------------------------------------------------------------------------------

def base_dims(graph: Graph, layout: Layout) -> list[str]:
    """The symbolic dims the caller passes: those the inputs name, in order of appearance.
    Every dim the code needs must derive from them."""
    names: list[str] = []
    for i in graph.inputs:
        names += [d for d in i.shape if isinstance(d, str) and not is_derived(d)
                  and d not in names]
    probe = {d: 7 + k for k, d in enumerate(names)}
    buffers = [*layout.outputs, *layout.updates, *layout.scratch]
    for d in [*layout.dims, *(d for b in buffers for d in b.shape)]:
        try:
            dim_rules.resolve(d, probe)
        except (KeyError, ValueError) as e:
            raise ExportError(f"symbolic dim {d!r} does not derive from the inputs' dims "
                              f"({', '.join(names) or 'none'})") from e
    return names


def _wrap(lowered: Lowered, graph: Graph, dims: list[str], name: str,
          weights: str, blas: Blas) -> None:
    """Add ``<name>_run`` and ``<name>_strerror`` to the lowered module."""
    module, layout = lowered.module, lowered.layout
    for fn in module.functions:  # only the wrapper is exported
        if not fn.is_declaration:
            fn.linkage = "internal"
    entry = module.get_global(ENTRY)
    n_in, n_par, n_out = len(layout.inputs), len(layout.params), len(layout.outputs)
    arrays = n_in + (n_par if weights == "argument" else 0) + n_out
    run = ir.Function(module, ir.FunctionType(I32, [I64] * len(dims) + [PTR] * arrays),
                      f"{name}_run")
    args = list(run.args)
    dim_args, array_args = args[:len(dims)], args[len(dims):]
    b = ir.IRBuilder(run.append_basic_block("entry"))
    env = dict(zip(dims, dim_args, strict=True))
    inputs, rest = array_args[:n_in], array_args[n_in:]
    if weights == "argument":
        params, outputs = rest[:n_par], rest[n_par:]
    else:
        updated = {layout.update_params[k] for k in range(len(layout.updates))}
        params = [_global(module, f"{name}.param.{k}", _param_value(graph, k),
                          constant=k not in updated) for k in range(n_par)]
        outputs = rest
    constants = [_global(module, f"{name}.constant.{k}", c, constant=True)
                 for k, c in enumerate(layout.constants)]

    # one arena: scratch buffers, then the update values not written in place
    copies = [k for k in range(len(layout.updates)) if k not in layout.updates_in_place]
    buffers = [*layout.scratch, *(layout.updates[k] for k in copies)]
    offsets, size = _arena(b, buffers, env)
    arena = b.call(_declare(module, "malloc", PTR, [I64]), [b.add(size, I64(ALIGN))])
    fail = b.icmp_unsigned("==", arena, ir.Constant(PTR, None))
    with b.if_then(fail, likely=False):
        b.ret(I32(-1))
    base = b.gep(arena, [b.sub(I64(ALIGN), b.and_(b.ptrtoint(arena, I64), I64(ALIGN - 1)))],
                 source_etype=I8)  # the first 64-byte boundary past the start
    slots = b.alloca(ir.ArrayType(PTR, max(1, layout.n_slots)))
    fill = [*inputs, *params, *constants, *outputs]
    cells = {k: v for k, v in enumerate(fill)}
    update_ptr = {}
    for j, k in enumerate(copies):
        update_ptr[k] = b.gep(base, [offsets[len(layout.scratch) + j]], source_etype=I8)
        cells[layout.slot("updates", k)] = update_ptr[k]
    for k in range(len(layout.scratch)):
        cells[layout.slot("scratch", k)] = b.gep(base, [offsets[k]], source_etype=I8)
    for slot, value in cells.items():
        b.store(b.bitcast(value, PTR), b.gep(slots, [I32(0), I32(slot)]))
    dims_array = b.alloca(ir.ArrayType(I64, max(1, len(layout.dims))))
    for k, d in enumerate(layout.dims):
        b.store(_dim(b, d, env), b.gep(dims_array, [I32(0), I32(k)]))
    status = b.call(entry, [b.bitcast(slots, PTR), b.bitcast(dims_array, PTR),
                            _fns_table(module, blas.prefix)])
    ok = b.icmp_signed("==", status, I32(0))
    with b.if_then(ok):  # commit the updates computed out of place, after every read
        memcpy = module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
        for k in copies:
            nbytes = _nbytes(b, layout.updates[k], env)
            b.call(memcpy, [b.bitcast(params[layout.update_params[k]], PTR), update_ptr[k], nbytes,
                            ir.Constant(ir.IntType(1), 0)])
    b.call(_declare(module, "free", ir.VoidType(), [PTR]), [arena])
    b.ret(status)
    _strerror(module, name, lowered)


def _param_value(graph: Graph, k: int) -> np.ndarray:
    return np.ascontiguousarray(graph.params[k].value)


def _global(module: ir.Module, symbol: str, array: np.ndarray, *,
            constant: bool) -> ir.GlobalVariable:
    data = np.ascontiguousarray(array).tobytes() or b"\0"
    typ = ir.ArrayType(I8, len(data))
    g = ir.GlobalVariable(module, typ, symbol)
    g.initializer = ir.Constant(typ, bytearray(data))
    g.linkage = "internal"
    g.global_constant = constant
    g.align = ALIGN
    return g


def _declare(module: ir.Module, symbol: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    existing = module.globals.get(symbol)
    return existing if existing is not None else ir.Function(
        module, ir.FunctionType(ret, args), symbol)


def _fns_table(module: ir.Module, prefix: str) -> ir.GlobalVariable:
    """The entry's ``fns``: BLAS and libc symbols for ``externs``' names; an unknown name points
    at an undefined ``graphc_unlinkable_<name>`` so that linking names it."""
    entries = []
    for n in externs.NAMES:
        if n in BLAS_SYMBOLS:
            symbol = prefix + BLAS_SYMBOLS[n]
        else:
            symbol = LIBC_SYMBOLS[n][0] if n in LIBC_SYMBOLS else f"graphc_unlinkable_{n}"
        entries.append(_declare(module, symbol, ir.VoidType(), []))
    typ = ir.ArrayType(PTR, max(1, len(entries)))
    table = ir.GlobalVariable(module, typ, "graphc.fns")
    table.initializer = ir.Constant(typ, entries or [ir.Constant(PTR, None)])
    table.linkage = "internal"
    table.global_constant = True
    return table


def _strerror(module: ir.Module, name: str, lowered: Lowered) -> None:
    """``const char *<name>_strerror(int status)``: what a status means."""
    fn = ir.Function(module, ir.FunctionType(PTR, [I32]), f"{name}_strerror")
    (status,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    messages = {0: "ok", -1: "out of memory (scratch arena)"}
    for position, message in lowered.failures.items():
        node = lowered.nodes[position]
        where = f" (built at {node.location})" if node.location else ""
        messages[position + 1] = f"{node.op.name}: {message}{where}"
    cases = b.switch(status, None)
    for k, (value, text) in enumerate(messages.items()):
        block = fn.append_basic_block(f"s{k}")
        cases.add_case(I32(value), block)
        with b.goto_block(block):
            b.ret(_cstring(module, f"{name}.msg.{k}", text))
    default = fn.append_basic_block("unknown")
    cases.default = default
    with b.goto_block(default):
        b.ret(_cstring(module, f"{name}.msg.unknown", "unknown status"))


def _cstring(module: ir.Module, symbol: str, text: str) -> ir.GlobalVariable:
    data = bytearray(text.encode() + b"\0")
    g = ir.GlobalVariable(module, ir.ArrayType(I8, len(data)), symbol)
    g.initializer = ir.Constant(ir.ArrayType(I8, len(data)), data)
    g.linkage = "private"
    g.global_constant = True
    return g


# -- sizes and dims in IR --------------------------------------------------------------------------

def _arena(b: ir.IRBuilder, buffers: Sequence[Buffer],
           env: dict[str, ir.Value]) -> tuple[list[ir.Value], ir.Value]:
    """Byte offsets of ``buffers`` in one arena and its size: shared by lifetime (as the
    runtime does) when every shape is static, else laid end to end."""
    if all(isinstance(d, int) for buf in buffers for d in buf.shape):
        offsets, size = arena_layout(buffers, {})
        return [I64(o) for o in offsets], I64(size)
    offsets, total = [], I64(0)
    for buf in buffers:
        offsets.append(total)
        padded = b.and_(b.add(_nbytes(b, buf, env), I64(ALIGN - 1)), I64(-ALIGN))
        total = b.add(total, padded)
    return offsets, total


def _nbytes(b: ir.IRBuilder, buf: Buffer, env: dict[str, ir.Value]) -> ir.Value:
    """max(1, elements) * itemsize, as the runtime sizes buffers."""
    count: ir.Value = I64(1)
    for d in buf.shape:
        count = b.mul(count, _dim(b, d, env))
    count = _smax(b, count, I64(1))
    return b.mul(count, I64(np.dtype(buf.dtype).itemsize))


def _smax(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed(">", x, y), x, y)



def _dim(b: ir.IRBuilder, d: int | str, env: dict[str, ir.Value]) -> ir.Value:
    """The i64 value of dim ``d`` (derived names evaluated as ``dims.resolve`` does)."""
    if isinstance(d, int):
        return I64(d)
    if d in env:
        return env[d]
    if d.isdigit():
        return I64(int(d))
    parts = dim_rules._split_top(d, "*")
    if len(parts) > 1:
        total: ir.Value = I64(1)
        for p in parts:
            total = b.mul(total, _dim(b, p, env))
        return total
    if d.startswith("(") and d.endswith(")") and dim_rules._balanced(d[1:-1]):
        return _dim(b, d[1:-1].replace("·", "*"), env)
    if m := dim_rules._SLICE.fullmatch(d):
        bounds = [int(g) if g not in (None, "") else None for g in (m[2], m[3], m[4])]
        return _slice_length(b, _dim(b, m[1], env), *bounds)
    if m := dim_rules._DIV.fullmatch(d):  # ceil(n / k)
        k = int(m[2])
        return b.sdiv(b.add(_dim(b, m[1], env), I64(k - 1)), I64(k))
    if m := dim_rules._OFFSET.fullmatch(d):
        return _smax(b, b.add(_dim(b, m[1], env), I64(int(m[2]))), I64(0))
    raise ExportError(f"cannot evaluate symbolic dim {d!r}")


def _slice_length(b: ir.IRBuilder, n: ir.Value, start: int | None, stop: int | None,
                  step: int | None) -> ir.Value:
    """``len(range(n)[start:stop:step])`` with Python's clamping."""
    step = 1 if step is None else step
    zero, minus = I64(0), I64(-1)
    if step > 0:
        def clamp(v: int | None, default: ir.Value) -> ir.Value:
            if v is None:
                return default
            return _smax(b, b.add(n, I64(v)), zero) if v < 0 else loops.smin(b, I64(v), n)
        lo, hi = clamp(start, zero), clamp(stop, n)
        span = b.sub(hi, lo)
    else:
        last = b.sub(n, I64(1))

        def clamp(v: int | None, default: ir.Value) -> ir.Value:
            if v is None:
                return default
            return _smax(b, b.add(n, I64(v)), minus) if v < 0 else loops.smin(b, I64(v), last)
        hi, lo = clamp(start, last), clamp(stop, minus)
        span = b.sub(hi, lo)
    length = b.sdiv(b.add(span, I64(abs(step) - 1)), I64(abs(step)))
    return _smax(b, length, zero)


# -- building ------------------------------------------------------------------------------------

def compiler() -> str:
    """The C compiler driver (``$CC``, else ``cc``), or an ``ExportError``."""
    found = library.compiler()
    if found is None:
        raise ExportError(f"export links with a C compiler, and {os.environ.get('CC', 'cc')!r} "
                          "is not on PATH; install one (gcc or clang) or set $CC")
    return found


def find_blas(cc: str) -> Blas:
    """A system BLAS the linker finds, else SciPy's bundled OpenBLAS."""
    for lib in ("openblas", "blas"):
        if ctypes.util.find_library(lib):
            return Blas("", (f"-l{lib}",))
    import scipy

    libs = Path(scipy.__file__).parent.parent / "scipy.libs"
    found = sorted(glob.glob(str(libs / "libscipy_openblas*.so")))
    if not found:
        return Blas("", ("-lopenblas",))  # let the linker say what is missing
    return Blas("scipy_", (f"-L{libs}", f"-l:{Path(found[0]).name}", f"-Wl,-rpath,{libs}"))


def _declared(module: object, symbol: str) -> bool:
    try:
        module.get_function(symbol)  # type: ignore[attr-defined]
    except NameError:
        return False
    return True


def _link(cc: str, obj: bytes, path: Path, flags: Sequence[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        obj_path = Path(tmp) / "model.o"
        obj_path.write_bytes(obj)
        command = [cc, "-shared", "-o", str(path), str(obj_path), *flags, "-Wl,-z,defs"]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        missing = "graphc_unlinkable_" in result.stderr
        why = ("the graph calls an external function export cannot link"
               if missing else "linking failed")
        raise ExportError(f"{why}: {' '.join(command)}\n{result.stderr.strip()}")


# -- the header and the example ------------------------------------------------------------------

@dataclass
class Spec:
    """The C view of an exported graph: argument lists, header, example program."""

    graph: Graph
    layout: Layout
    dims: list[str]
    name: str
    weights: str

    def arguments(self) -> list[tuple[str, str, str, tuple]]:
        """(role, C type, argument name, shape) for each array argument, in order."""
        out = []
        for k, i in enumerate(self.graph.inputs):
            out.append(("input", f"const {C_TYPES[i.dtype]} *", _cname(i.name, f"in{k}"),
                        i.shape))
        if self.weights == "argument":
            for k, p in enumerate(self.graph.params):
                out.append(("param", f"{C_TYPES[p.dtype]} *", _cname(p.name, f"param{k}"),
                            p.shape))
        for k, o in enumerate(self.graph.outputs):
            out.append(("output", f"{C_TYPES[o.dtype]} *", f"out{k}", o.shape))
        return _unique(out)

    def prototype(self) -> str:
        args = [f"int64_t {_cname(d, 'dim')}" for d in self.dims]
        args += [f"{t}{n}" for _, t, n, _ in self.arguments()]
        return f"int {self.name}_run({', '.join(args) or 'void'})"

    def header(self) -> str:
        guard = f"{self.name.upper()}_H"
        updated = {p for p, _ in self.graph.updates}
        lines = [f"/* {self.name}: a graph exported by graphc (weights {self.weights}).",
                 " *", " * Arrays are C-contiguous (row-major) and must not overlap.",
                 " * Returns 0 on success, -1 when scratch memory cannot be allocated, > 0 when",
                 f" * a node failed at run time ({self.name}_strerror says which).", " *"]
        if self.dims:
            lines.append(f" * Symbolic dims (int64_t, first): {', '.join(self.dims)}")
        for role, ctype, arg, shape in self.arguments():
            lines.append(f" * {role:<6s} {arg}: {ctype.strip(' *')}{_shape(shape)}")
        for k, p in enumerate(self.graph.params):
            how = "updated in place" if p in updated else "read only"
            where = "argument" if self.weights == "argument" else "embedded"
            lines.append(f" * param  {p.name} ({where} #{k}): {C_TYPES[p.dtype]}{_shape(p.shape)}, "
                         f"{how}")
        if updated:
            lines.append(" * A call that returns 0 writes each updated param's new value in "
                         "place; a failed call changes no param.")
        lines += [" */", f"#ifndef {guard}", f"#define {guard}", "",
                  "#include <stdbool.h>", "#include <stdint.h>", "",
                  "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
                  f"{self.prototype()};", f"const char *{self.name}_strerror(int status);", "",
                  "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
        return "\n".join(lines)

    def example(self, include: str, dim_value: int = 3) -> str:
        """A C program that fills every array argument with ``example_values``, calls the
        model once and prints each output (and each param argument after the call)."""
        env = {d: dim_value for d in self.dims}
        lines = ["/* Generated by graphc: fills the inputs, runs the model, prints outputs. */",
                 "#include <stdio.h>", "#include <stdlib.h>", f'#include "{include}"', "",
                 "int main(void) {"]
        for d in self.dims:
            lines.append(f"    int64_t {_cname(d, 'dim')} = {dim_value};")
        calls, prints = [], []
        for k, (role, ctype, arg, shape) in enumerate(self.arguments()):
            size = int(np.prod([dim_rules.resolve(d, env) for d in shape], dtype=np.int64))
            base = ctype.replace("const ", "").strip(" *")
            lines.append(f"    {base} *{arg} = calloc({max(1, size)}, sizeof({base}));")
            if role != "output":
                lines.append(f"    for (long i = 0; i < {size}; i++) "
                             f"{arg}[i] = ({base})({_fill_expr(base, k)});")
            if role != "input":
                fmt, cast = _printf(base)
                prints += [f'    printf("{role} {arg} {size}\\n");',
                           f"    for (long i = 0; i < {size}; i++) "
                           f'printf("{fmt}\\n", {cast}{arg}[i]);']
            calls.append(arg)
        args = ", ".join([_cname(d, "dim") for d in self.dims] + calls)
        lines += [f"    int status = {self.name}_run({args});",
                  '    if (status != 0) {',
                  f'        fprintf(stderr, "{self.name}_run: %s\\n", '
                  f'{self.name}_strerror(status));',
                  "        return 1;", "    }", *prints, "    return 0;", "}", ""]
        return "\n".join(lines)


def example_values(position: int, size: int, dtype: str) -> np.ndarray:
    """The values the example program puts in array argument ``position`` (the same
    integer formula as the C code, so a test can compute the expected outputs)."""
    i = np.arange(size, dtype=np.int64)
    raw = (i * 7 + position * 13) % 19 - 9
    if dtype == "bool":
        return raw > 0
    if np.dtype(dtype).kind == "f":
        return (raw / 10.0).astype(dtype)
    return raw.astype(dtype) if np.dtype(dtype).kind == "i" else np.abs(raw).astype(dtype)


def _fill_expr(ctype: str, position: int) -> str:
    raw = f"((i * 7 + {position * 13}) % 19 - 9)"
    if ctype in ("float", "double"):
        return f"{raw} / 10.0"
    if ctype == "bool":
        return f"{raw} > 0"
    if ctype.startswith("uint"):
        return f"labs({raw})"
    return raw


def _printf(ctype: str) -> tuple[str, str]:
    if ctype == "float":
        return "%.9g", "(double)"
    if ctype == "double":
        return "%.17g", ""
    return "%lld", "(long long)"


def _shape(shape: tuple) -> str:
    return "[" + "][".join(str(d) for d in shape) + "]" if shape else " (scalar)"


def _cname(text: str | None, fallback: str) -> str:
    import re

    name = re.sub(r"\W", "_", text or "") or fallback
    return name if not name[0].isdigit() else "_" + name


def _unique(arguments: list[tuple[str, str, str, tuple]]) -> list[tuple[str, str, str, tuple]]:
    """Argument names made distinct (two inputs may share a name)."""
    seen: dict[str, int] = {}
    out = []
    for role, ctype, name, shape in arguments:
        n = seen.get(name, 0)
        seen[name] = n + 1
        out.append((role, ctype, name if n == 0 else f"{name}_{n}", shape))
    return out
