"""ONNX NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss import against NumPy."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphc as gx
from graphc.onnx import OnnxImportError, load

RNG = np.random.default_rng(1)
N, C, D = 3, 4, 2


def _model(op: str, weighted: bool, n_out: int = 1, **attrs) -> onnx.ModelProto:
    inputs = ["x", "t"] + (["w"] if weighted else [])
    outputs = ["loss", "log_prob"][:n_out]
    node = helper.make_node(op, inputs, outputs, **attrs)
    vis = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N, C, D]),
           helper.make_tensor_value_info("t", TensorProto.INT64, [N, D])]
    if weighted:
        vis.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [C]))
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    return helper.make_model(helper.make_graph([node], "g", vis, outs),
                             opset_imports=[helper.make_opsetid("", 13)])


def _reference(logp, t, w, reduction, ii):
    """Elementwise loss -w[t] * logp[n, t, d], weights 0 where t == ignore_index."""
    valid = np.ones(t.shape, bool) if ii is None else t != ii
    safe = np.where(valid, t, 0)
    picked = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    wt = (w[safe] if w is not None else np.ones(t.shape, np.float32)) * valid
    loss = -picked * wt
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / wt.sum()


def _log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


CASES = [(reduction, weighted, ii) for reduction in ("none", "sum", "mean")
         for weighted in (False, True) for ii in (None, 2, -1)]


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("reduction,weighted,ii", CASES[::3] + [("mean", True, 2)])
def test_nll_loss(backend, reduction, weighted, ii):
    x = RNG.normal(size=(N, C, D)).astype(np.float32)
    t = RNG.integers(0, C, size=(N, D)).astype(np.int64)
    if ii is not None:
        t[0, 0] = ii
    w = RNG.uniform(0.5, 2, size=C).astype(np.float32)
    attrs = {"reduction": reduction} | ({"ignore_index": ii} if ii is not None else {})
    feeds = {"x": x, "t": t} | ({"w": w} if weighted else {})
    got = load(_model("NegativeLogLikelihoodLoss", weighted, **attrs)).run(feeds, backend)
    expected = _reference(x, t, w if weighted else None, reduction, ii)
    np.testing.assert_allclose(got["loss"], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction,weighted,ii", CASES)
def test_softmax_cross_entropy_with_log_prob(reduction, weighted, ii):
    x = RNG.normal(size=(N, C, D)).astype(np.float32)
    t = RNG.integers(0, C, size=(N, D)).astype(np.int64)
    if ii is not None:
        t[1, 1] = ii
    w = RNG.uniform(0.5, 2, size=C).astype(np.float32)
    attrs = {"reduction": reduction} | ({"ignore_index": ii} if ii is not None else {})
    feeds = {"x": x, "t": t} | ({"w": w} if weighted else {})
    got = load(_model("SoftmaxCrossEntropyLoss", weighted, 2, **attrs)).run(feeds)
    logp = _log_softmax(x.astype(np.float64))
    expected = _reference(logp, t, w if weighted else None, reduction, ii)
    np.testing.assert_allclose(got["loss"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["log_prob"], logp, rtol=1e-5, atol=1e-6)
    assert got["loss"].dtype == np.float32


def test_gradient_of_weighted_mean_cross_entropy():
    """d loss / d x = w_t/sum(w) * (softmax(x) - onehot(t)) on the class axis."""
    x = RNG.normal(size=(N, C, D)).astype(np.float32)
    t = RNG.integers(0, C, size=(N, D)).astype(np.int64)
    w = RNG.uniform(0.5, 2, size=C).astype(np.float32)
    model = load(_model("SoftmaxCrossEntropyLoss", True, reduction="mean"))
    xs = model.inputs["x"]
    (g,) = gx.compile(list(model.inputs.values()), [gx.grad(model.outputs["loss"], xs)])(x, t, w)
    p = np.exp(_log_softmax(x.astype(np.float64)))
    onehot = np.moveaxis(np.eye(C)[t], -1, 1)
    wt = w[t]
    expected = (p - onehot) * wt[:, None] / wt.sum()
    np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-6)


def test_unsupported_reduction_raises():
    with pytest.raises(OnnxImportError, match="NegativeLogLikelihoodLoss.*reduction"):
        load(_model("NegativeLogLikelihoodLoss", False, reduction="max"))
