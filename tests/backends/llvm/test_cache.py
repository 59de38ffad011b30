"""The disk cache of compiled objects: hits, misses, corrupt entries, keys, settings."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm import cache, host, library, lower, target
from graphc.graph import Graph

#: Compiled functions stay alive for the session: each JIT engine owns the target machine
#: it was created with, and ``target.LoadedObject`` shares one (``target_machine()``), so
#: dropping a function frees it under the others. Remove once LoadedObject gets its own.
ALIVE: list = []


def llvm_lower(graph: Graph):
    fn = lower(graph)
    ALIVE.append(fn)
    return fn


def _graph(scale: float = 2.0, offset=(1.0, -1.0, 0.5)) -> Graph:
    x = gx.input("x", ("n", 3))
    y = gx.maximum(x * scale + gx.constant(np.array(offset, "float32")), 0.0).sum(axis=1)
    return Graph.build([x], [y])


def _reference(a: np.ndarray, scale: float = 2.0, offset=(1.0, -1.0, 0.5)) -> np.ndarray:
    return np.maximum(a * np.float32(scale) + np.array(offset, "float32"), 0).sum(axis=1)


A = np.arange(12, dtype=np.float32).reshape(4, 3) / 4 - 1


@pytest.mark.parametrize(("env", "expected"), [
    ({"GRAPHC_CACHE_DIR": "/c/dir"}, "/c/dir"),
    ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/graphc/llvm"),
    ({"HOME": "/home/u"}, "/home/u/.cache/graphc/llvm"),
    ({"GRAPHC_CACHE_DIR": "/c/dir", "GRAPHC_CACHE": "0"}, None),
])
def test_directory_follows_the_environment(monkeypatch, env, expected):
    for var in ("GRAPHC_CACHE_DIR", "XDG_CACHE_HOME", "GRAPHC_CACHE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert cache.directory() == (None if expected is None else Path(expected))


def test_a_second_compile_loads_from_the_cache(cache_dir):
    cold = llvm_lower(_graph())
    assert not cold.cache_hit
    entries = [p for p in cache_dir.iterdir() if not p.name.startswith("host-")]
    assert sorted(p.suffix for p in entries) == [".json", ".o"]
    warm = llvm_lower(_graph())
    assert warm.cache_hit and warm._lowered is None  # the index entry skipped lowering
    for fn in (cold, warm):
        np.testing.assert_array_equal(fn(A), _reference(A))


def test_introspection_after_a_hit_is_rebuilt(cache_dir):
    cold = llvm_lower(_graph())
    warm = llvm_lower(_graph())
    assert warm.llvm_ir_unoptimized == cold.llvm_ir_unoptimized
    assert warm.llvm_ir == cold.llvm_ir and "define" in warm.llvm_ir
    assert warm.source == warm.llvm_ir  # `source` is the generated code on every backend
    assert warm.asm == cold.asm and "ret" in warm.asm


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "magic"])
@pytest.mark.parametrize("suffix", [".o", ".json"])
def test_a_corrupt_entry_is_recompiled_and_overwritten(cache_dir, damage, suffix):
    llvm_lower(_graph())
    (entry,) = cache_dir.glob("*" + suffix)
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "flip":
        data[-1] ^= 0xFF
    elif damage == "empty":
        data = bytearray()
    else:
        data[:8] = b"NOTGRAPH"
    entry.write_bytes(bytes(data))
    fn = llvm_lower(_graph())
    np.testing.assert_array_equal(fn(A), _reference(A))
    assert cache.unpack(entry.read_bytes()) is not None  # rewritten whole
    assert llvm_lower(_graph()).cache_hit


@pytest.mark.parametrize("cut", [0, 10, cache.HEADER.size, cache.HEADER.size + 3])
def test_unpack_rejects_truncated_entries(cut):
    packed = cache.pack(b"0123456789")
    assert cache.unpack(packed) == b"0123456789"
    assert cache.unpack(packed[:cut]) is None


def test_graphs_differing_in_constants_compute_their_own_values(cache_dir):
    offsets = [(1.0, -1.0, 0.5), (0.0, 3.0, -2.0)]
    fns = [llvm_lower(_graph(offset=o)) for o in offsets]
    again = [llvm_lower(_graph(offset=o)) for o in offsets]
    assert fns[0].cache_key == fns[1].cache_key  # constants are run-time slots: one object
    for fn, fn_again, o in zip(fns, again, offsets, strict=True):
        assert fn_again.cache_hit
        np.testing.assert_array_equal(fn(A), _reference(A, offset=o))
        np.testing.assert_array_equal(fn_again(A), _reference(A, offset=o))


def test_graphs_differing_in_scalars_do_not_collide(cache_dir):
    for scale in (2.0, 3.0, 2.0):
        np.testing.assert_array_equal(llvm_lower(_graph(scale)).__call__(A),
                                      _reference(A, scale))


def test_a_training_step_from_the_cache_updates_params(cache_dir):
    def step():
        w = gx.param("w", np.array([0.5, -1.0, 2.0], "float32"))
        x = gx.input("x", ("n", 3))
        loss = ((x * w).sum(axis=1) ** 2).mean()
        (g,) = gx.grad(loss, [w])
        return w, Graph.build([x], [loss], {w: w - 0.1 * g})

    results = []
    for _ in range(2):
        w, graph = step()
        fn = llvm_lower(graph)
        loss = fn(A)
        results.append((fn.cache_hit, float(loss), w.value.copy()))
    w0 = np.array([0.5, -1.0, 2.0], "float32")
    r = (A * w0).sum(axis=1)
    expected_w = w0 - np.float32(0.1) * (2 * r[:, None] * A).mean(axis=0)
    assert [hit for hit, _, _ in results] == [False, True]
    for _, loss, new_w in results:
        np.testing.assert_allclose(loss, (r ** 2).mean(), rtol=1e-6)
        np.testing.assert_allclose(new_w, expected_w, rtol=1e-6)


def test_disabled_cache_writes_nothing(cache_dir, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    fn = llvm_lower(_graph())
    assert not fn.cache_hit and not cache_dir.exists()
    np.testing.assert_array_equal(fn(A), _reference(A))


def test_an_unwritable_cache_warns_and_compiles(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="cannot write the code cache"):
        fn = llvm_lower(_graph())
    np.testing.assert_array_equal(fn(A), _reference(A))


def test_graph_key_ignores_leaf_identity_but_not_types():
    key = cache.graph_key(_graph(), "host")
    assert cache.graph_key(_graph(), "host") == key  # fresh inputs (new uids), same key
    assert cache.graph_key(_graph(), "other host") != key
    x = gx.input("x", ("n", 3), dtype="float64")
    y = gx.maximum(x * 2.0 + gx.constant(np.array((1.0, -1.0, 0.5))), 0.0).sum(axis=1)
    assert cache.graph_key(Graph.build([x], [y]), "host") != key


def test_the_thread_count_is_part_of_the_graph_key(monkeypatch):
    keys = set()
    for threads in ("1", "2"):
        monkeypatch.setenv("GRAPHC_NUM_THREADS", threads)
        keys.add(cache.graph_key(_graph(), "host"))
    assert len(keys) == 2


# -- shared libraries: what later processes load without LLVM --------------------------------------

def _library_of(fn) -> object:
    """What holds the code of ``fn``: a ``LoadedObject`` or a ``library.Library``."""
    return fn.runtime._keep_alive


def test_the_second_load_links_a_library_the_third_loads(cache_dir):
    cold = llvm_lower(_graph())
    assert not list(cache_dir.glob("*.so"))  # compiled once: never linked
    second = llvm_lower(_graph())
    assert isinstance(_library_of(second), target.LoadedObject)
    library.wait()
    (so,) = cache_dir.glob("*.so")
    assert so.name == f"{second.cache_key}.so"
    assert (cache_dir / f"{second.cache_key}.so.sha256").exists()
    third = llvm_lower(_graph())
    assert third.cache_hit and isinstance(_library_of(third), library.Library)
    for fn in (cold, second, third):
        np.testing.assert_array_equal(fn(A), _reference(A))
    with pytest.raises(gx.GraphcError, match="shape"):  # errors as from any other load
        third(np.zeros((4, 2), np.float32))


@pytest.mark.parametrize("damage", ["flip", "truncate", "checksum"])
def test_a_corrupt_library_falls_back_to_the_object_and_is_relinked(cache_dir, damage):
    llvm_lower(_graph())
    llvm_lower(_graph())
    library.wait()
    (so,) = cache_dir.glob("*.so")
    data = bytearray(so.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        so.write_bytes(bytes(data))
    elif damage == "truncate":
        so.write_bytes(bytes(data[:100]))
    else:
        (cache_dir / f"{so.name}.sha256").write_bytes(b"not a checksum")
    fn = llvm_lower(_graph())
    assert isinstance(_library_of(fn), target.LoadedObject)
    np.testing.assert_array_equal(fn(A), _reference(A))
    library.wait()
    assert isinstance(_library_of(llvm_lower(_graph())), library.Library)


def test_without_a_c_compiler_the_object_is_loaded_every_time(cache_dir, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-graphc")
    for _ in range(3):
        fn = llvm_lower(_graph())
        library.wait()
        assert isinstance(_library_of(fn), target.LoadedObject)
        np.testing.assert_array_equal(fn(A), _reference(A))
    assert not list(cache_dir.glob("*.so"))


def test_a_process_running_cached_code_never_loads_llvm(cache_dir):
    host.host_key.cache_clear()  # asked of LLVM here once, then remembered in cache_dir
    llvm_lower(_graph())
    llvm_lower(_graph())
    library.wait()
    program = textwrap.dedent("""
        import sys
        import numpy as np
        import graphc as gx
        from graphc.backends.llvm import lower
        from graphc.graph import Graph
        x = gx.input("x", ("n", 3))
        offset = gx.constant(np.array((1.0, -1.0, 0.5), "float32"))
        y = gx.maximum(x * 2.0 + offset, 0.0).sum(axis=1)
        fn = lower(Graph.build([x], [y]))
        a = np.arange(12, dtype=np.float32).reshape(4, 3) / 4 - 1
        print(fn.cache_hit, "llvmlite.binding" in sys.modules, "llvmlite.ir" in sys.modules,
              *fn(a).tolist())
        """)
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(cache_dir)}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                          text=True, check=True)
    hit, binding, ir, *values = done.stdout.split()
    assert (hit, binding, ir) == ("True", "False", "False"), done.stdout
    np.testing.assert_array_equal(np.array(values, np.float32), _reference(A))


def test_the_host_key_is_asked_of_llvm_once_per_machine(cache_dir):
    if host.cpu_description() is None:
        pytest.skip("no /proc/cpuinfo: the key is always asked of LLVM")
    host.host_key.cache_clear()
    try:
        assert host.host_key() == target.host_key()
        (memo,) = cache_dir.glob("host-*.txt")
        assert cache.unpack(memo.read_bytes()).decode() == target.host_key()
        memo.write_bytes(cache.pack(b"remembered"))
        host.host_key.cache_clear()
        assert host.host_key() == "remembered"  # read back, LLVM not asked
    finally:
        host.host_key.cache_clear()
