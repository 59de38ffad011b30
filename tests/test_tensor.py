"""The IR node: hash-consing, immutability, weak scalars, promotion, build-time errors."""

import gc
import inspect
import weakref

import numpy as np
import pytest

import graphc as gx
from tests.helpers import evaluate


def next_line() -> int:
    """The line number of the caller's next line."""
    return inspect.currentframe().f_back.f_lineno + 1


# -- hash-consing ----------------------------------------------------------------------------

def test_same_op_inputs_and_attrs_is_the_same_node():
    x, y = gx.input("x", (3,)), gx.input("y", (3,))
    assert (x + y) is (x + y)
    assert gx.exp(x * y) is gx.exp(x * y)
    assert gx.clip(x, 0.0, 1.0) is gx.clip(x, 0, 1)
    assert gx.sum(x, 0) is gx.sum(x, -1)  # attributes are normalised before hashing


def test_different_attrs_or_input_order_are_different_nodes():
    x, y = gx.input("x", (2, 3)), gx.input("y", (2, 3))
    assert gx.clip(x, 0.0, 1.0) is not gx.clip(x, 0.0, 2.0)
    assert gx.sum(x, 0) is not gx.sum(x, 1)
    assert gx.sum(x, 0) is not gx.sum(x, 0, keepdims=True)
    assert gx.cast(x, "float64") is not gx.cast(x, "int32")
    assert (x - y) is not (y - x)


def test_equal_constants_are_merged():
    assert gx.constant(1.5) is gx.constant(1.5)
    assert gx.constant([1, 2, 3]) is gx.constant(np.array([1, 2, 3]))
    assert gx.constant(np.zeros((2, 2), "float32")) is gx.constant(np.zeros((2, 2), "float32"))


def test_constants_differing_in_dtype_shape_or_value_are_not_merged():
    assert gx.constant(1.0, "float32") is not gx.constant(1.0, "float64")
    assert gx.constant(1, "int32") is not gx.constant(1, "int64")
    assert gx.constant(1.0) is not gx.constant([1.0])
    assert gx.constant([1.0, 2.0]) is not gx.constant([2.0, 1.0])
    assert gx.constant(0.0) is not gx.constant(-0.0)  # equal as floats, different bits


def test_constants_are_read_only_copies():
    source = np.arange(3.0)
    c = gx.constant(source)
    source[0] = 99.0
    value = c.attr["value"].array
    np.testing.assert_array_equal(value, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError):
        value[0] = 1.0


def test_leaves_with_the_same_name_are_distinct():
    a, b = gx.input("x", (3,)), gx.input("x", (3,))
    assert a is not b and a.name == b.name == "x"
    assert (a + 1) is not (b + 1)
    p, q = gx.param("w", np.zeros(2)), gx.param("w", np.zeros(2))
    assert p is not q


def test_the_node_cache_does_not_keep_nodes_alive():
    x = gx.input("x", (3,))
    ref = weakref.ref(gx.exp(x))
    gc.collect()
    assert ref() is None
    assert gx.exp(x).inputs == (x,)


# -- immutability and identity ---------------------------------------------------------------

def test_tensors_are_immutable():
    x = gx.input("x", (3,))
    y = gx.exp(x)
    for name, value in [("op", None), ("inputs", ()), ("type", None), ("anything", 1)]:
        with pytest.raises(AttributeError, match="immutable"):
            setattr(y, name, value)
    assert y.inputs == (x,) and isinstance(y.inputs, tuple) and isinstance(y.attrs, tuple)


def test_equality_is_identity_and_truth_is_an_error():
    x, y = gx.input("x", (3,)), gx.input("x", (3,))
    assert (x == x) is True and (x == y) is False and (x != y) is True
    assert {x: 1, y: 2}[y] == 2
    with pytest.raises(TypeError, match="truth value"):
        bool(x < y)


def test_static_facts_and_repr():
    x = gx.input("x", ("batch", 4), "float16")
    assert x.shape == ("batch", 4) and x.dtype == "float16" and x.ndim == 2
    assert x.name == "x" and x.op.name == "input"
    assert repr(x) == "<input 'x': float16(batch, 4)>"
    assert repr(gx.exp(gx.input("z", (2,), "float64"))) == "<exp: float64(2,)>"
    assert len(gx.input("v", (5, 2))) == 5
    with pytest.raises(TypeError):
        len(x)


def test_leaf_constructors_validate():
    with pytest.raises(TypeError, match="non-empty"):
        gx.input("", (3,))
    with pytest.raises(TypeError, match="non-empty"):
        gx.param(3, np.zeros(2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unsupported dtype"):
        gx.input("x", (3,), "complex128")
    with pytest.raises(TypeError, match="unsupported dtype"):
        gx.constant(["a", "b"])


def test_param_holds_a_copy_of_its_value():
    source = np.ones(3, "float32")
    w = gx.param("w", source)
    source[:] = 5.0
    np.testing.assert_array_equal(w.value, np.ones(3))
    assert w.dtype == "float32" and w.shape == (3,)
    assert gx.param("v", [1.0, 2.0]).dtype == "float64"  # NumPy's default, as np.array


# -- weak typing of Python scalars (NEP 50) and promotion ------------------------------------

@pytest.mark.parametrize(("dtype", "scalar"), [
    ("float32", 0.1), ("float16", 2), ("float32", 3), ("int64", 0.5), ("int32", 2),
    ("int8", 3), ("uint8", 1), ("bool", 1), ("bool", 1.5), ("float64", True),
])
def test_python_scalars_are_weak_like_numpy(dtype, scalar):
    x = gx.input("x", (3,), dtype)
    expected = (np.ones(3, dtype) * scalar).dtype.name
    assert (x * scalar).dtype == expected
    assert (scalar * x).dtype == expected
    assert (x + scalar).dtype == (np.ones(3, dtype) + scalar).dtype.name


def test_weak_scalar_values_match_numpy():
    a = np.array([1.0, 2.5, -3.0], "float32")
    out = evaluate(lambda x: 0.1 * x, a)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.float32(0.1) * a)
    ints = np.array([1, 2, 3])
    out = evaluate(lambda i: i * 0.5, ints)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [0.5, 1.0, 1.5])


@pytest.mark.parametrize(("a", "b"), [
    ("int32", "float32"), ("uint8", "int8"), ("bool", "int16"), ("float16", "int8"),
    ("int64", "uint64"), ("float16", "float32"), ("int32", "int64"), ("uint32", "int32"),
    ("bool", "float16"),
])
def test_dtype_promotion_is_numpy(a, b):
    x, y = gx.input("x", (2,), a), gx.input("y", (2,), b)
    expected = np.result_type(a, b).name
    assert (x + y).dtype == expected
    assert gx.maximum(x, y).dtype == expected
    out = gx.compile([x, y], x + y)(np.ones(2, a), np.ones(2, b))
    assert out.dtype == np.dtype(expected)


# -- broadcasting with symbolic dims ---------------------------------------------------------

def test_symbolic_dims_broadcast_against_static_and_one():
    x = gx.input("x", ("batch", 3))
    assert (x + gx.input("b", (3,))).shape == ("batch", 3)
    assert (x + gx.input("o", (1, 3))).shape == ("batch", 3)
    assert (x + gx.input("c", ("batch", 1))).shape == ("batch", 3)
    assert (gx.input("col", ("batch", 1)) * gx.input("row", (1, "n"))).shape == ("batch", "n")
    assert (x + x).shape == ("batch", 3)


def test_different_symbolic_dims_do_not_broadcast():
    x, y = gx.input("x", ("batch", 3)), gx.input("y", ("n", 3))
    with pytest.raises(gx.GraphcTypeError, match="batch vs n"):
        x + y
    with pytest.raises(gx.GraphcTypeError, match="4 vs batch"):
        x + gx.input("z", (4, 3))


# -- build-time errors name the op, the shapes and the user's line ---------------------------

def test_shape_error_names_op_shapes_file_and_line():
    x, y = gx.input("x", ("batch", 3)), gx.input("y", ("n", 3))
    with pytest.raises(gx.GraphcTypeError) as info:
        line = next_line()
        x + y
    error = info.value
    message = str(error)
    assert message.startswith("add: ")
    assert "float32(batch, 3)" in message and "float32(n, 3)" in message
    assert f"{__file__}:{line} in test_shape_error_names_op_shapes_file_and_line" in message
    assert error.op == "add" and error.location.lineno == line
    assert error.location.filename == __file__
    assert isinstance(error, gx.GraphcError) and isinstance(error, TypeError)


def test_error_in_a_user_helper_points_at_the_helper():
    def badly_shaped(a):
        return gx.reshape(a, (4, 5))

    line = inspect.getsourcelines(badly_shaped)[1] + 1
    with pytest.raises(gx.GraphcTypeError) as info:
        badly_shaped(gx.input("a", (3, 4)))
    assert info.value.op == "reshape"
    assert "(3, 4)" in str(info.value) and "(4, 5)" in str(info.value)
    assert info.value.location.lineno == line
    assert info.value.location.function == "badly_shaped"


def test_nodes_remember_where_they_were_built():
    x = gx.input("x", (3,))
    line = next_line()
    y = gx.tanh(x) * 2.0
    assert y.location.filename == __file__ and y.location.lineno == line
    assert y.inputs[0].location.lineno == line


def test_dtype_errors_are_graphc_type_errors():
    with pytest.raises(gx.GraphcTypeError, match="reshape"):
        gx.reshape(gx.input("x", (2, 3)), (4,))
    with pytest.raises(gx.GraphcTypeError, match="takes 2 inputs"):
        gx.add(gx.input("x", (2,)))
