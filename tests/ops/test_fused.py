"""The fused-kernel op: its type rule, its reference implementation against its expansion
into primitive ops, and its gradient (through the expansion)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gx
from graphc.ops.base import ALL_OPS
from graphc.ops.fused import FUSED, Composite, fused
from graphc.ops.scalar import Program
from tests.helpers import assert_gradients

RNG = np.random.default_rng(13)

TANH_OF_PRODUCT = Program((("t0", "mul", ("in0", "in1")), ("t1", "add", ("t0", 1.0)),
                           ("t2", "tanh", ("t1",))), "t2")
SQUARED_DIFFERENCE = Program((("t0", "sub", ("in0", "in1")), ("t1", "square", ("t0",))), "t1")
LEAKY = Program((("t0", "greater", ("in0", "in1")), ("t1", "mul", ("in0", 0.1)),
                 ("t2", "where", ("t0", "in0", "t1")), ("t3", "exp", ("t2",))), "t3")
CLIPPED_RATIO = Program((("t0", "reciprocal", ("in1",)), ("t1", "mul", ("in0", "t0")),
                         ("t2", "minimum", ("t1", math.inf)), ("t3", "sqrt", ("t2",))), "t3")


def kernel(program: Program, *inputs: gx.Tensor, shape=(3, 4), reduce=None,
           dtype: str | None = None) -> gx.Tensor:
    compute = inputs[0].dtype
    return fused(inputs, kernel="hand_made", program=program, shape=shape,
                 dtype=dtype or compute, compute=compute, reduce=reduce)


@pytest.mark.parametrize("shapes, shape, reduce, message", [
    ([(3, 4)], (3,), None, "dims 3 vs 4 at axis -1"),
    ([(5,)], (3, 4), None, "dims 4 vs 5 at axis -1"),
    ([(3, 4), (4, 3)], (3, 4), None, "dims 3 vs 4 at axis -2"),
    # broadcasts, but to more than the iteration space
    ([(3, 4), (2, 3, 4)], (3, 4), None, r"do not broadcast to the kernel's shape \(3, 4\)"),
    ([(3, 1)], (3,), None, r"do not broadcast to the kernel's shape \(3,\)"),
    ([(3, 4)], (3, 4), ("mean", (0,), False), "unknown fused reduction 'mean'"),
])
def test_the_type_rule_refuses_bad_kernels(shapes, shape, reduce, message):
    xs = [gx.input(f"x{k}", s, "float64") for k, s in enumerate(shapes)]
    with pytest.raises(gx.GraphcTypeError, match=message) as error:
        kernel(Program((), "in0"), *xs, shape=shape, reduce=reduce)
    assert error.value.op == "fused"


def test_reduction_axes_outside_the_iteration_space_are_refused():
    x = gx.input("x", (3, 4), "float64")
    with pytest.raises(gx.GraphcTypeError, match="axis"):
        kernel(Program((), "in0"), x, reduce=("sum", (2,), False))


@pytest.mark.parametrize("shapes, reduce, dtype, expected", [
    ([(3, 4), (4,)], None, None, ((3, 4), "float64")),
    ([(3, 1), (1, 4)], None, None, ((3, 4), "float64")),
    ([(), (4,)], None, None, ((3, 4), "float64")),
    ([(3, 4), (4,)], ("sum", (0, 1), False), None, ((), "float64")),
    ([(3, 4), (4,)], ("max", (1,), True), None, ((3, 1), "float64")),
    ([(3, 4), (4,)], ("prod", (0,), False), None, ((4,), "float64")),
    ([(3, 4), (4,)], None, "bool", ((3, 4), "bool")),
])
def test_the_type_is_the_iteration_space_less_the_reduced_axes(shapes, reduce, dtype, expected):
    xs = [gx.input(f"x{k}", s, "float64") for k, s in enumerate(shapes)]
    node = kernel(TANH_OF_PRODUCT, *xs, reduce=reduce, dtype=dtype)
    assert (node.shape, node.dtype) == expected


def test_equal_kernels_are_one_node():
    x, y = gx.input("x", (3, 4), "float64"), gx.input("y", (4,), "float64")
    same = Program(TANH_OF_PRODUCT.instrs, TANH_OF_PRODUCT.result)
    assert kernel(TANH_OF_PRODUCT, x, y) is kernel(same, x, y)
    assert kernel(TANH_OF_PRODUCT, x, y) is not kernel(SQUARED_DIFFERENCE, x, y)


CASES = [
    (TANH_OF_PRODUCT, [(3, 4), (4,)], None),
    (TANH_OF_PRODUCT, [(3, 1), (4,)], ("sum", (1,), True)),
    (SQUARED_DIFFERENCE, [(3, 4), ()], ("sum", (0, 1), False)),
    (SQUARED_DIFFERENCE, [(3, 4), (3, 1)], ("prod", (0,), False)),
    (LEAKY, [(3, 4), (3, 4)], ("max", (0,), False)),
    (LEAKY, [(3, 4), (4,)], ("min", (1,), True)),
    (CLIPPED_RATIO, [(3, 4), (4,)], None),
    (Program((), 0.5), [(4,)], ("sum", (0, 1), False)),  # a constant body, broadcast
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("program, shapes, reduce", CASES)
def test_impl_expansion_and_compiled_kernel_agree(program, shapes, reduce, dtype):
    xs = [gx.input(f"x{k}", s, dtype) for k, s in enumerate(shapes)]
    node = kernel(program, *xs, reduce=reduce)
    arrays = [RNG.uniform(0.2, 2, s).astype(dtype) for s in shapes]
    attrs = node.attr
    reference = FUSED.impl(*arrays, **attrs)
    expanded = node.op.expand(node)
    assert "fused" not in [n.op.name for n in gx.toposort([expanded])]
    assert expanded.type == node.type
    by_expansion = gx.compile(xs, expanded, optimize=False)(*arrays)
    by_kernel = gx.compile(xs, node, optimize=False)(*arrays)
    tol = 1e-6 if dtype == "float32" else 1e-14
    for got in (by_expansion, by_kernel):
        assert got.shape == reference.shape == node.shape and got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, reference, rtol=tol, atol=tol)


def test_impl_evaluates_the_program_in_the_compute_dtype():
    program = Program((("t0", "add", ("in0", 1e-8)),), "t0")
    x = np.ones((3, 4), np.float32)
    single = FUSED.impl(x, program=program, kernel="k", shape=(3, 4), dtype="float32",
                        compute="float32", reduce=None)
    np.testing.assert_array_equal(single, np.ones((3, 4), np.float32))  # 1 + 1e-8 rounds to 1
    double = FUSED.impl(x.astype(np.float64), program=program, kernel="k", shape=(3, 4),
                        dtype="float64", compute="float64", reduce=None)
    np.testing.assert_array_equal(double, np.full((3, 4), 1 + 1e-8))


def test_impl_returns_a_fresh_array_even_for_a_pass_through_body():
    x = np.arange(12.0).reshape(3, 4)
    result = FUSED.impl(x, program=Program((), "in0"), kernel="k", shape=(3, 4),
                        dtype="float64", compute="float64", reduce=None)
    np.testing.assert_array_equal(result, x)
    assert not np.shares_memory(result, x)


@pytest.mark.parametrize("program, shapes, reduce", [
    (TANH_OF_PRODUCT, [(3, 4), (4,)], None),
    (TANH_OF_PRODUCT, [(3, 1), (4,)], ("sum", (0, 1), False)),
    (SQUARED_DIFFERENCE, [(3, 4), (3, 1)], ("sum", (1,), True)),
    (LEAKY, [(3, 4), (4,)], None),
    (CLIPPED_RATIO, [(3, 4), (4,)], ("prod", (0,), False)),
])
def test_gradients_of_a_hand_made_kernel(program, shapes, reduce):
    def f(*xs):
        return kernel(program, *xs, reduce=reduce)

    arrays = [RNG.uniform(0.5, 1.5, s) for s in shapes]
    if program is LEAKY:  # keep away from the kink: in0 − in1 at least 0.1 from zero
        arrays[0] = arrays[1] + np.where(RNG.random((3, 4)) > 0.5, 0.3, -0.3)
    assert_gradients(f, *arrays)


def test_a_composite_without_an_expansion_says_so():
    class Opaque(Composite):
        name = "opaque_for_test"

    x = gx.input("x", (3,), "float64")
    try:
        with pytest.raises(NotImplementedError, match="opaque_for_test has no expansion"):
            Opaque().expand(gx.exp(x))
    finally:  # an op registers itself; leave the registry as the other tests expect it
        ALL_OPS.pop("opaque_for_test", None)
