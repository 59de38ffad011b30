"""The importer itself: sources, initializers, import-time values, errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphc as gx
from graphc.onnx import NeedsValue, OnnxImportError, load
from graphc.onnx.registry import lookup, supported_ops


def _linear_model(opset: int = 17) -> onnx.ModelProto:
    """y = relu(x @ W + b), W and b initializers."""
    W = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2) / 10, "W")
    b = numpy_helper.from_array(np.array([0.5, -4.0], np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("Add", ["xw", "b"], ["z"]),
         helper.make_node("Relu", ["z"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[W, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _expected(x: np.ndarray) -> np.ndarray:
    W = np.arange(6, dtype=np.float32).reshape(3, 2) / 10
    return np.maximum(x @ W + np.array([0.5, -4.0], np.float32), 0)


X = np.array([[1, 2, 3], [-1, 0, 4]], np.float32)


@pytest.mark.parametrize("source", ["proto", "bytes", "path"])
def test_loads_from_proto_bytes_and_path(source, tmp_path):
    model = _linear_model()
    if source == "bytes":
        model = model.SerializeToString()
    elif source == "path":
        onnx.save(model, tmp_path / "m.onnx")
        model = tmp_path / "m.onnx"
    imported = load(model)
    assert list(imported.inputs) == ["x"] and list(imported.outputs) == ["y"]
    assert imported.inputs["x"].shape == ("batch", 3)  # dim_param stays symbolic
    (y,) = imported.compile()(X)
    np.testing.assert_allclose(y, _expected(X), rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_run_by_name(backend):
    y = load(_linear_model()).run({"x": X}, backend=backend)["y"]
    np.testing.assert_allclose(y, _expected(X), rtol=1e-6)


def test_float_initializers_become_params_and_differentiate():
    imported = load(_linear_model())
    assert set(imported.params) == {"W", "b"}
    W = imported.params["W"]
    loss = gx.sum(imported.outputs["y"])
    (gW,) = gx.grad(loss, [W])
    (value,) = gx.compile([imported.inputs["x"]], [gW])(X)
    active = (_expected(X) > 0).astype(np.float32)  # d relu
    np.testing.assert_allclose(value, X.T @ active, rtol=1e-6)


def test_constants_mode_freezes_initializers():
    imported = load(_linear_model(), initializers="constants")
    assert imported.params == {}
    with pytest.raises(ValueError, match="initializers"):
        load(_linear_model(), initializers="weights")


def test_unsupported_op_names_op_node_and_opset():
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError, match=r"NoSuchOp \(node 'mystery', opset 17\)"):
        load(model)


@pytest.mark.parametrize("payload", [b"", b"\x00\x01garbage\xff" * 10, b"not a model"])
def test_malformed_bytes_raise_a_clear_error(payload):
    with pytest.raises(OnnxImportError, match="malformed|no outputs"):
        load(payload)


def test_missing_file_raises():
    with pytest.raises(OnnxImportError, match="cannot read"):
        load("/nonexistent/model.onnx")


def test_unsupported_input_dtype_is_named():
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [2])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [2])])
    with pytest.raises(OnnxImportError, match="BFLOAT16"):
        load(helper.make_model(graph))


def _reshape_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", "cols"])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def test_a_shape_from_an_input_asks_for_its_value():
    with pytest.raises(NeedsValue, match="values=") as info:
        load(_reshape_model())
    assert info.value.names == ("shape",)
    imported = load(_reshape_model(), values={"shape": np.array([3, 2])})
    assert list(imported.inputs) == ["x"]
    (y,) = imported.compile()(X[:, :3].reshape(2, 3))
    np.testing.assert_array_equal(y, X.reshape(3, 2))


def test_shapes_override_symbolic_dims():
    imported = load(_linear_model(), shapes={"x": (2, 3)})
    assert imported.inputs["x"].shape == (2, 3)


def test_handler_is_chosen_by_opset():
    assert lookup("", "Add", 7) is lookup("ai.onnx", "Add", 7)
    assert lookup("", "NoSuchOp", 17) is None
    assert "Add" in supported_ops()


def test_the_onnx_backend_runs_models():
    from graphc.onnx.backend import backend

    rep = backend("numpy").prepare(_reshape_model())
    (y,) = rep.run([X.reshape(2, 3), np.array([3, 2])])
    np.testing.assert_array_equal(y, X.reshape(3, 2))
    (y,) = rep.run([X.reshape(2, 3), np.array([1, 6])])  # a new shape: a new import
    assert y.shape == (1, 6)
    assert backend("llvm").supports_device("CPU") and not backend().supports_device("CUDA")
    with pytest.raises(ValueError, match="numpy"):
        backend("tpu")


def test_an_imported_model_draws_with_values_and_gradients():
    imported = load(_linear_model())
    loss = gx.sum(imported.outputs["y"])
    drawing = gx.viz.draw(loss, values={"x": X}, backward=True)
    source = drawing.source
    assert "W" in source and "b" in source  # initializers drawn as params
    assert "relu" in source
