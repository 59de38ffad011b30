"""The host target: LLVM initialised once, IR optimized and turned into loaded code.

Code is generated for the CPU this process runs on (its name and feature flags,
``znver3 +avx2 +fma ...``), so the vectorizers use the widest vectors it has.
Compiled code is an object file: the JIT loads it into an MCJIT engine, the disk
cache stores it, and ``export`` links it into a shared library; one path for all three.
"""

from __future__ import annotations

import functools
import threading

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
            options = llvm.create_pipeline_tuning_options(speed_level=level)
            options.loop_vectorization = True
            options.slp_vectorization = True
            builder = llvm.create_pass_builder(tm, options)
            builder.getModulePassManager().run(ref, builder)
    return ref


def emit_object(module: llvm.ModuleRef) -> bytes:
    """Machine code for the host, as a relocatable object file."""
    with _LOCK:
        return target_machine().emit_object(module)


def emit_assembly(module: llvm.ModuleRef) -> str:
    """The host assembly of an optimized module."""
    with _LOCK:
        return target_machine().emit_assembly(module)


class LoadedObject:
    """An object file loaded into its own JIT engine; keep it alive while calling into it."""

    def __init__(self, obj: bytes) -> None:
        with _LOCK:
            self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""),
                                                      new_target_machine())
            self._engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self._engine.finalize_object()

    def address(self, symbol: str) -> int:
        """The address of a function defined by the object."""
        with _LOCK:
            address = self._engine.get_function_address(symbol)
        if not address:
            raise KeyError(f"symbol {symbol!r} not found in the compiled object")
        return address
