"""The host target: LLVM initialised once, IR optimized and turned into loaded code.

Code is generated for the CPU this process runs on (its name and feature flags,
``znver3 +avx2 +fma ...``), so the vectorizers use the widest vectors it has.
Compiled code is one or more object files: JITLink links them in memory (``LoadedObject``),
the disk cache stores them, and a library is linked from them; one path for all three.
A module cut into parts (``partition``) is compiled on one thread per part.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import threading
from collections.abc import Sequence

import llvmlite
import llvmlite.binding as llvm
import llvmlite.ir as ir

_LOCK = threading.Lock()  # LLVM's global state (engines, parsing) is not thread-safe


@functools.lru_cache(maxsize=1)
def target_machine() -> llvm.TargetMachine:
    """The target machine for the host CPU (position-independent, so objects can be cached
    and linked into shared libraries), shared by optimization and code generation."""
    return new_target_machine()


def new_target_machine() -> llvm.TargetMachine:
    """A target machine of its own (a JIT engine takes ownership of the one it is given and
    frees it with the engine, so each engine needs a fresh one)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=host_features(),
                                        opt=3, reloc="pic", codemodel="default")


@functools.lru_cache(maxsize=1)
def host_features() -> str:
    """The host CPU's feature string, ``+avx2,+fma,...``."""
    return llvm.get_host_cpu_features().flatten()


def host_key() -> str:
    """What compiled code depends on besides the graph: CPU, features, LLVM version."""
    return f"{llvm.get_host_cpu_name()}|{host_features()}|llvmlite {llvmlite.__version__}"


def new_module(name: str) -> ir.Module:
    """An empty IR module for the host triple and data layout."""
    module = ir.Module(name=name)
    module.triple = llvm.get_default_triple()
    module.data_layout = str(target_machine().target_data)
    return module


def optimize(module: ir.Module | str, level: int = 3) -> llvm.ModuleRef:
    """Parse, verify and optimize (``-O<level>`` with loop and SLP vectorization)."""
    tm = target_machine()
    with _LOCK:
        ref = llvm.parse_assembly(str(module))
        ref.verify()
        if level > 0:
            builder = _pass_builder(tm, level)
            builder.getModulePassManager().run(ref, builder)
    return ref


def _pass_builder(tm: llvm.TargetMachine, level: int) -> llvm.PassBuilder:
    options = llvm.create_pipeline_tuning_options(speed_level=level)
    options.loop_vectorization = True
    options.slp_vectorization = True
    return llvm.create_pass_builder(tm, options)


def compile_parts(texts: Sequence[str]) -> list[bytes]:
    """The object files of the IR modules ``texts``, optimized (``-O3``) and compiled at
    the same time, one thread per module.

    llvmlite takes one process-wide lock around every call into LLVM, which would run the
    threads one after another. LLVM itself compiles independent modules in parallel when
    each has its own context and target machine (its parallel code generation does just
    that), so the two long calls, optimizing and emitting, go to LLVM directly; the short
    ones (parsing, creating the pass builder) keep llvmlite's lock. One module, or an
    llvmlite without that entry to LLVM, compiles on the calling thread as before."""
    if len(texts) == 1 or _raw_lib() is None:
        return [emit_object(optimize(text)) for text in texts]
    objects: list[bytes | None] = [None] * len(texts)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            objects[k] = _compile_unlocked(texts[k])
        except BaseException as error:  # re-raised on the calling thread
            errors.append(error)

    with _LOCK:  # graphc's own LLVM calls wait, as for any compile
        threads = [threading.Thread(target=work, args=(k,), name=f"graphc llvm part {k}")
                   for k in range(1, len(texts))]
        for t in threads:
            t.start()
        work(0)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return [obj for obj in objects if obj is not None]


@functools.lru_cache(maxsize=1)
def _raw_lib() -> ctypes.CDLL | None:
    """llvmlite's LLVM library without its lock (None if this llvmlite hides it)."""
    lib = getattr(llvm.ffi.lib, "_lib", None)
    needed = ("LLVMPY_RunNewModulePassManager", "LLVMPY_TargetMachineEmitToMemory",
              "LLVMPY_GetBufferStart", "LLVMPY_GetBufferSize", "LLVMPY_DisposeMemoryBuffer")
    if lib is None or not all(hasattr(lib, name) for name in needed):
        return None
    for name in needed:  # llvmlite sets the argument types when first asked for a function
        getattr(llvm.ffi.lib, name)
    return lib


def _compile_unlocked(text: str) -> bytes:
    """One module's object code, in a context and target machine of its own."""
    raw = _raw_lib()
    context = llvm.create_context()
    module = llvm.parse_assembly(text, context)
    module.verify()
    tm = new_target_machine()
    builder = _pass_builder(tm, 3)
    manager = builder.getModulePassManager()
    raw.LLVMPY_RunNewModulePassManager(manager, module, builder)
    with llvm.ffi.OutputString() as error:
        buffer = raw.LLVMPY_TargetMachineEmitToMemory(tm, module, 1, error)
        if not buffer:
            raise RuntimeError(str(error))
    try:
        return ctypes.string_at(raw.LLVMPY_GetBufferStart(buffer),
                                raw.LLVMPY_GetBufferSize(buffer))
    finally:
        raw.LLVMPY_DisposeMemoryBuffer(buffer)
        del manager, builder, module, context  # the module before its context


def emit_object(module: llvm.ModuleRef) -> bytes:
    """Machine code for the host, as a relocatable object file."""
    with _LOCK:
        return target_machine().emit_object(module)


def emit_assembly(module: llvm.ModuleRef) -> str:
    """The host assembly of an optimized module."""
    with _LOCK:
        return target_machine().emit_assembly(module)


class LoadedObject:
    """Object files linked together in memory as one JIT library (the symbols one leaves
    undefined resolve to another's, then to the process's); keep it alive while calling
    into it.

    The linker is LLVM's JITLink (through an ORC ``LLJIT`` of its own), which places all
    of a library's sections in one block and builds its own GOT and stubs there. MCJIT's
    default memory manager mapped each kind of section on its own: once a process had
    mapped and freed a few GB (the ONNX suite's CNNs), an object's code and its constant
    pool could land over 2 GB apart, out of reach of their 32-bit PC-relative references,
    and llvmlite's LLVM, built with assertions, aborted the process (2 of 9 runs of the
    ONNX suite on the llvm backend)."""

    _names = itertools.count()

    def __init__(self, objects: Sequence[bytes]) -> None:
        with _LOCK:
            self._jit = llvm.create_lljit_compiler(new_target_machine(), use_jit_link=True)
            builder = llvm.JITLibraryBuilder()
            for obj in objects:
                builder.add_object_img(obj)
            builder.add_current_process()  # memset, memcpy, ... from the process
            self._name = f"graphc{next(self._names)}"
            self._library = builder.link(self._jit, self._name)
        self._lookups: list[llvm.ResourceTracker] = []  # each keeps its symbol valid

    def address(self, symbol: str) -> int:
        """The address of a function defined by the object."""
        missing = KeyError(f"symbol {symbol!r} not found in the compiled object")
        with _LOCK:
            try:
                tracker = self._jit.lookup(self._name, symbol)
            except RuntimeError as error:
                raise missing from error
        self._lookups.append(tracker)
        if not tracker[symbol]:
            raise missing
        return tracker[symbol]
