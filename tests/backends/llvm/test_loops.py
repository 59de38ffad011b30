"""Loop emission: the hints a loop carries for LLVM's vectorizer and unroller, and what
they do to the optimized code."""

from __future__ import annotations

import itertools
import re

import llvmlite.ir as ir
import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm import loops, target
from graphc.backends.llvm.dtypes import I64, PTR

NAMES = itertools.count()


def _sum_into(stop: ir.Value | None, **hints) -> ir.Module:
    """``void f(float *out, float *x, i64 n)``: out[0] += x[i] for i < stop (n if None)."""
    module = target.new_module("loops")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64]), "f")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    with loops.for_range(b, fn.args[2] if stop is None else stop, **hints) as i:
        x = b.load(b.gep(fn.args[1], [i], source_etype=ir.FloatType()), typ=ir.FloatType())
        b.store(b.fadd(b.load(fn.args[0], typ=ir.FloatType()), x), fn.args[0])
    b.ret_void()
    return module


def _hints(module: ir.Module) -> str:
    return " ".join(re.findall(r'!"(llvm\.loop\.[\w.]+)"', str(module)))


@pytest.mark.parametrize(("stop", "want"), [
    (I64(16), ""),                                   # short: LLVM may unroll it fully
    (I64(17), "llvm.loop.unroll.disable"),
    (None, "llvm.loop.unroll.disable"),               # a trip count known only at run time
])
def test_long_loops_are_not_unrolled(stop, want):
    assert _hints(_sum_into(stop)) == want


def test_hints_combine():
    module = _sum_into(None, interleave=4, vectorize=False)
    assert _hints(module) == ("llvm.loop.interleave.count llvm.loop.vectorize.enable "
                              "llvm.loop.unroll.disable")
    target.optimize(module)  # well-formed: LLVM verifies and accepts the metadata


def test_vectorize_false_keeps_the_loop_scalar():
    text = str(target.optimize(_sum_into(None, vectorize=False)))
    assert "<8 x float>" not in text and "<4 x float>" not in text


def test_loop_nest_leaves_outer_loops_unvectorized_on_request():
    module = target.new_module("nest")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), []), "g")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    with loops.loop_nest(b, [I64(100), I64(100), I64(100)], vectorize_outer=False):
        pass
    b.ret_void()
    text = str(module)
    off = re.search(r'(!\d+) = !\{ !"llvm\.loop\.vectorize\.enable", i1 0 \}', text).group(1)
    loop_nodes = re.findall(r"^(!\d+) = !\{ \1,(.*)\}$", text, re.M)
    assert [off in re.findall(r"!\d+", operands) for _, operands in loop_nodes].count(True) == 2
    assert len(loop_nodes) == 3  # every loop of 100 iterations is kept from the unroller


@pytest.mark.parametrize("shape", [(4096, 3), (4096, 10), (1000, 100), (3, 7, 9), (256, 512)])
def test_column_sums_match_numpy(shape):
    # narrow kept axes (3, 9) vectorize across rows; wider ones only along the row
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    xs = gx.input(f"c{next(NAMES)}", shape, "float32")
    fn = gx.compile([xs], gx.sum(xs, axis=0), backend="llvm")
    np.testing.assert_allclose(fn(x), x.astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)
