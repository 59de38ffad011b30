"""ONNX shape, construction and indexing ops: handwritten models against NumPy."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import graphc as gx
from graphc.onnx import OnnxImportError, dtypes, load

BACKENDS = ["numpy", "llvm"]


def model(op: str, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray] | None = None,
          n_outputs: int = 1, opset: int = 18, **attrs) -> onnx.ModelProto:
    """One ``op`` node: graph inputs ``inputs`` (their arrays give shapes and types),
    initializers ``consts`` (an empty name skips an optional input)."""
    consts = consts or {}
    names = list(inputs) + list(consts)
    outs = [f"y{k}" for k in range(n_outputs)]
    node = helper.make_node(op, names, outs, **attrs)
    graph = helper.make_graph(
        [node], op,
        [helper.make_tensor_value_info(n, dtypes.to_onnx(a.dtype), a.shape)
         for n, a in inputs.items()],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs],
        initializer=[numpy_helper.from_array(a, n) for n, a in consts.items() if n])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run(backend: str, proto: onnx.ModelProto, *args: np.ndarray) -> tuple:
    return load(proto, initializers="constants").compile(backend)(*args)


X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def scaled_rows(x: np.ndarray, rows: list[tuple[int, int]], factor: float) -> np.ndarray:
    out = x.copy()
    for r in rows:
        out[r] *= factor
    return out


# op, inputs, initializers, attributes, expected outputs
CASES = [
    ("Reshape", {"x": X}, {"s": np.array([0, -1], np.int64)}, {}, [X.reshape(2, 12)]),
    ("Flatten", {"x": X}, {}, {"axis": -1}, [X.reshape(6, 4)]),
    ("Unsqueeze", {"x": X}, {"a": np.array([-1, 0], np.int64)}, {}, [X[None, ..., None]]),
    ("Slice", {"x": X}, {"s": np.array([-1, 10], np.int64), "e": np.array([-100, 0], np.int64),
                         "a": np.array([2, 1], np.int64), "k": np.array([-2, -1], np.int64)},
     {}, [X[:, :0:-1, ::-2]]),
    ("Pad", {"x": X}, {"p": np.array([0, -1, 2, 0, 0, 1], np.int64),
                       "v": np.array(7, np.float32)}, {},
     [np.pad(X[:, 1:], ((0, 0), (0, 0), (2, 1)), constant_values=7)]),
    ("Pad", {"x": X}, {"p": np.array([1, 2], np.int64), "": None,
                       "a": np.array([1], np.int64)}, {"mode": "reflect"},
     [np.pad(X, ((0, 0), (1, 2), (0, 0)), mode="reflect")]),
    ("Split", {"x": X}, {}, {"axis": 2, "num_outputs": 3}, [X[..., :2], X[..., 2:], X[..., 4:]]),
    ("Tile", {"x": X}, {"r": np.array([1, 2, 3], np.int64)}, {}, [np.tile(X, (1, 2, 3))]),
    ("Expand", {"x": X[:, :1]}, {"s": np.array([3, 1, 5, 1], np.int64)}, {},
     [np.broadcast_to(X[:, :1], (3, 2, 5, 4))]),
    ("Gather", {"x": X}, {"i": np.array([[-1, 0]], np.int64)}, {"axis": 1},
     [np.take(X, [[-1, 0]], axis=1)]),
    ("GatherND", {"x": X}, {"i": np.array([[[1, -1]], [[0, 2]]], np.int64)},
     {"batch_dims": 1}, [np.array([[X[0, 1, 3]], [X[1, 0, 2]]])]),
    ("ScatterND", {"x": X}, {"i": np.array([[1, 0], [0, -1]], np.int64),
                             "u": np.full((2, 4), 2, np.float32)}, {"reduction": "mul"},
     [scaled_rows(X, [(1, 0), (0, 2)], 2)]),
    ("OneHot", {"i": np.array([0, -1, 5], np.int64)},
     {"d": np.array(3, np.int64), "v": np.array([2, 9], np.float32)}, {"axis": 0},
     [np.array([[9, 2, 2], [2, 2, 2], [2, 9, 2]], np.float32)]),
    ("Trilu", {"x": X}, {"k": np.array(1, np.int64)}, {"upper": 0}, [np.tril(X, 1)]),
    ("DepthToSpace", {"x": np.arange(16, dtype=np.float32).reshape(1, 4, 2, 2)}, {},
     {"blocksize": 2, "mode": "CRD"},
     [np.arange(16, dtype=np.float32).reshape(1, 1, 2, 2, 2, 2).transpose(0, 1, 4, 2, 5, 3)
      .reshape(1, 1, 4, 4)]),
    ("ReverseSequence", {"x": X[0].T.copy()}, {"l": np.array([4, 2, 1], np.int64)},
     {"batch_axis": 1, "time_axis": 0},
     [np.stack([X[0, 0, ::-1], np.r_[X[0, 1, 1::-1], X[0, 1, 2:]], X[0, 2]], axis=1)]),
    ("CenterCropPad", {"x": X}, {"s": np.array([5, 1], np.int64)}, {"axes": [1, 2]},
     [np.pad(X[:, :, 1:2], ((0, 0), (1, 1), (0, 0)))]),
    ("Compress", {"x": X}, {"c": np.array([False, True, True])}, {"axis": 1}, [X[:, 1:]]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op, inputs, consts, attrs, expected", CASES,
                         ids=[f"{c[0]}{k}" for k, c in enumerate(CASES)])
def test_op_matches_numpy(backend, op, inputs, consts, attrs, expected):
    proto = model(op, inputs, consts, n_outputs=len(expected), **attrs)
    got = run(backend, proto, *inputs.values())
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements(backend, reduction):
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    indices = np.array([[2, -1], [0, 1]], np.int64)
    updates = np.array([[10, -2], [3, 4]], np.float32)
    proto = model("ScatterElements", {"d": data, "u": updates}, {"i": indices}, axis=1,
                  reduction=reduction)
    proto.graph.node[0].input[:] = ["d", "i", "u"]
    expected = data.copy()
    combine = {"none": lambda a, b: b, "add": np.add, "mul": np.multiply,
               "max": np.maximum, "min": np.minimum}[reduction]
    for r in range(2):
        for c in range(2):
            k = indices[r, c] % 4
            expected[r, k] = combine(expected[r, k], updates[r, c])
    np.testing.assert_array_equal(run(backend, proto, data, updates)[0], expected)


def test_shape_of_symbolic_input_is_computed_at_run_time():
    proto = model("Shape", {"x": X}, start=1)
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    got = run("numpy", proto, np.zeros((5, 3, 4), np.float32))[0]
    np.testing.assert_array_equal(got, [3, 4])


def test_constants_fold_through_shape_ops():
    """Shape -> Gather -> ConstantOfShape is computed at import: the graph has no ops."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i"], ["g"], axis=0),
             helper.make_node("ConstantOfShape", ["g"], ["y"],
                              value=numpy_helper.from_array(np.array([3], np.int32)))]
    graph = helper.make_graph(
        nodes, "fold", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, X.shape)],
        [helper.make_tensor_value_info("y", onnx.TensorProto.INT32, None)],
        initializer=[numpy_helper.from_array(np.array([2, 0], np.int64), "i")])
    m = load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    np.testing.assert_array_equal(m.outputs["y"].op.name, "constant")
    np.testing.assert_array_equal(m.run({"x": X})["y"], np.full((4, 2), 3, np.int32))


@pytest.mark.parametrize("op, attrs, consts, match", [
    ("Pad", {"mode": "mirror"}, {"p": np.zeros(6, np.int64)}, "Pad.*mode='mirror'"),
    ("Dropout", {}, {"r": np.array(0.5, np.float32), "t": np.array(True)}, "Dropout.*training"),
    ("DepthToSpace", {"blocksize": 1, "mode": "XYZ"}, {}, "DepthToSpace.*mode"),
])
def test_unsupported_attributes_raise(op, attrs, consts, match):
    x = np.zeros((1, 2, 3, 4), np.float32)
    with pytest.raises(OnnxImportError, match=match):
        load(model(op, {"x": x}, consts, **attrs))


def test_constant_string_is_unsupported():
    node = helper.make_node("Constant", [], ["y"], value_string="hi")
    graph = helper.make_graph([node], "c", [], [helper.make_tensor_value_info(
        "y", onnx.TensorProto.STRING, None)])
    with pytest.raises(OnnxImportError, match="Constant.*value_string"):
        load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_through_gather_nd_and_slice(backend):
    """d/dx sum(GatherND(Slice(x))**2) lands on the gathered elements only."""
    nodes = [helper.make_node("Slice", ["x", "s", "e", "a"], ["t"]),
             helper.make_node("GatherND", ["t", "i"], ["y"])]
    inits = {"s": np.array([1], np.int64), "e": np.array([3], np.int64),
             "a": np.array([1], np.int64), "i": np.array([[0, 1, 2], [1, -1, 0]], np.int64)}
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, X.shape)],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    x, y = m.inputs["x"], m.outputs["y"]
    (g,) = gx.grad(gx.sum(y * y), [x])
    got = gx.compile([x], [g], backend=backend)(X)[0]
    expected = np.zeros_like(X)
    expected[0, 2, 2] = 2 * X[0, 2, 2]
    expected[1, 2, 0] = 2 * X[1, 2, 0]
    np.testing.assert_array_equal(got, expected)
