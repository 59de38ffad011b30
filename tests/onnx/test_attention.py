"""The ONNX attention family (Attention, RotaryEmbedding, SwiGLU, CausalConvWithState,
TensorScatter, LinearAttention) imported as graphc graphs, against NumPy references."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphc as gx
import graphc.onnx as gonnx

BACKENDS = ("numpy", "llvm")
F32 = TensorProto.FLOAT


def _model(op: str, inputs: dict[str, np.ndarray], outputs: list[str], opset: int,
           **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, list(inputs), outputs, **attrs)
    graph = helper.make_graph(
        [node], op,
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in inputs.items()],
        [helper.make_empty_tensor_value_info(n) for n in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model: onnx.ModelProto, inputs: dict[str, np.ndarray], backend: str) -> list:
    fn = gonnx.load(model).compile(backend)
    return [np.asarray(r) for r in fn(*inputs.values())]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _attention_ref(q, k, v, bias):
    """softmax(q k^T / sqrt(d) + bias) v in float64, GQA by repeating kv heads."""
    rep = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, rep, 1).astype(np.float64), np.repeat(v, rep, 1).astype(np.float64)
    s = q.astype(np.float64) @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + bias
    rows = np.isneginf(np.broadcast_to(bias, s.shape).max(-1, keepdims=True))
    p = np.where(rows, 0.0, _softmax(np.where(rows, 0.0, s)))
    return p @ v, p


rng = np.random.default_rng(0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_gqa_causal_with_past(backend):
    b, hq, hkv, s, past, d = 2, 4, 2, 3, 2, 8
    q = rng.standard_normal((b, hq, s, d)).astype(np.float32)
    k = rng.standard_normal((b, hkv, s, d)).astype(np.float32)
    v = rng.standard_normal((b, hkv, s, d)).astype(np.float32)
    pk = rng.standard_normal((b, hkv, past, d)).astype(np.float32)
    pv = rng.standard_normal((b, hkv, past, d)).astype(np.float32)
    # built by hand: the optional attn_mask slot is empty
    node = helper.make_node("Attention", ["Q", "K", "V", "", "pk", "pv"],
                            ["Y", "present_k", "present_v", "qk"], is_causal=1,
                            qk_matmul_output_mode=3)
    feeds = {"Q": q, "K": k, "V": v, "pk": pk, "pv": pv}
    graph = helper.make_graph(
        [node], "attn",
        [helper.make_tensor_value_info(n, F32, a.shape) for n, a in feeds.items()],
        [helper.make_empty_tensor_value_info(n) for n in ("Y", "present_k", "present_v",
                                                           "qk")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    y, pk_out, pv_out, probs = _run(model, feeds, backend)
    kk, vv = np.concatenate([pk, k], 2), np.concatenate([pv, v], 2)
    allowed = np.arange(past + s)[None, :] <= np.arange(s)[:, None] + past
    ref, p = _attention_ref(q, kk, vv, np.where(allowed, 0.0, -np.inf))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs, p, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(pk_out, kk)
    np.testing.assert_array_equal(pv_out, vv)


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_3d_bool_mask_fully_masked_row_is_zero(backend):
    b, s, heads, d = 1, 3, 2, 4
    q = rng.standard_normal((b, s, heads * d)).astype(np.float32)
    k = rng.standard_normal((b, s, heads * d)).astype(np.float32)
    v = rng.standard_normal((b, s, heads * d)).astype(np.float32)
    mask = np.array([[False, False, False], [True, False, True], [True, True, True]])
    feeds = {"Q": q, "K": k, "V": v, "mask": mask}
    model = _model("Attention", feeds, ["Y"], 23, q_num_heads=heads, kv_num_heads=heads)
    (y,) = _run(model, feeds, backend)

    def split(x):
        return x.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

    ref, _ = _attention_ref(split(q), split(k), split(v), np.where(mask, 0.0, -np.inf))
    ref = ref.transpose(0, 2, 1, 3).reshape(b, s, heads * d)
    assert np.all(np.isfinite(y)) and np.all(y[:, 0] == 0)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_nonpad_kv_seqlen_is_a_runtime_input(backend):
    b, h, s, kv, d = 2, 1, 1, 4, 4
    q = rng.standard_normal((b, h, s, d)).astype(np.float32)
    k = rng.standard_normal((b, h, kv, d)).astype(np.float32)
    v = rng.standard_normal((b, h, kv, d)).astype(np.float32)
    node = helper.make_node("Attention", ["Q", "K", "V", "", "", "", "n"], ["Y"], is_causal=1)
    graph = helper.make_graph(
        [node], "attn",
        [helper.make_tensor_value_info("Q", F32, q.shape),
         helper.make_tensor_value_info("K", F32, k.shape),
         helper.make_tensor_value_info("V", F32, v.shape),
         helper.make_tensor_value_info("n", TensorProto.INT64, (b,))],
        [helper.make_empty_tensor_value_info("Y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 24)])
    fn = gonnx.load(model).compile(backend)
    for lengths in ([4, 2], [1, 3]):
        n = np.array(lengths, dtype=np.int64)
        (y,) = fn(q, k, v, n)
        bias = np.where(np.arange(kv)[None, :] < n[:, None], 0.0, -np.inf)[:, None, None, :]
        ref, _ = _attention_ref(q, k, v, bias)
        np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-5)


def test_attention_gradient_matches_central_differences():
    """gx.grad through the imported graph (softcap, GQA, a fully-masked row) against
    central differences of the forward pass, in float64."""
    q, k = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((1, 1, 3, 4))
    v = rng.standard_normal((1, 1, 3, 4))
    mask = np.array([[False, False, False], [True, False, True], [True, True, True]])
    feeds = {"Q": q, "K": k, "V": v, "M": mask}
    imported = gonnx.load(_model("Attention", feeds, ["Y"], 23, softcap=2.0))
    r = rng.standard_normal((1, 2, 3, 4))
    loss = gx.sum(gx.mul(imported.outputs["Y"], gx.constant(r)))
    ins = list(imported.inputs.values())
    grads = gx.compile(ins, list(gx.grad(loss, ins[:3])))(q, k, v, mask)
    forward = gx.compile(ins, [loss])
    eps = 1e-6
    args = [q, k, v]
    for a, g in zip(args, grads, strict=True):
        g = np.asarray(g)
        assert np.all(np.isfinite(g))
        num = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            hi = float(np.asarray(forward(*args, mask)[0]))
            a[idx] = old - eps
            lo = float(np.asarray(forward(*args, mask)[0]))
            a[idx] = old
            num[idx] = (hi - lo) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)


def test_attention_unsupported_attribute_raises():
    q = np.zeros((1, 1, 2, 4), np.float32)
    model = _model("Attention", {"Q": q, "K": q, "V": q}, ["Y", "", "", "qk"], 23,
                   qk_matmul_output_mode=7)
    with pytest.raises(gonnx.OnnxImportError, match="Attention"):
        gonnx.load(model)


def _rotary_ref(x, cos, sin, interleaved, rot):
    x1, x2 = ((x[..., 0:rot:2], x[..., 1:rot:2]) if interleaved
              else (x[..., :rot // 2], x[..., rot // 2:rot]))
    c, s = cos[:, None], sin[:, None]  # (B, 1, S, rot/2) against (B, H, S, D)
    real, imag = c * x1 - s * x2, s * x1 + c * x2
    out = x.copy()
    if interleaved:
        out[..., 0:rot:2], out[..., 1:rot:2] = real, imag
    else:
        out[..., :rot // 2], out[..., rot // 2:rot] = real, imag
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interleaved,rot", [(0, 0), (1, 0), (0, 4), (1, 4)])
def test_rotary_embedding_with_position_ids(backend, interleaved, rot):
    b, h, s, d, max_pos = 2, 2, 3, 8, 10
    x = rng.standard_normal((b, h, s, d)).astype(np.float32)
    half = (rot or d) // 2
    angles = rng.standard_normal((max_pos, half))
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    pos = rng.integers(0, max_pos, (b, s)).astype(np.int64)
    feeds = {"X": x, "cos": cos, "sin": sin, "pos": pos}
    model = _model("RotaryEmbedding", feeds, ["Y"], 23, interleaved=interleaved,
                   rotary_embedding_dim=rot)
    (y,) = _run(model, feeds, backend)
    np.testing.assert_allclose(y, _rotary_ref(x, cos[pos], sin[pos], interleaved, rot or d),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_swiglu(backend):
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((3, 5)).astype(np.float32)
    (y,) = _run(_model("SwiGLU", {"A": a, "B": b}, ["Y"], 28, alpha=1.5), {"A": a, "B": b},
                backend)
    np.testing.assert_allclose(y, a / (1 + np.exp(-1.5 * a)) * b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_causal_conv_with_state(backend):
    b, c, length, k = 2, 3, 5, 3
    x = rng.standard_normal((b, c, length)).astype(np.float32)
    w = rng.standard_normal((c, 1, k)).astype(np.float32)
    bias = rng.standard_normal((c,)).astype(np.float32)
    state = rng.standard_normal((b, c, k - 1)).astype(np.float32)
    feeds = {"x": x, "w": w, "bias": bias, "state": state}
    model = _model("CausalConvWithState", feeds, ["y", "new_state"], 27, activation="silu")
    y, new_state = _run(model, feeds, backend)
    padded = np.concatenate([state, x], 2)
    conv = sum(padded[:, :, i:i + length] * w[None, :, 0, i:i + 1] for i in range(k))
    conv = conv + bias[None, :, None]
    np.testing.assert_allclose(y, conv / (1 + np.exp(-conv)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(new_state, padded[:, :, -(k - 1):])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter_runtime_indices(backend, mode):
    cache = rng.standard_normal((2, 3, 6, 4)).astype(np.float32)
    update = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    idx = np.array([1, 5] if mode == "circular" else [1, 3], dtype=np.int64)
    feeds = {"cache": cache, "update": update, "idx": idx}
    (y,) = _run(_model("TensorScatter", feeds, ["y"], 24, mode=mode), feeds, backend)
    ref = cache.copy()
    for bi in range(2):
        for si in range(3):
            ref[bi, :, (idx[bi] + si) % 6] = update[bi, :, si]
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_attention_gated_delta(backend):
    b, t, hq, hkv, dk, dv = 1, 3, 2, 1, 4, 2
    q = rng.standard_normal((b, t, hq * dk)).astype(np.float32)
    k = rng.standard_normal((b, t, hkv * dk)).astype(np.float32) * 0.5
    v = rng.standard_normal((b, t, hkv * dv)).astype(np.float32)
    decay = -np.abs(rng.standard_normal((b, t, hkv))).astype(np.float32)
    beta = rng.random((b, t, hkv)).astype(np.float32)
    feeds = {"q": q, "k": k, "v": v, "decay": decay, "beta": beta}
    node = helper.make_node("LinearAttention", ["q", "k", "v", "", "decay", "beta"],
                            ["out", "state"], q_num_heads=hq, kv_num_heads=hkv)
    graph = helper.make_graph(
        [node], "la", [helper.make_tensor_value_info(n, F32, a.shape) for n, a in feeds.items()],
        [helper.make_empty_tensor_value_info("out"), helper.make_empty_tensor_value_info("state")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 27)])
    out, state = _run(model, feeds, backend)
    # the recurrence, written directly (one kv head shared by both query heads)
    s = np.zeros((dk, dv))
    ref = np.zeros((t, hq * dv))
    for i in range(t):
        s = s * np.exp(decay[0, i, 0])
        kt, vt = k[0, i].astype(np.float64), v[0, i].astype(np.float64)
        vt = beta[0, i, 0] * (vt - s.T @ kt)
        s = s + np.outer(kt, vt)
        for h in range(hq):
            ref[i, h * dv:(h + 1) * dv] = q[0, i, h * dk:(h + 1) * dk] @ s / np.sqrt(dk)
    np.testing.assert_allclose(out[0], ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state[0, 0], s, rtol=1e-4, atol=1e-5)
