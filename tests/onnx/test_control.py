"""ONNX If / Loop / Scan import: branches inlined or selected, loops unrolled."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphc as gx
from graphc.onnx import OnnxImportError, load

F = TensorProto.FLOAT


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def _model(nodes, inputs, outputs, initializer=(), opset=13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializer))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _if_model(then_shape=(3,), cond_const: bool | None = None) -> onnx.ModelProto:
    """res = If(c): then relu(x + y) (outer-scope x, y), else x + x."""
    then_g = helper.make_graph([helper.make_node("Add", ["x", "y"], ["s"]),
                                helper.make_node("Relu", ["s"], ["t_out"])],
                               "then", [], [_vi("t_out", list(then_shape))])
    else_g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["e_out"])],
                               "else", [], [_vi("e_out", [3])])
    node = helper.make_node("If", ["c"], ["res"], then_branch=then_g, else_branch=else_g)
    inputs = [_vi("x", [3]), _vi("y", list(then_shape))]
    init = []
    if cond_const is None:
        inputs.append(_vi("c", [], TensorProto.BOOL))
    else:
        init.append(numpy_helper.from_array(np.array(cond_const), "c"))
    return _model([node], inputs, [_vi("res", None)], init)


X = np.array([1.0, -2.0, 3.0], np.float32)
Y = np.array([-4.0, 1.0, 0.5], np.float32)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("cond", [True, False])
def test_if_with_runtime_condition_selects(backend, cond):
    fn = load(_if_model()).compile(backend)
    (res,) = fn(X, Y, np.array(cond))
    np.testing.assert_allclose(res, np.maximum(X + Y, 0) if cond else X + X)


@pytest.mark.parametrize("cond", [True, False])
def test_if_with_known_condition_imports_one_branch(cond):
    model = load(_if_model(then_shape=(1,), cond_const=cond), initializers="constants")
    y = np.array([5.0], np.float32)
    (res,) = model.compile()(X, y)
    np.testing.assert_allclose(res, np.maximum(X + y, 0) if cond else X + X)
    # only the chosen branch is in the graph
    ops = {n.op.name for n in gx.toposort(list(model.outputs.values()))}
    assert ("relu" in ops) == cond


def test_if_runtime_condition_with_different_branch_shapes_raises():
    with pytest.raises(OnnxImportError, match="If.*bind cond"):
        load(_if_model(then_shape=(2, 3)))


def _loop_model(cond_from_outer: bool = False, scan: bool = True) -> onnx.ModelProto:
    """acc' = acc + w (w from the outer scope), scan output relu(acc'); inputs M, cond."""
    outputs = [_vi("flag" if cond_from_outer else "cond_in", [], TensorProto.BOOL),
               _vi("acc_out", [2])] + ([_vi("scan_out", [2])] if scan else [])
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "w"], ["acc_out"]),
         helper.make_node("Relu", ["acc_out"], ["scan_out"])],
        "body",
        [_vi("i", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL), _vi("acc", [2])],
        # the condition passes through, or comes from an outer run-time input
        outputs)
    node = helper.make_node("Loop", ["M", "cond", "acc0"],
                            ["acc_final"] + (["scans"] if scan else []), body=body)
    return _model([node], [_vi("M", [], TensorProto.INT64), _vi("cond", [], TensorProto.BOOL),
                           _vi("acc0", [2]), _vi("w", [2]), _vi("flag", [], TensorProto.BOOL)],
                  [_vi("acc_final", None)] + ([_vi("scans", None)] if scan else []))


KNOWN = {"M": np.array(4), "cond": np.array(True)}


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_loop_unrolled_over_known_trip_count(backend):
    acc0 = np.array([1.0, -3.0], np.float32)
    w = np.array([0.5, 1.0], np.float32)
    model = load(_loop_model(), values=KNOWN)
    acc, scans = model.compile(backend)(acc0, w, np.array(True))
    expected = np.stack([acc0 + w * (k + 1) for k in range(4)])
    np.testing.assert_allclose(acc, expected[-1])
    np.testing.assert_allclose(scans, np.maximum(expected, 0))


def test_loop_trip_count_from_an_input_must_be_bound():
    with pytest.raises(OnnxImportError, match="Loop.*'M'"):
        load(_loop_model())


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("cond,flag", [(True, True), (True, False), (False, True)])
def test_loop_with_runtime_condition_is_masked(backend, cond, flag):
    """Known trip count, no scan outputs: the run-time condition freezes the state."""
    model = load(_loop_model(cond_from_outer=True, scan=False), values={"M": np.array(4)})
    acc0 = np.array([1.0, -3.0], np.float32)
    w = np.array([0.5, 1.0], np.float32)
    (acc,) = model.compile(backend)(np.array(cond), acc0, w, np.array(flag))
    steps = 0 if not cond else (4 if flag else 1)
    np.testing.assert_allclose(acc, acc0 + steps * w)


def test_loop_with_runtime_condition_and_scan_outputs_raises():
    with pytest.raises(OnnxImportError, match="Loop.*condition computed at run time"):
        load(_loop_model(cond_from_outer=True), values=KNOWN)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_scan_axes_and_directions(backend):
    """Running sums over axis 1 of x, read backwards, written along output axis 1."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
         helper.make_node("Relu", ["s_out"], ["y_t"])],
        "body", [_vi("s_in", [2]), _vi("x_t", [2])], [_vi("s_out", [2]), _vi("y_t", [2])])
    node = helper.make_node("Scan", ["s0", "x"], ["s_final", "ys"], body=body,
                            num_scan_inputs=1, scan_input_axes=[1],
                            scan_input_directions=[1], scan_output_axes=[1])
    proto = _model([node], [_vi("s0", [2]), _vi("x", [2, 3])],
                   [_vi("s_final", None), _vi("ys", None)], opset=11)
    s0 = np.array([0.5, -1.0], np.float32)
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    s, ys = load(proto).compile(backend)(s0, x)
    sums = s0[:, None] + np.cumsum(x[:, ::-1], axis=1)  # step t reads column 2 - t
    np.testing.assert_allclose(s, sums[:, -1])
    np.testing.assert_allclose(ys, np.maximum(sums, 0))


def test_if_branches_differentiate():
    """Gradient through a run-time If: where() routes the cotangent to the taken branch."""
    model = load(_if_model())
    x, y, c = model.inputs.values()
    (res,) = model.outputs.values()
    gx_, gy = gx.grad(gx.sum(res), [x, y])
    fn = gx.compile([x, y, c], [gx_, gy])
    dx, dy = fn(X, Y, np.array(True))
    np.testing.assert_allclose(dx, (X + Y > 0).astype(np.float32))
    np.testing.assert_allclose(dy, (X + Y > 0).astype(np.float32))
    dx, dy = fn(X, Y, np.array(False))
    np.testing.assert_allclose(dx, np.full(3, 2.0))
    np.testing.assert_allclose(dy, np.zeros(3))
