"""ONNX ai.onnx.preview.training ops (Adagrad, Adam, Momentum, Gradient) against NumPy."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphc.onnx import OnnxImportError, load

DOMAIN = "ai.onnx.preview.training"
F = TensorProto.FLOAT
RNG = np.random.default_rng(2)


def _model(op: str, groups: list[str], n: int, outs: list[str], **attrs) -> onnx.ModelProto:
    """R, T, then ``groups`` (e.g. X, G, V) of n tensors of shape (3,)."""
    names = [f"{g}{i}" for g in groups for i in range(n)]
    node = helper.make_node(op, ["R", "T", *names], [f"{o}{i}_new" for o in outs
                                                     for i in range(n)], domain=DOMAIN, **attrs)
    vis = ([helper.make_tensor_value_info("R", F, []),
            helper.make_tensor_value_info("T", TensorProto.INT64, [])]
           + [helper.make_tensor_value_info(nm, F, [3]) for nm in names])
    out_vis = [helper.make_tensor_value_info(o, F, None) for o in node.output]
    return helper.make_model(helper.make_graph([node], "g", vis, out_vis),
                             opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid(DOMAIN, 1)])


def _arrays(k: int, n: int) -> list[np.ndarray]:
    return [RNG.normal(size=3).astype(np.float32) for _ in range(k * n)]


def _adagrad(r, t, x, g, h, lam, decay, eps):
    g = lam * x + g
    h = h + g * g
    return x - r / (1 + t * decay) * g / (np.sqrt(h) + eps), h


def _momentum(r, t, x, g, v, lam, alpha, beta, mode):
    g = lam * x + g
    v = alpha * v + (beta if t > 0 else 1.0) * g
    return (x - r * v if mode == "standard" else x - r * (g + alpha * v)), v


def _adam(r, t, x, g, v, h, lam, lam_post, alpha, beta, eps):
    g = lam * x + g
    v = alpha * v + (1 - alpha) * g
    h = beta * h + (1 - beta) * g * g
    rate = r * np.sqrt(1 - beta ** t) / (1 - alpha ** t) if t > 0 else r
    return (1 - lam_post) * (x - rate * v / (np.sqrt(h) + eps)), v, h


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("t", [0, 3])
def test_adagrad_two_groups(backend, t):
    n = 2
    x0, x1, g0, g1, h0, h1 = _arrays(3, n)
    h0, h1 = np.abs(h0), np.abs(h1)
    model = load(_model("Adagrad", ["X", "G", "H"], n, ["X", "H"], norm_coefficient=0.01,
                        decay_factor=0.1, epsilon=1e-5))
    out = model.compile(backend)(np.float32(0.1), np.int64(t), x0, x1, g0, g1, h0, h1)
    e0 = _adagrad(0.1, t, x0, g0, h0, 0.01, 0.1, 1e-5)
    e1 = _adagrad(0.1, t, x1, g1, h1, 0.01, 0.1, 1e-5)
    for got, want in zip(out, [e0[0], e1[0], e0[1], e1[1]], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert got.dtype == np.float32


@pytest.mark.parametrize("mode", ["standard", "nesterov"])
@pytest.mark.parametrize("t", [0, 2])
def test_momentum(mode, t):
    x, g, v = _arrays(3, 1)
    model = load(_model("Momentum", ["X", "G", "V"], 1, ["X", "V"], norm_coefficient=0.02,
                        alpha=0.9, beta=0.5, mode=mode))
    out = model.compile()(np.float32(0.05), np.int64(t), x, g, v)
    want = _momentum(0.05, t, x, g, v, 0.02, 0.9, 0.5, mode)
    for got, w in zip(out, want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("t", [0, 5])
def test_adam(backend, t):
    x, g, v, h = _arrays(4, 1)
    h = np.abs(h)
    model = load(_model("Adam", ["X", "G", "V", "H"], 1, ["X", "V", "H"], norm_coefficient=0.01,
                        norm_coefficient_post=0.02, alpha=0.8, beta=0.9, epsilon=1e-4))
    out = model.compile(backend)(np.float32(0.1), np.int64(t), x, g, v, h)
    want = _adam(0.1, t, x, g, v, h, 0.01, 0.02, 0.8, 0.9, 1e-4)
    for got, w in zip(out, want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)


def test_momentum_unknown_mode_raises():
    with pytest.raises(OnnxImportError, match="Momentum.*mode='heavy'"):
        load(_model("Momentum", ["X", "G", "V"], 1, ["X", "V"], norm_coefficient=0.0,
                    alpha=0.9, beta=0.5, mode="heavy"))


def test_gradient_op_differentiates_the_graph():
    """dx = d sum(relu(x + x)) / dx = 2 [x > 0]."""
    nodes = [helper.make_node("Add", ["x", "x"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"]),
             helper.make_node("Gradient", ["x"], ["dx"], domain=DOMAIN, xs=["x"], y="y")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [4])],
                              [helper.make_tensor_value_info("dx", F, None)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(DOMAIN, 1)])
    x = np.array([1.0, -2.0, 0.5, -0.1], np.float32)
    (dx,) = load(proto).compile()(x)
    np.testing.assert_allclose(dx, 2.0 * (x > 0))
