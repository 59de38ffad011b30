"""Random graphs on the llvm backend: against the numpy backend and a float64 reference.

The recipes are those of ``tests/test_random_graphs.py`` (elementwise ops and reductions
over broadcasting inputs), optionally followed by a matmul with one more input. Each is
compiled with both backends, optimized or not, in float32 and float64; NumPy runs the
same recipe in float64 as the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import graphc as gx
from tests.test_random_graphs import Recipe, _bounded, arrays_for, recipes

#: |got - reference| <= TOL * (1 + |reference|), per dtype: float32 rounding over a
#: few ops and a sum of at most a few dozen terms
TOL = {"float32": 2e-4, "float64": 1e-10}


def _values(recipe: Recipe, leaves: list, library: int, matmul_with) -> list:
    """The recipe's last value and one other, followed by ``@ matmul_with`` if given."""
    values = recipe.run(leaves, library)
    last = values[-1]
    if matmul_with is not None and np.ndim(last) >= 1:
        last = last @ matmul_with
    return [last]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), recipe=recipes(), dtype=st.sampled_from(["float32", "float64"]),
       optimize=st.booleans(), matmul=st.booleans(), width=st.integers(1, 5))
def test_random_graphs_match_numpy_and_float64(data, recipe, dtype, optimize, matmul, width):
    arrays = [a.astype(dtype) for a in data.draw(arrays_for(recipe.shapes, dtype))]
    expected_shape = np.shape(recipe.run([a.astype("float64") for a in arrays], 1)[-1])
    matmul = matmul and len(expected_shape) >= 1
    if matmul:
        w = np.random.default_rng(width).standard_normal((expected_shape[-1], width))
        arrays.append(w.astype(dtype))
    exact = [a.astype("float64") for a in arrays]
    [reference] = _values(recipe, exact[:len(recipe.shapes)], 1, exact[-1] if matmul else None)
    assume(_bounded([reference], 1e4))

    xs = [gx.input(f"x{k}", a.shape, dtype) for k, a in enumerate(arrays)]
    [y] = _values(recipe, xs[:len(recipe.shapes)], 0, xs[-1] if matmul else None)
    llvm = gx.compile(xs, y, backend="llvm", optimize=optimize)(*arrays)
    numpy = gx.compile(xs, y, backend="numpy", optimize=optimize)(*arrays)

    assert llvm.shape == numpy.shape == np.shape(reference)
    assert llvm.dtype == numpy.dtype == np.dtype(dtype)
    tol = TOL[dtype]
    for got in (llvm, numpy):
        bound = tol * (1 + np.abs(reference))
        assert np.all(np.abs(got - reference) <= bound), (got, reference)
    np.testing.assert_allclose(llvm, numpy, rtol=tol, atol=tol)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), recipe=recipes(), dtype=st.sampled_from(["float32", "float64"]),
       parts=st.integers(2, 3))
def test_random_graphs_compiled_in_parts_and_streamed_give_the_same_bits(data, recipe, dtype,
                                                                          parts):
    """Cut into parts (empty ones included) and streaming every eligible output, the code
    computes exactly what the plain compile does: the same kernels, the same operations."""
    from graphc.backends.llvm import partition, stream
    from graphc.compile import _lower

    arrays = [a.astype(dtype) for a in data.draw(arrays_for(recipe.shapes, dtype))]
    xs = [gx.input(f"x{k}", a.shape, dtype) for k, a in enumerate(arrays)]
    [y] = _values(recipe, xs, 0, None)
    results = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRAPHC_CACHE", "0")
        for count, stream_bytes in ((1, stream.STREAM_BYTES), (parts, 1)):
            patch.setattr(partition, "part_count", lambda module, n=count: n)
            patch.setattr(stream, "STREAM_BYTES", stream_bytes)
            _lower.cache_clear()
            results.append(gx.compile(xs, y, backend="llvm")(*arrays))
    np.testing.assert_array_equal(results[0], results[1])
