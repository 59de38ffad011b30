"""Fused kernels as NumPy source: valid Python writing through ``out=``, and the same values
as the fused op's reference implementation, for tricky register use included."""

from __future__ import annotations

import ast
import math
from typing import Any, NamedTuple

import numpy as np
import pytest

import graphc as gx
from graphc.backends.numpy.kernels import kernel_source
from graphc.ops.fused import FUSED
from graphc.ops.scalar import Program

#: What the numpy backend's namespace gives generated code (``inf`` and ``nan`` included).
NAMESPACE = {"np": np, "inf": math.inf, "nan": math.nan}

#: NumPy calls that are not ufuncs writing a result (allocation, copies, literals, reductions).
NOT_UFUNCS = {"empty", "copyto", "asarray", "float32", "float64", "sum", "max", "min", "prod"}

SHAPE = (3, 4)


class Case(NamedTuple):
    """A kernel body over inputs of the given shapes (``"bool"`` marks a bool input)."""

    name: str
    instrs: tuple
    result: Any
    inputs: tuple  # (shape, "float" | "bool") per input
    dtype: str = "float"  # the result: "float" (the compute dtype) or "bool"
    reduce: tuple | None = None
    out_input: int | None = None


FULL, ROW, COLUMN = (SHAPE, "float"), ((4,), "float"), ((3, 1), "float")
MASK = (SHAPE, "bool")

CASES = [
    Case("chain", (("t0", "mul", ("in0", 2.0)), ("t1", "add", ("t0", "in1")),
                   ("t2", "tanh", ("t1",))), "t2", (FULL, ROW)),
    Case("broadcast_only_inputs", (("t0", "mul", ("in0", "in1")), ("t1", "exp", ("t0",))),
         "t1", (ROW, COLUMN)),
    Case("many_live_values", (("t0", "exp", ("in0",)), ("t1", "sin", ("in0",)),
                              ("t2", "cos", ("in1",)), ("t3", "mul", ("t0", "t1")),
                              ("t4", "add", ("t3", "t2")), ("t5", "sub", ("t4", "t0")),
                              ("t6", "div", ("t5", "t2"))), "t6", (FULL, ROW)),
    Case("where_reuses_the_false_branch",
         (("t0", "greater", ("in0", 0.0)), ("t1", "mul", ("in0", 0.1)),
          ("t2", "where", ("t0", "in0", "t1")), ("t3", "mul", ("t2", "in1"))), "t3",
         (FULL, ROW)),
    Case("where_false_branch_is_also_the_true_one",
         (("t0", "greater", ("in0", 0.0)), ("t1", "mul", ("in0", 3.0)),
          ("t2", "where", ("t0", "t1", "t1")), ("t3", "add", ("t2", "in0"))), "t3", (FULL,)),
    Case("where_false_branch_read_again_later",
         (("t0", "less", ("in0", "in1")), ("t1", "neg", ("in0",)),
          ("t2", "where", ("t0", "in1", "t1")), ("t3", "mul", ("t2", "t1"))), "t3",
         (FULL, ROW)),
    Case("where_false_branch_is_the_condition_source",
         (("t0", "mul", ("in0", 2.0)), ("t1", "greater", ("t0", 0.5)),
          ("t2", "where", ("t1", 0.5, "t0"))), "t2", (FULL,)),
    Case("where_as_the_result_over_inputs", (("t0", "where", ("in2", "in0", "in1")),), "t0",
         (FULL, ROW, MASK)),
    Case("bool_intermediates",
         (("t0", "less", ("in0", "in1")), ("t1", "greater", ("in0", 0.5)),
          ("t2", "logical_and", ("t0", "t1")), ("t3", "logical_not", ("t2",)),
          ("t4", "logical_or", ("t3", "t0")), ("t5", "logical_xor", ("t4", "in2")),
          ("t6", "where", ("t5", "in0", "in1"))), "t6", (FULL, ROW, MASK)),
    Case("bool_result", (("t0", "mul", ("in0", 2.0)), ("t1", "greater_equal", ("t0", "in1")),
                         ("t2", "logical_and", ("t1", "in2"))), "t2", (FULL, ROW, MASK),
         dtype="bool"),
    Case("erf", (("t0", "mul", ("in0", 0.7071067811865476)), ("t1", "erf", ("t0",)),
                 ("t2", "add", ("t1", 1.0)), ("t3", "mul", ("in0", "t2")),
                 ("t4", "mul", ("t3", 0.5))), "t4", (FULL,)),
    Case("reciprocal", (("t0", "square", ("in0",)), ("t1", "add", ("t0", 1.0)),
                        ("t2", "reciprocal", ("t1",))), "t2", (FULL,)),
    Case("inf_and_nan_literals",
         (("t0", "minimum", ("in0", math.inf)), ("t1", "maximum", ("t0", -math.inf)),
          ("t2", "greater", ("in0", 1.0)), ("t3", "where", ("t2", math.nan, "t1")),
          ("t4", "less", ("in0", -1.0)), ("t5", "where", ("t4", -math.inf, "t3"))), "t5",
         (FULL,)),
    Case("result_is_an_input", (), "in0", (ROW,)),
    Case("result_is_a_constant", (), 2.5, ()),
    # the caller passes input k as `out`: its value starts in the out register
    Case("out_aliases_an_input", (("t0", "mul", ("in0", "in1")), ("t1", "add", ("t0", "in0")),
                                  ("t2", "tanh", ("t1",))), "t2", (FULL, ROW), out_input=0),
    Case("out_aliases_an_input_read_first_and_last",
         (("t0", "exp", ("in1",)), ("t1", "mul", ("t0", "in0")), ("t2", "sin", ("t1",)),
          ("t3", "add", ("t2", "in1"))), "t3", (ROW, FULL), out_input=1),
    Case("out_aliases_the_where_false_branch",
         (("t0", "greater", ("in0", 0.0)), ("t1", "where", ("t0", "in0", "in1")),
          ("t2", "mul", ("t1", 2.0))), "t2", (FULL, FULL), out_input=1),
    Case("out_aliases_an_input_that_is_the_result", (("t0", "exp", ("in0",)),), "in1",
         (FULL, FULL), out_input=1),
    Case("out_aliases_a_bool_input", (("t0", "greater", ("in0", 0.0)),
                                      ("t1", "logical_and", ("t0", "in1"))), "t1",
         (FULL, MASK), dtype="bool", out_input=1),
    # reductions: the body fills `out`, then it is reduced
    Case("sum", (("t0", "sub", ("in0", 1.0)), ("t1", "square", ("t0",))), "t1", (FULL,),
         reduce=("sum", (0, 1), False)),
    Case("max_keepdims", (("t0", "mul", ("in0", "in1")), ("t1", "tanh", ("t0",))), "t1",
         (FULL, ROW), reduce=("max", (1,), True)),
    Case("min_in_place", (("t0", "sin", ("in0",)),), "t0", (FULL,),
         reduce=("min", (0,), False), out_input=0),
    Case("prod", (("t0", "mul", ("in0", 0.5)), ("t1", "add", ("t0", 1.0))), "t1", (FULL,),
         reduce=("prod", (0,), True)),
]

MIXED_WHERE = Case("where_of_a_bool_and_a_float",
                   (("t0", "greater", ("in0", 0.0)), ("t1", "where", ("t0", "in1", "in0")),
                    ("t2", "add", ("t1", 1.0))), "t2", (FULL, MASK))


def attributes(case: Case, compute: str) -> dict[str, Any]:
    return {"kernel": case.name, "program": Program(case.instrs, case.result), "shape": SHAPE,
            "dtype": "bool" if case.dtype == "bool" else compute, "compute": compute,
            "reduce": case.reduce}


def arrays_for(case: Case, compute: str, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(shape) > 0.5 if kind == "bool" else
            rng.uniform(-2, 2, shape).astype(compute) for shape, kind in case.inputs]


def load(source: str, name: str):
    """Execute kernel source in a namespace like the numpy backend's."""
    namespace = dict(NAMESPACE)
    if "_erf(" in source:
        from scipy.special import erf

        namespace["_erf"] = erf
    exec(compile(source, f"<kernel {name}>", "exec"), namespace)
    return namespace[name]


def check_source(source: str, name: str, n_inputs: int) -> None:
    """Valid Python defining ``name(in0, ..., out)`` whose every ufunc call writes ``out=``."""
    (function,) = ast.parse(source).body
    assert isinstance(function, ast.FunctionDef) and function.name == name
    assert [a.arg for a in function.args.args] == [f"in{k}" for k in range(n_inputs)] + ["out"]
    for call in ast.walk(function):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
                and call.func.attr not in NOT_UFUNCS:
            assert "out" in [k.arg for k in call.keywords], ast.unparse(call)


def run_case(case: Case, compute: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """The kernel's result, the reference's, and the source. Checks that the kernel
    writes no input except the one passed as ``out``."""
    attrs = attributes(case, compute)
    arrays = arrays_for(case, compute, seed)
    source = kernel_source("kernel", attrs, [a.dtype.name for a in arrays], case.out_input)
    check_source(source, "kernel", len(arrays))
    expected = FUSED.impl(*arrays, **attrs)
    given = [a.copy() for a in arrays]
    out = given[case.out_input] if case.out_input is not None else \
        np.empty(SHAPE, attrs["dtype"])
    got = load(source, "kernel")(*given, out)
    for k, (a, g) in enumerate(zip(arrays, given, strict=True)):
        if k != case.out_input:
            np.testing.assert_array_equal(g, a)
    if case.reduce is None:
        assert got is out
    return got, expected, source


@pytest.mark.parametrize("compute", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kernels_compute_what_the_fused_reference_does(case, compute):
    for seed in range(3):
        got, expected, _ = run_case(case, compute, seed)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-6 if compute == "float32" else 1e-15,
                                   atol=0, equal_nan=True)


@pytest.mark.parametrize("compute", ["float32", "float64"])
def test_a_where_of_a_bool_and_a_float_branch(compute):
    got, expected, _ = run_case(MIXED_WHERE, compute)
    np.testing.assert_allclose(got, expected)


def test_a_where_of_a_bool_and_a_float_tensor_compiles():
    x, m = gx.input("x", SHAPE, "float64"), gx.input("m", SHAPE, "bool")
    y = gx.where(x > 0, m, x) + 1
    assert y.dtype == "float64" and "where" in gx.optimize(y).attr["program"].ops
    a = np.random.default_rng(0).standard_normal(SHAPE)
    expected = gx.compile([x, m], y, optimize=False)(a, a > 0.5)
    np.testing.assert_array_equal(gx.compile([x, m], y)(a, a > 0.5), expected)


def test_a_float_where_does_not_write_into_its_dying_bool_false_branch():
    x, z = gx.input("x", SHAPE, "float64"), gx.input("z", SHAPE, "float64")
    y = gx.where(x > 0, x * 2.0, z > 1.0) + 1.0  # the false branch is a bool computed inside
    a, b = np.random.default_rng(1).standard_normal((2, *SHAPE))
    expected = gx.compile([x, z], y, optimize=False)(a, b)
    np.testing.assert_array_equal(gx.compile([x, z], y)(a, b), expected)


def test_where_writes_into_the_dying_false_branch_instead_of_copying_it():
    source = run_case(CASES[3], "float64")[2]
    assert CASES[3].name == "where_reuses_the_false_branch"
    assert source.count("np.copyto(") == 1  # only the true branch, where the condition holds
    assert "np.empty(out.shape, 'float64')" not in source  # no float scratch at all


@pytest.mark.parametrize("name", ["where_false_branch_is_also_the_true_one",
                                  "where_false_branch_read_again_later"])
def test_where_copies_a_false_branch_it_may_not_overwrite(name):
    (case,) = [c for c in CASES if c.name == name]
    assert run_case(case, "float64")[2].count("np.copyto(") >= 2


def test_a_chain_needs_no_scratch_buffer():
    source = run_case(CASES[0], "float64")[2]
    assert "np.empty" not in source and source.count("out=out") == 3


def test_in_place_kernels_start_from_the_aliased_input():
    (case,) = [c for c in CASES if c.name == "out_aliases_an_input"]
    source = run_case(case, "float64")[2]
    assert "np.multiply(out, in1," in source  # in0 is read from `out`
    assert "in0" not in source.split("\n", 1)[1]  # and never under its own name


def test_literals_are_typed_like_the_kernel():
    source = run_case(CASES[0], "float32")[2]
    assert "np.float32(2.0)" in source and "float64" not in source
    inf_source = run_case([c for c in CASES if c.name == "inf_and_nan_literals"][0],
                          "float64")[2]
    assert "np.float64(inf)" in inf_source and "np.float64(nan)" in inf_source


# -- every elementwise formula, through the fusion pass and the backend ---------------------------

ACTIVATIONS = {name: getattr(gx, name) for name in (
    "sigmoid", "logsigmoid", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu",
    "silu", "mish", "softplus", "softsign", "hardtanh", "hardsigmoid", "hardswish",
    "tanhshrink", "softshrink", "hardshrink", "heaviside", "piecewise_linear", "erf",
    "expm1", "sign", "floor", "abs", "tanh", "sin", "cos")}
ACTIVATIONS["clip"] = lambda t: gx.clip(t, -0.5, 0.75)
ACTIVATIONS["threshold"] = lambda t: gx.threshold(t, 0.1, 2.0)
ACTIVATIONS["sqrt_log"] = lambda t: gx.sqrt(gx.log1p(gx.square(t))) + gx.log(gx.abs(t) + 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_inside_a_kernel_matches_the_unfused_function(name, dtype):
    x = gx.input("x", (5, 7), dtype)
    y = ACTIVATIONS[name](x * 1.5 - 0.25) * 2 + x
    fn = gx.compile([x], y)
    assert [n.op.name for n in fn.graph.toposort()] == ["input", "fused"]
    value = np.random.default_rng(5).uniform(-3, 3, (5, 7)).astype(dtype)
    value[0, :3] = [0.0, 1 / 6, -1 / 6]  # the kinks of the piecewise functions
    expected = gx.compile([x], y, optimize=False)(value)
    got = fn(value)
    assert got.dtype == expected.dtype == np.dtype(dtype)
    tol = 2e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
