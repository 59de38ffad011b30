"""Tensor types: shapes with symbolic dims, broadcasting, dtype promotion, axes."""

import numpy as np
import pytest

from graphc.types import (
    TensorType,
    as_dtype,
    as_shape,
    broadcast_shapes,
    format_shape,
    is_derived,
    is_static,
    normalize_axes,
    promote_types,
    resolve_dim,
    shape_size,
)


@pytest.mark.parametrize(("spelling", "name"), [
    ("float32", "float32"), (np.float32, "float32"), (np.dtype("f8"), "float64"), (bool, "bool"),
    ("i4", "int32"), (int, "int64"), (float, "float64"), ("uint8", "uint8"),
])
def test_as_dtype_normalises_spellings(spelling, name):
    assert as_dtype(spelling) == name


@pytest.mark.parametrize("bad", ["complex64", object, "U3", "datetime64[s]"])
def test_as_dtype_rejects_unsupported(bad):
    with pytest.raises(TypeError, match="unsupported dtype"):
        as_dtype(bad)


def test_as_shape_normalises_ints_numpy_ints_and_names():
    assert as_shape(3) == (3,)
    assert as_shape("batch") == ("batch",)
    assert as_shape([np.int64(2), "n", 0]) == (2, "n", 0)
    assert as_shape(()) == ()


@pytest.mark.parametrize(("shape", "error"), [
    ((-1,), ValueError), ((2.0,), TypeError), ((True,), TypeError), (("not a name",), ValueError),
    (("3batch",), ValueError), (("batch*",), ValueError), ((None,), TypeError),
])
def test_as_shape_rejects_bad_dims(shape, error):
    with pytest.raises(error):
        as_shape(shape)


def test_derived_dims_are_canonical():
    assert as_shape(("4*batch",)) == ("batch*4",)
    assert as_shape(("n*batch*2*3",)) == ("batch*n*6",)
    assert as_shape(("2*3",)) == (6,)
    assert is_derived("batch*4") and not is_derived("batch") and not is_derived(4)


@pytest.mark.parametrize(("shape", "size"), [
    ((), 1), ((2, 3), 6), ((2, 0, "n"), 0), (("batch", 3, 4), "batch*12"),
    (("n", "batch"), "batch*n"), (("batch*2", 3), "batch*6"), (("batch", 1), "batch"),
])
def test_shape_size(shape, size):
    assert shape_size(shape) == size


def test_shape_size_agrees_whether_dims_are_split_or_derived():
    assert shape_size(("batch", 2, 2)) == shape_size(("batch", 4)) == shape_size(("batch*4",))


def test_resolve_dim():
    dims = {"batch": 5, "n": 2}
    assert resolve_dim(7, dims) == 7
    assert resolve_dim("batch", dims) == 5
    assert resolve_dim("batch*n*3", dims) == 30


@pytest.mark.parametrize(("shapes", "result"), [
    (((), ()), ()),
    (((3,), ()), (3,)),
    (((2, 1), (1, 3)), (2, 3)),
    (((4, 1, 3), (5, 1)), (4, 5, 3)),
    (((0,), (1,)), (0,)),
    ((("batch", 3), (3,)), ("batch", 3)),
    ((("batch", 3), (1, 3)), ("batch", 3)),
    ((("batch", 1), (1, "n")), ("batch", "n")),
    ((("batch", 3), ("batch", 3)), ("batch", 3)),
    ((("batch",), (2, 1)), (2, "batch")),
])
def test_broadcast_shapes_matches_numpy_and_handles_symbols(shapes, result):
    assert broadcast_shapes(*shapes) == result
    if all(is_static(s) for s in shapes):
        assert broadcast_shapes(*shapes) == np.broadcast_shapes(*shapes)


@pytest.mark.parametrize(("a", "b", "named"), [
    ((2, 3), (4, 3), "2 vs 4"),
    (("batch", 3), ("n", 3), "batch vs n"),
    (("batch", 3), (5, 3), "5 vs batch"),
    ((3,), (0,), "0 vs 3"),
])
def test_broadcast_shapes_names_the_clash(a, b, named):
    with pytest.raises(ValueError, match=named):
        broadcast_shapes(a, b)


@pytest.mark.parametrize(("a", "b"), [
    ("int32", "float32"), ("uint8", "int8"), ("bool", "int16"), ("float16", "int8"),
    ("int64", "uint64"), ("float16", "float32"), ("uint16", "int32"), ("bool", "bool"),
])
def test_promote_types_is_numpy(a, b):
    assert promote_types(a, b) == np.result_type(a, b).name


def test_normalize_axes():
    assert normalize_axes(None, 3) == (0, 1, 2)
    assert normalize_axes(-1, 3) == (2,)
    assert normalize_axes((2, 0), 3) == (0, 2)
    assert normalize_axes(np.int64(1), 2) == (1,)
    with pytest.raises(ValueError, match="out of range"):
        normalize_axes(3, 3)
    with pytest.raises(ValueError, match="repeated"):
        normalize_axes((0, -3), 3)


def test_tensor_type_is_a_value():
    t = TensorType(("batch", 3), "float32")
    assert t == TensorType(("batch", 3), "float32")
    assert hash(t) == hash(TensorType(("batch", 3), "float32"))
    assert t.ndim == 2 and t.is_float and not TensorType((), "int8").is_float
    assert str(t) == "float32(batch, 3)"
    assert format_shape((4,)) == "(4,)" and format_shape(()) == "()"
    with pytest.raises(AttributeError):
        t.dtype = "float64"  # type: ignore[misc]
