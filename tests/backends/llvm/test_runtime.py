"""The llvm runtime's call paths: the builtin entry of small graphs (arguments checked in
native code), the ctypes fast entry, and the checking path they fall back to."""

from __future__ import annotations

import sys
import threading
import weakref

import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm import runtime
from graphc.errors import ArgumentError, GraphcError


def _small():
    x = gx.input("x", (3, 4), "float32")
    i = gx.input("i", (2,), "int64")
    w = gx.param("w", np.linspace(-1.0, 1.0, 4, dtype=np.float32))
    y = gx.take(gx.tanh(x * w + 1.0), i, axis=0)
    return [x, i], y, w


def _reference(x, i, w):
    return np.tanh(x * w + 1.0)[i]


@pytest.fixture(scope="module")
def small():
    inputs, y, w = _small()
    return gx.compile(inputs, y, backend="llvm"), w


X = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
I = np.array([2, 0])


def test_the_array_fields_the_native_checks_read_hold_here():
    assert runtime.OBJECT_ENTRY_OK


def test_small_graphs_get_the_builtin_entry(small):
    fn, w = small
    assert fn.runtime.vectorcall is not None
    np.testing.assert_allclose(fn(X, I), _reference(X, I, w.value), rtol=1e-6)


@pytest.mark.parametrize("x", [
    X[:, ::-1].copy()[:, ::-1],                       # a negative-strided view
    np.asfortranarray(X),                              # Fortran order
    X.astype(np.float16),                              # casts safely
    X.tolist(),                                        # a list
    np.ma.masked_array(X),                             # an ndarray subclass
    X.astype(X.dtype.newbyteorder()),                  # byte-swapped float32
], ids=["negative_strides", "fortran", "float16", "list", "subclass", "byteswapped"])
def test_arguments_not_exactly_as_declared_take_the_checking_path(small, x):
    fn, w = small
    want = _reference(np.asarray(x).astype(np.float32), I, w.value)
    np.testing.assert_allclose(fn(x, I), want, rtol=1e-6)


@pytest.mark.parametrize("args", [
    (X[:2], I), (X, I.astype(np.float64)), (X,), (X, I, I), (X.reshape(12), I),
    (np.array(1.0, np.float32), I), (None, I), ("x", I)],
    ids=["shape", "dtype", "too_few", "too_many", "rank", "scalar", "none", "str"])
def test_wrong_arguments_raise_the_checking_paths_error(small, args):
    fn, _ = small
    with pytest.raises(ArgumentError):
        fn(*args)


def test_a_failure_inside_the_schedule_names_the_op(small):
    fn, _ = small
    with pytest.raises(GraphcError, match="take"):
        fn(X, np.array([0, 7]))
    np.testing.assert_allclose(fn(X, I), _reference(X, I, small[1].value), rtol=1e-6)


def test_no_reference_leaks(small):
    fn, _ = small
    before = sys.getrefcount(runtime.FALLBACK), sys.getrefcount(X), sys.getrefcount(I)
    for _ in range(2000):
        fn(X, I)
        fn(X[:, ::-1], I)  # falls back
    with pytest.raises(GraphcError):
        fn(X, np.array([0, 9]))
    assert (sys.getrefcount(runtime.FALLBACK), sys.getrefcount(X), sys.getrefcount(I)) == before
    out = fn(X, I)
    assert sys.getrefcount(out) == 2  # ours and getrefcount's
    assert out.flags.owndata and out.flags.writeable


def test_a_new_param_value_is_read_on_the_next_call():
    inputs, y, w = _small()
    fn = gx.compile(inputs, y, backend="llvm")
    first = fn(X, I)
    w.value = np.full(4, 0.5, np.float32)
    np.testing.assert_allclose(fn(X, I), _reference(X, I, w.value), rtol=1e-6)
    assert not np.allclose(first, fn(X, I))


def test_graphs_compiled_for_a_list_return_a_tuple():
    x = gx.input("x", (4,), "float32")
    fn = gx.compile([x], [x * 2.0 + 1.0], backend="llvm")
    assert fn.runtime.vectorcall is not None
    (y,) = fn(np.ones(4, np.float32))
    np.testing.assert_array_equal(y, 3.0)


def test_large_graphs_and_graphs_with_updates_keep_the_ctypes_entry():
    x = gx.input("x", (1 << 15,), "float32")  # 128 KiB in, 128 KiB out
    fn = gx.compile([x], gx.exp(x), backend="llvm")
    assert fn.runtime.vectorcall is None
    a = np.linspace(-1, 1, 1 << 15, dtype=np.float32)
    np.testing.assert_allclose(fn(a), np.exp(a), rtol=1e-6)
    w = gx.param("w", np.zeros(3, np.float32))
    v = gx.input("v", (3,), "float32")
    step = gx.compile([v], gx.sum(w * v), updates={w: w + v}, backend="llvm")
    assert step.runtime.vectorcall is None
    step(np.ones(3, np.float32))
    np.testing.assert_array_equal(w.value, 1.0)


def test_calls_from_several_threads_at_once(small):
    fn, w = small
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(8)]
    wrong: list[int] = []

    def work(k: int) -> None:
        for _ in range(300):
            if not np.allclose(fn(xs[k], I), _reference(xs[k], I, w.value), rtol=1e-6):
                wrong.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_large_outputs_are_recycled_only_once_nobody_holds_them():
    x = gx.input("x", (1 << 19,), "float32")  # 2 MiB out
    fn = gx.compile([x], x * 2.0, backend="llvm")
    a = np.arange(1 << 19, dtype=np.float32)
    first = fn(a)
    second = fn(a + 1)  # ``first`` is held: a new array
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, a * 2)
    view = second[:10]
    del second
    third = fn(a + 2)  # a view keeps the array alive: a new one again
    assert not np.shares_memory(view, third)
    np.testing.assert_array_equal(view, (a[:10] + 1) * 2)
    address = third.ctypes.data
    del third
    fourth = fn(a + 3)  # nobody held the last one: its memory comes back
    assert fourth.ctypes.data == address
    np.testing.assert_array_equal(fourth, (a + 3) * 2)
    ref = weakref.ref(fourth)
    del fourth
    fn(a)  # under a weak reference it is let go, never rewritten
    assert ref() is None
