"""Modules cut into parts compiled on threads of their own: the cut, and the code it gives."""

from __future__ import annotations

import re

import llvmlite.binding as llvm
import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm import cache, lowering, partition, target
from graphc.graph import Graph
from tests.helpers import run_threads

RNG = np.random.default_rng(7)
SIZES = (6, 5, 4, 3)


def _mlp_step() -> tuple[list, gx.Tensor, gx.Tensor, dict]:
    """A small MLP training step: about 30 kernels (dense, relu, softmax, sums, updates),
    with the same initial values every time."""
    rng = np.random.default_rng(0)
    params = []
    for k, (m, n) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        params += [gx.param(f"W{k}", rng.standard_normal((m, n)).astype("float32") / 2),
                   gx.param(f"b{k}", rng.standard_normal(n).astype("float32") / 10)]
    x = gx.input("x", ("batch", SIZES[0]))
    y = gx.input("y", ("batch",), "int64")
    h = x
    for k in range(0, len(params), 2):
        h = h @ params[k] + params[k + 1]
        if k + 2 < len(params):
            h = gx.relu(h)
    loss = gx.cross_entropy(h, y, reduction="mean")
    grads = gx.grad(loss, params)
    return [x, y], loss, params, {p: p - 0.1 * g for p, g in zip(params, grads, strict=True)}


def _lowered() -> lowering.Lowered:
    inputs, loss, _, updates = _mlp_step()
    return lowering.lower(Graph.build(inputs, [loss], updates))


def _defined(text: str) -> set[str]:
    return set(re.findall(r'^define [^@]*@"?([\w.]+)"?\(', text, re.MULTILINE))


@pytest.mark.parametrize("parts", [2, 3])
def test_every_kernel_is_defined_in_exactly_one_part(parts):
    lowered = _lowered()
    kernels = {f.name for g in partition._kernels(lowered.module).values() for f in g}
    texts = partition.split(lowered.module, parts)
    assert len(texts) == parts
    defined = [_defined(t) & kernels for t in texts]
    assert set().union(*defined) == kernels
    assert sum(map(len, defined)) == len(kernels)
    assert all(defined), "every part holds kernels"
    assert "graphc_entry" in _defined(texts[0])
    assert not any("graphc_entry" in _defined(t) for t in texts[1:])
    for text in texts:  # each part is a module of its own LLVM accepts
        llvm.parse_assembly(text).verify()


def test_a_cut_leaves_the_module_as_it_was():
    lowered = _lowered()
    before = str(lowered.module)
    partition.split(lowered.module, 3)
    assert str(lowered.module) == before


def test_one_part_is_the_module_itself():
    lowered = _lowered()
    assert partition.split(lowered.module, 1) == [str(lowered.module)]


def test_part_count_follows_cpus_and_kernels(monkeypatch):
    lowered = _lowered()
    kernels = len(partition._kernels(lowered.module))
    monkeypatch.setattr(partition.host, "available_cpus", lambda: 8)
    assert partition.part_count(lowered.module) == min(
        partition.MAX_PARTS, kernels // partition.MIN_KERNELS_PER_PART)
    monkeypatch.setattr(partition.host, "available_cpus", lambda: 1)
    assert partition.part_count(lowered.module) == 1


def test_a_module_with_mutable_globals_stays_whole(monkeypatch):
    monkeypatch.setattr(partition.host, "available_cpus", lambda: 8)
    monkeypatch.setattr(partition, "MIN_KERNELS_PER_PART", 1)
    x = gx.input("x", (64,))
    noisy = [gx.dropout(x * float(k + 1), 0.5, key=k) for k in range(4)]
    lowered = lowering.lower(Graph.build([x], noisy))
    assert partition.part_count(lowered.module) == 1


def _run(fn, x, y, steps=3):
    return [float(fn(x, y)) for _ in range(steps)]


def test_code_compiled_in_parts_computes_what_one_part_does(monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    x = RNG.standard_normal((9, SIZES[0])).astype("float32")
    y = RNG.integers(0, SIZES[-1], 9)
    results = {}
    for parts in (1, 3):
        monkeypatch.setattr(partition, "part_count", lambda module, n=parts: n)
        inputs, loss, params, updates = _mlp_step()
        fn = gx.compile(inputs, loss, updates=updates, backend="llvm")
        results[parts] = (_run(fn, x, y), [p.value.copy() for p in params])
    # the same machine code per kernel: equal to the last bit
    assert results[1][0] == results[3][0]
    for a, b in zip(results[1][1], results[3][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_parts_compile_on_the_calling_thread_without_llvmlites_raw_library(monkeypatch):
    texts = partition.split(_lowered().module, 2)
    monkeypatch.setattr(target, "_raw_lib", lambda: None)
    objects = target.compile_parts(texts)
    assert len(objects) == 2
    assert target.LoadedObject(objects).address("graphc_entry")


def test_an_error_in_a_part_reaches_the_caller():
    texts = partition.split(_lowered().module, 2)
    with pytest.raises(RuntimeError, match="parsing error"):
        target.compile_parts([texts[0], texts[1] + "\nthis is not IR\n"])


def test_objects_pack_and_unpack():
    objects = [b"first", b"", b"third object"]
    assert cache.unpack_objects(cache.pack_objects(objects)) == objects
    packed = cache.pack_objects(objects)
    assert cache.unpack_objects(packed[:-1]) is None
    assert cache.unpack_objects(packed + b"x") is None
    assert cache.unpack_objects(b"") is None
    assert cache.unpack_objects(cache.pack_objects([])) is None


def test_only_large_graphs_have_unoptimized_entries():
    big = _lowered()
    assert len(partition._kernels(big.module)) > lowering.OPTIMIZED_ENTRY_KERNELS
    x = gx.input("x", (4,))
    small = lowering.lower(Graph.build([x], [x * 2.0 + 1.0]))
    for lowered, expected in ((big, True), (small, False)):
        entry = lowered.module.get_global("graphc_entry")
        assert ("optnone" in entry.attributes) is expected
        assert ("noinline" in entry.attributes) is expected


def test_python_threads_compiling_at_once_each_get_their_code(monkeypatch):
    """Compiles from several threads queue on graphc's LLVM lock; each cuts its own module
    and runs its own part threads."""
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    monkeypatch.setattr(partition, "part_count", lambda module: 2)
    results: dict[int, float] = {}

    def work(k: int) -> None:
        x = gx.input(f"x_thread{k}", (64,))
        y = gx.sum(gx.tanh(x * float(k + 1)) + gx.exp(-x) * 0.5, axis=0)
        fn = gx.compile([x], y, backend="llvm")
        results[k] = float(fn(np.linspace(-1, 1, 64, dtype="float32")))

    run_threads(work, 4)
    a = np.linspace(-1, 1, 64)
    for k in range(4):
        expected = np.sum(np.tanh(a * (k + 1)) + np.exp(-a) * 0.5)
        np.testing.assert_allclose(results[k], expected, rtol=1e-5)
