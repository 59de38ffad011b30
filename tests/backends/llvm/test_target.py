"""Loading compiled objects: JITLink links them in memory as one library per load."""

from __future__ import annotations

import ctypes

import llvmlite.ir as ir
import pytest

from graphc.backends.llvm import target

F64 = ir.DoubleType()


def _object(name: str, body) -> bytes:
    """The object code of a module defining ``double name(double)`` as ``body``."""
    module = target.new_module(name)
    fn = ir.Function(module, ir.FunctionType(F64, [F64]), name)
    b = ir.IRBuilder(fn.append_basic_block())
    b.ret(body(module, b, fn.args[0]))
    return target.emit_object(target.optimize(module))


def _call(address: int, x: float) -> float:
    return ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(address)(x)


def test_objects_link_to_each_other_and_to_the_process() -> None:
    def twice(module, b, x):  # defined here, called from the other object
        return b.fmul(x, F64(2.0))

    def outer(module, b, x):  # calls `twice` (another object) and libm's `exp` (the process)
        inner = ir.Function(module, ir.FunctionType(F64, [F64]), "twice")
        exp = ir.Function(module, ir.FunctionType(F64, [F64]), "exp")
        return b.fadd(b.call(inner, [x]), b.call(exp, [F64(0.0)]))

    loaded = target.LoadedObject([_object("outer", outer), _object("twice", twice)])
    assert _call(loaded.address("outer"), 1.5) == 4.0
    assert _call(loaded.address("twice"), 1.5) == 3.0


def test_the_same_object_loads_twice_and_a_missing_symbol_is_a_key_error() -> None:
    obj = _object("third", lambda module, b, x: b.fdiv(x, F64(3.0)))
    first, second = target.LoadedObject([obj]), target.LoadedObject([obj])
    assert first.address("third") != second.address("third")
    assert _call(first.address("third"), 9.0) == 3.0
    del first  # the second library stays valid on its own
    assert _call(second.address("third"), 6.0) == 2.0
    with pytest.raises(KeyError, match="nowhere"):
        second.address("nowhere")
