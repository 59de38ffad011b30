"""ONNX RNN / GRU / LSTM import: unrolled recurrences against NumPy and onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import graphc as gx
from graphc.onnx import OnnxImportError, load

RNG = np.random.default_rng(0)
SEQ, BATCH, IN, H = 4, 3, 2, 3
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _model(op: str, inputs: dict[str, np.ndarray | None], outputs: list[str],
           **attrs) -> onnx.ModelProto:
    """One recurrent node; ``inputs`` in ONNX order (None = omitted), all graph inputs."""
    names = [n if v is not None else "" for n, v in inputs.items()]
    while names and not names[-1]:
        names.pop()
    node = helper.make_node(op, names, outputs, hidden_size=H, **attrs)
    dt = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("int32"): TensorProto.INT32}
    vis = [helper.make_tensor_value_info(n, dt[v.dtype], v.shape)
           for n, v in inputs.items() if v is not None]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs if n]
    graph = helper.make_graph([node], "g", vis, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def _weights(op: str, dirs: int) -> dict[str, np.ndarray]:
    g = GATES[op]
    return {"W": RNG.normal(size=(dirs, g * H, IN)).astype(np.float32) * 0.5,
            "R": RNG.normal(size=(dirs, g * H, H)).astype(np.float32) * 0.5,
            "B": RNG.normal(size=(dirs, 2 * g * H)).astype(np.float32) * 0.1}


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _numpy_lstm(X, W, R, B, h, c):
    """Forward one-direction LSTM (gate order i, o, f, c)."""
    ys = []
    for x in X:
        z = x @ W.T + h @ R.T + B[:4 * H] + B[4 * H:]
        i, o, f, cc = np.split(z, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cc)
        h = _sigmoid(o) * np.tanh(c)
        ys.append(h)
    return np.stack(ys), h, c


def _numpy_gru(X, W, R, B, h, lbr):
    ys = []
    wz, wr, wh = np.split(W, 3)
    rz, rr, rh = np.split(R, 3)
    bwz, bwr, bwh, brz, brr, brh = np.split(B, 6)
    for x in X:
        z = _sigmoid(x @ wz.T + h @ rz.T + bwz + brz)
        r = _sigmoid(x @ wr.T + h @ rr.T + bwr + brr)
        if lbr:
            hh = np.tanh(x @ wh.T + r * (h @ rh.T + brh) + bwh)
        else:
            hh = np.tanh(x @ wh.T + (r * h) @ rh.T + brh + bwh)
        h = (1 - z) * hh + z * h
        ys.append(h)
    return np.stack(ys), h


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_lstm_forward_matches_numpy(backend):
    seq = SEQ if backend == "numpy" else 2  # the llvm compile grows with the unrolled length
    X = RNG.normal(size=(seq, BATCH, IN)).astype(np.float32)
    w = _weights("LSTM", 1)
    h0 = RNG.normal(size=(1, BATCH, H)).astype(np.float32)
    c0 = RNG.normal(size=(1, BATCH, H)).astype(np.float32)
    feeds = {"X": X, **w, "sequence_lens": None, "initial_h": h0, "initial_c": c0}
    model = load(_model("LSTM", feeds, ["Y", "Y_h", "Y_c"]))
    Y, Yh, Yc = model.compile(backend)(X, w["W"], w["R"], w["B"], h0, c0)
    eY, eh, ec = _numpy_lstm(X, w["W"][0], w["R"][0], w["B"][0], h0[0], c0[0])
    np.testing.assert_allclose(Y[:, 0], eY, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Yh[0], eh, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Yc[0], ec, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_linear_before_reset_matches_numpy(lbr):
    X = RNG.normal(size=(SEQ, BATCH, IN)).astype(np.float32)
    w = _weights("GRU", 1)
    model = load(_model("GRU", {"X": X, **w}, ["Y", "Y_h"], linear_before_reset=lbr))
    Y, Yh = model.compile("numpy")(X, w["W"], w["R"], w["B"])
    eY, eh = _numpy_gru(X, w["W"][0], w["R"][0], w["B"][0], np.zeros((BATCH, H), np.float32),
                        lbr)
    np.testing.assert_allclose(Y[:, 0], eY, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Yh[0], eh, rtol=1e-5, atol=1e-6)


# features the ONNX conformance cases do not cover (sequence_lens with reverse passes,
# clip, input_forget, peepholes with initial states, activation alpha/beta), checked
# against onnxruntime (which has no layout=1: the conformance cases cover that)
CASES = [
    ("RNN", dict(direction="bidirectional"), True),
    ("GRU", dict(direction="reverse", linear_before_reset=1), True),
    ("LSTM", dict(direction="bidirectional"), True),
    ("LSTM", dict(direction="forward", clip=0.7, input_forget=1), False),
    ("RNN", dict(activations=["LeakyRelu", "ScaledTanh"], activation_alpha=[0.3, 0.8],
                 activation_beta=[1.5], direction="bidirectional"), False),
    ("GRU", dict(activations=["HardSigmoid", "Affine"], activation_alpha=[0.3, 0.5],
                 activation_beta=[0.4, 0.1]), False),
]


@pytest.mark.parametrize("op,attrs,with_lens", CASES)
def test_against_onnxruntime(op, attrs, with_lens):
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    X = RNG.normal(size=(SEQ, BATCH, IN)).astype(np.float32)
    w = _weights(op, dirs)
    hshape = (dirs, BATCH, H)
    feeds: dict[str, np.ndarray | None] = {"X": X, **w}
    feeds["sequence_lens"] = np.array([4, 2, 0], np.int32) if with_lens else None
    feeds["initial_h"] = RNG.normal(size=hshape).astype(np.float32)
    outputs = ["Y", "Y_h"]
    if op == "LSTM":
        feeds["initial_c"] = RNG.normal(size=hshape).astype(np.float32)
        feeds["P"] = RNG.normal(size=(dirs, 3 * H)).astype(np.float32)
        outputs.append("Y_c")
    proto = _model(op, feeds, outputs, **attrs)
    given = {k: v for k, v in feeds.items() if v is not None}
    expected = ort.InferenceSession(proto.SerializeToString()).run(None, given)
    # sequence_lens shapes the unrolled graph: bound at import
    bound = {"sequence_lens": given.pop("sequence_lens")} if with_lens else {}
    expected = dict(zip(outputs, expected, strict=True))
    got = load(proto, values=bound).run(given)
    for name in outputs:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_gradient_through_unrolled_gru():
    """d sum(Y^2) / dX by graphc autodiff against central differences."""
    X = RNG.normal(size=(SEQ, BATCH, IN)).astype(np.float32)
    w = _weights("GRU", 1)
    model = load(_model("GRU", {"X": X, **w}, ["Y"]))
    x = model.inputs["X"]
    loss = gx.sum(gx.square(model.outputs["Y"]))
    (g,) = gx.compile([*model.inputs.values()], [gx.grad(loss, x)], backend="numpy")(
        X, w["W"], w["R"], w["B"])
    # central differences on one input element
    fn = model.compile("numpy")
    eps = 1e-2
    for idx in [(0, 0, 0), (3, 2, 1)]:
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += eps
        Xm[idx] -= eps
        num = (np.sum(fn(Xp, w["W"], w["R"], w["B"])[0].astype(np.float64) ** 2)
               - np.sum(fn(Xm, w["W"], w["R"], w["B"])[0].astype(np.float64) ** 2)) / (2 * eps)
        np.testing.assert_allclose(g[idx], num, rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("attrs,message", [
    (dict(activations=["Gelu"]), "activation 'Gelu'"),
    (dict(direction="sideways"), "direction"),
])
def test_unsupported_attributes_raise(attrs, message):
    X = np.zeros((SEQ, BATCH, IN), np.float32)
    w = _weights("RNN", 1)
    with pytest.raises(OnnxImportError, match=f"RNN.*{message}"):
        load(_model("RNN", {"X": X, **w}, ["Y"], **attrs))
