"""ONNX attention ops as graphc graph: Attention, RotaryEmbedding, SwiGLU, LinearAttention,
CausalConvWithState, TensorScatter and ai.onnx.preview FlexAttention.

Everything is composed from graphc ops (matmul, softmax, where, reshape, ...), so the
results are differentiable and run on every graphc backend. Masks that depend only on
shapes and attributes (causal, sliding window) are NumPy constants built at import;
those that depend on runtime values (``nonpad_kv_seqlen``, a mask input) are graph.
The numerics follow the ONNX reference (onnx/reference/ops/op_attention.py etc.):
Q and K are each scaled by sqrt(scale) in the input dtype, softcap comes before the
mask, and a query row whose additive bias is all -inf gives zeros, not NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

import graphc as gx
from graphc.onnx.handlers.control import run_subgraph
from graphc.onnx.registry import handler
from graphc.tensor import Tensor

Value = Tensor | np.ndarray

_NEG_INF = -np.inf


# -- helpers ---------------------------------------------------------------------------------
def _const(value: Any, dtype: Any) -> Tensor:
    return gx.constant(np.asarray(value, dtype=dtype))


def _np_dtype(node, onnx_type: int) -> np.dtype:
    """The NumPy dtype of an ONNX element type attribute (softmax_precision)."""
    try:
        dt = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(onnx_type))
    except (KeyError, TypeError, ValueError):
        raise node.unsupported(f"element type {onnx_type}") from None
    if dt.kind != "f" or dt.name not in ("float16", "float32", "float64"):
        raise node.unsupported(f"softmax_precision {onnx.TensorProto.DataType.Name(onnx_type)}")
    return dt


def _static_shape(node, i: int) -> tuple[int, ...]:
    shape = node.shape(i)
    if not all(isinstance(d, int | np.integer) for d in shape):
        raise node.unsupported(f"symbolic shape {shape} of input {i}")
    return tuple(int(d) for d in shape)


def _add(a: Value | None, b: Value | None) -> Value | None:
    """``a + b`` for optional parts, in NumPy when both are known at import."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a + b
    return gx.add(a, b)


def _heads_first(x: Tensor, num_heads: int) -> Tensor:
    """(B, S, H*D) -> (B, H, S, D)."""
    b, s, hd = (int(d) for d in x.shape)
    if hd % num_heads:
        raise ValueError(f"hidden size {hd} is not divisible by {num_heads} heads")
    return gx.transpose(gx.reshape(x, (b, s, num_heads, hd // num_heads)), (0, 2, 1, 3))


def _heads_last(x: Tensor) -> Tensor:
    """(B, H, S, D) -> (B, S, H*D)."""
    b, h, s, d = (int(v) for v in x.shape)
    return gx.reshape(gx.transpose(x, (0, 2, 1, 3)), (b, s, h * d))


def _grouped_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` where ``a`` has Hq heads and ``b`` has Hkv heads, Hq a multiple of Hkv:
    query head h uses kv head h // (Hq/Hkv) (ONNX's interleave-repeat of K/V), done by
    grouping the query heads instead of copying K/V."""
    bsz, hq, m, _ = (int(v) for v in a.shape)
    hkv = int(b.shape[1])
    if hq == hkv:
        return gx.matmul(a, b)
    if hkv <= 0 or hq % hkv:
        raise ValueError(f"{hq} query heads are not a multiple of {hkv} key/value heads")
    r = hq // hkv
    ag = gx.reshape(a, (bsz, hkv, r, m, int(a.shape[3])))
    bg = gx.reshape(b, (int(b.shape[0]), hkv, 1, int(b.shape[2]), int(b.shape[3])))
    out = gx.matmul(ag, bg)
    return gx.reshape(out, (bsz, hq, m, int(b.shape[3])))


def _softmax(x: Tensor) -> Tensor:
    """Softmax over the last axis. float16 is spelled out as exp(x - max) / sum, each op
    rounding to float16 and the sum accumulating in float32 (a matmul with ones), as
    NumPy and so the ONNX reference compute it; a fused float16 softmax rounds once and
    differs from it by an ulp."""
    if str(x.dtype) != "float16":
        return gx.softmax(x, axis=-1)
    e = gx.exp(gx.sub(x, gx.max(x, axis=-1, keepdims=True)))
    total = gx.matmul(e, _const(np.ones((int(x.shape[-1]), 1)), "float16"))
    return gx.div(e, total)


# -- Attention -------------------------------------------------------------------------------
def _mask_bias(node, mask: Value, kv_len: int, dtype: str) -> Value:
    """The attn_mask input as an additive bias (0 / -inf for bool masks), padded on the
    right to ``kv_len`` keys with masked positions."""
    is_bool = str(mask.dtype) == "bool"
    pad = kv_len - int(mask.shape[-1])
    if pad < 0:
        raise node.error(f"attn_mask has {mask.shape[-1]} keys, more than the {kv_len} keys")
    if isinstance(mask, np.ndarray):
        if pad:
            fill = False if is_bool else _NEG_INF
            mask = np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, pad)], constant_values=fill)
        if is_bool:
            return np.where(mask, 0, _NEG_INF).astype(dtype)
        return mask.astype(dtype)
    if pad:
        fill = np.full((*(int(d) for d in mask.shape[:-1]), pad),
                       False if is_bool else _NEG_INF, dtype=mask.dtype)
        mask = gx.concatenate([mask, gx.constant(fill)], axis=-1)
    if is_bool:
        return gx.where(mask, _const(0, dtype), _const(_NEG_INF, dtype))
    return mask if mask.dtype == dtype else gx.cast(mask, dtype)


def _structural_bias(node, q_len: int, kv_len: int, past_len: int, dtype: str,
                     nonpad: Value | None) -> Value | None:
    """Causal, sliding-window and padding masks as an additive 0 / -inf bias: (q, kv)
    known at import, or (B, 1, q, kv) from a runtime ``nonpad_kv_seqlen``.

    A query at block index i sits at absolute position p = i + offset with offset =
    past length (internal cache), nonpad[b] - q (external cache) or 0; it attends key j
    iff j <= p (causal), p - left <= j <= p + right (window) and j < nonpad[b]."""
    causal = bool(node.attr("is_causal", 0))
    left = int(node.attr("left_window_size", -1))
    right = int(node.attr("right_window_size", -1))
    if left < -1 or right < -1:
        raise node.error(f"window sizes must be -1 or >= 0, got {left}, {right}")
    windowed = left >= 0 or right >= 0
    i = np.arange(q_len).reshape(q_len, 1)
    j = np.arange(kv_len).reshape(1, kv_len)
    if nonpad is None:
        allowed = np.ones((q_len, kv_len), dtype=bool)
        diff = i + past_len - j  # p - j
        if causal:
            allowed &= diff >= 0
        if left >= 0:
            allowed &= diff <= left
        if right >= 0:
            allowed &= -diff <= right
        if allowed.all():
            return None
        return np.where(allowed, 0, _NEG_INF).astype(dtype)
    # runtime nonpad (B,): everything per batch, as int64 graph
    lengths = gx.reshape(nonpad if isinstance(nonpad, Tensor) else gx.constant(nonpad),
                         (-1, 1, 1, 1))
    if str(lengths.dtype) != "int64":
        lengths = gx.cast(lengths, "int64")
    allowed = gx.less(gx.constant(j.reshape(1, 1, 1, kv_len).astype(np.int64)), lengths)
    if causal or windowed:
        # p - j = (i - j - q) + nonpad[b]
        diff = gx.add(gx.constant((i - j - q_len).reshape(1, 1, q_len, kv_len)), lengths)
        if causal:
            allowed = gx.logical_and(allowed, gx.greater_equal(diff, _const(0, np.int64)))
        if left >= 0:
            allowed = gx.logical_and(allowed, gx.less_equal(diff, _const(left, np.int64)))
        if right >= 0:
            allowed = gx.logical_and(allowed, gx.greater_equal(diff, _const(-right, np.int64)))
    return gx.where(allowed, _const(0, dtype), _const(_NEG_INF, dtype))


@handler("Attention", since=23)
def attention(node):
    """Scaled dot-product attention (opsets 23-25): 3-D or 4-D Q/K/V, GQA, masks,
    KV cache, softcap, and the qk_matmul output."""
    q, k, v = node.input(0), node.input(1), node.input(2)
    dtype = str(q.dtype)
    if dtype not in ("float16", "float32", "float64"):
        raise node.unsupported(f"dtype {dtype}")
    rank = len(q.shape)
    if rank == 3:
        qh, kvh = node.attr("q_num_heads"), node.attr("kv_num_heads")
        if qh is None or kvh is None:
            raise node.error("3-D inputs need the q_num_heads and kv_num_heads attributes")
        q, k, v = _heads_first(q, qh), _heads_first(k, kvh), _heads_first(v, kvh)
    elif rank != 4:
        raise node.error(f"Q must be rank 3 or 4, got shape {q.shape}")
    elif node.opset >= 25 and ("q_num_heads" in node.attrs or "kv_num_heads" in node.attrs):
        raise node.error("q_num_heads and kv_num_heads must not be given for 4-D inputs")
    if node.has(4) != node.has(5):
        raise node.error("past_key and past_value must be given together")
    nonpad = node.inputs[6] if node.has(6) else None
    if nonpad is not None and node.has(4):
        raise node.error("nonpad_kv_seqlen cannot be combined with past_key/past_value")

    head_size = int(q.shape[3])
    scale = node.attr("scale")
    scale = 1 / np.sqrt(head_size) if scale is None else scale
    sqrt_scale = _const(np.sqrt(scale), dtype)  # Q and K each scaled by sqrt(scale)

    past_len = 0
    if node.has(4):
        past_len = int(node.shape(4)[2])
        k = gx.concatenate([node.input(4), k], axis=2)
        v = gx.concatenate([node.input(5), v], axis=2)
    present_k, present_v = k, v
    q_len, kv_len = int(q.shape[2]), int(k.shape[2])

    # additive bias: attn_mask + causal / window / padding structure
    bias = None
    if node.has(3):
        bias = _mask_bias(node, node.inputs[3], kv_len, dtype)
    bias = _add(bias, _structural_bias(node, q_len, kv_len, past_len, dtype, nonpad))

    kt = gx.transpose(gx.mul(k, sqrt_scale), (0, 1, 3, 2))
    qk = _grouped_matmul(gx.mul(q, sqrt_scale), kt)
    softcap = node.attr("softcap")
    if softcap is not None and softcap > 0:
        qk = gx.mul(gx.tanh(gx.div(qk, softcap)), softcap)
    mode = int(node.attr("qk_matmul_output_mode", 0))
    if mode not in (0, 1, 2, 3):
        raise node.unsupported(f"attribute qk_matmul_output_mode={mode}")
    qk_out = qk
    logits = qk if bias is None else gx.add(qk, bias)
    if mode == 2:
        qk_out = logits

    precision = node.attr("softmax_precision")
    if precision is not None:
        sdt = _np_dtype(node, precision).name
        if sdt != dtype:
            logits = gx.cast(logits, sdt)
    sdt = str(logits.dtype)

    # fully-masked rows (bias all -inf) give probability 0, decided on the bias
    masked_rows: Value | None = None
    if isinstance(bias, np.ndarray):
        rows = np.isneginf(bias.max(axis=-1, keepdims=True))
        masked_rows = rows if rows.any() else None
    elif bias is not None:
        masked_rows = gx.equal(gx.max(bias, axis=-1, keepdims=True), _const(_NEG_INF, dtype))
    if masked_rows is None:
        probs = _softmax(logits)
    else:
        if isinstance(masked_rows, np.ndarray):
            masked_rows = gx.constant(masked_rows)
        zero = _const(0, sdt)
        # the all -inf rows are replaced before softmax so no NaN arises (nor in the vjp)
        probs = gx.where(masked_rows, zero, _softmax(gx.where(masked_rows, zero, logits)))
    if mode == 3:
        qk_out = probs
    if str(probs.dtype) != dtype:
        probs = gx.cast(probs, dtype)
    if str(qk_out.dtype) != dtype:
        qk_out = gx.cast(qk_out, dtype)

    y = _grouped_matmul(probs, v)
    if rank == 3:
        y = _heads_last(y)
    return (y,
            present_k if node.wants_output(1) else None,
            present_v if node.wants_output(2) else None,
            qk_out if node.wants_output(3) else None)


# -- FlexAttention (ai.onnx.preview) ---------------------------------------------------------
@handler("FlexAttention", since=1, domain="ai.onnx.preview")
def flex_attention(node):
    """softmax(score_mod((Q K^T) * scale)) -> prob_mod -> @ V, 4-D inputs with GQA; the
    softmax runs in softmax_precision (default float32, float64 for float64 inputs)."""
    q, k, v = node.input(0), node.input(1), node.input(2)
    dtype = str(q.dtype)
    if dtype not in ("float16", "float32", "float64"):
        raise node.unsupported(f"dtype {dtype}")
    if len(q.shape) != 4 or len(k.shape) != 4 or len(v.shape) != 4:
        raise node.error("Q, K and V must be rank 4")
    scale = node.attr("scale")
    scale = 1.0 / np.sqrt(int(q.shape[3])) if scale is None else scale
    sqrt_scale = _const(np.sqrt(np.float32(scale)), dtype)
    scores = _grouped_matmul(gx.mul(q, sqrt_scale),
                             gx.transpose(gx.mul(k, sqrt_scale), (0, 1, 3, 2)))
    precision = node.attr("softmax_precision")
    if precision is not None:
        cdt = _np_dtype(node, precision).name
    else:
        cdt = "float64" if dtype == "float64" else "float32"
    if cdt != dtype:
        scores = gx.cast(scores, cdt)
    scores = _modifier(node, "score_mod", scores, cdt)
    probs = _modifier(node, "prob_mod", _softmax(scores), cdt)
    vf = v if cdt == dtype else gx.cast(v, cdt)
    y = _grouped_matmul(probs, vf)
    return y if cdt == str(v.dtype) else gx.cast(y, str(v.dtype))


def _modifier(node, name: str, x: Tensor, dtype: str) -> Tensor:
    """Apply the one-input one-output subgraph attribute ``name`` (if given) to ``x``."""
    graph = node.attr(name)
    if graph is None:
        return x
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise node.error(f"{name} must take one input and give one output")
    (out,) = run_subgraph(node, graph, {graph.input[0].name: x})
    out = out if isinstance(out, Tensor) else gx.constant(out)
    out = gx.broadcast_to(out, x.shape) if tuple(out.shape) != tuple(x.shape) else out
    return out if str(out.dtype) == dtype else gx.cast(out, dtype)


# -- RotaryEmbedding -------------------------------------------------------------------------
@handler("RotaryEmbedding", since=23)
def rotary_embedding(node):
    """Rotate pairs (x1, x2) of each head's first rotary_embedding_dim features by the
    angle whose cos/sin are given: (x1 cos - x2 sin, x1 sin + x2 cos). Pairs are the
    two halves, or even/odd features when interleaved."""
    x = node.input(0)
    shape = tuple(int(d) for d in x.shape)
    if len(shape) == 4:  # (B, H, S, D) -> (B, S, H, D)
        xs = gx.transpose(x, (0, 2, 1, 3))
    elif len(shape) == 3:
        heads = node.attr("num_heads")
        if not heads:
            raise node.error("3-D input needs the num_heads attribute")
        b, s, hidden = shape
        if hidden % heads:
            raise node.error(f"hidden size {hidden} is not divisible by num_heads={heads}")
        xs = gx.reshape(x, (b, s, heads, hidden // heads))
    else:
        raise node.error(f"input must be rank 3 or 4, got shape {shape}")
    head = int(xs.shape[3])
    rot = int(node.attr("rotary_embedding_dim", 0)) or head
    if rot % 2 or rot > head:
        raise node.error(f"rotary_embedding_dim={rot} must be even and at most {head}")
    cos, sin = node.input(1), node.input(2)
    if node.has(3):
        ids = node.input(3)
        cos, sin = gx.take(cos, ids, axis=0), gx.take(sin, ids, axis=0)
    if int(cos.shape[-1]) != rot // 2 or int(sin.shape[-1]) != rot // 2:
        raise node.error(f"cos/sin caches must end in rotary_embedding_dim/2 = {rot // 2}")
    cos = gx.expand_dims(cos, 2)  # (B, S, 1, rot/2)
    sin = gx.expand_dims(sin, 2)
    interleaved = bool(node.attr("interleaved", 0))
    if interleaved:
        x1 = gx.getitem(xs, (Ellipsis, slice(0, rot, 2)))
        x2 = gx.getitem(xs, (Ellipsis, slice(1, rot, 2)))
    else:
        x1 = gx.getitem(xs, (Ellipsis, slice(0, rot // 2)))
        x2 = gx.getitem(xs, (Ellipsis, slice(rot // 2, rot)))
    real = gx.sub(gx.mul(cos, x1), gx.mul(sin, x2))
    imag = gx.add(gx.mul(sin, x1), gx.mul(cos, x2))
    if interleaved:
        rotated = gx.reshape(gx.stack([real, imag], axis=-1), (*(int(d) for d in real.shape[:-1]),
                                                               rot))
    else:
        rotated = gx.concatenate([real, imag], axis=-1)
    if rot < head:
        rotated = gx.concatenate([rotated, gx.getitem(xs, (Ellipsis, slice(rot, head)))], -1)
    if len(shape) == 4:
        return gx.transpose(rotated, (0, 2, 1, 3))
    return gx.reshape(rotated, shape)


# -- SwiGLU ----------------------------------------------------------------------------------
@handler("SwiGLU", since=28)
def swiglu(node):
    """A * sigmoid(alpha * A) * B (A and B of one shape, no broadcasting)."""
    a, b = node.input(0), node.input(1)
    if tuple(a.shape) != tuple(b.shape):
        raise node.error(f"A and B must have one shape, got {a.shape} and {b.shape}")
    alpha = float(node.attr("alpha", 1.0))
    gate = gx.sigmoid(a if alpha == 1.0 else gx.mul(a, alpha))
    return gx.mul(gx.mul(a, gate), b)


# -- CausalConvWithState ---------------------------------------------------------------------
@handler("CausalConvWithState", since=27)
def causal_conv_with_state(node):
    """Depthwise causal conv1d over (B, C, L) with a carried left context of k-1 steps:
    y[b,c,t] = bias[c] + sum_i w[c,0,i] * padded[b,c,t+i], padded = [state, x]; the
    new state is padded's last k-1 steps. Optional SiLU (computed in float32)."""
    x, w = node.input(0), node.input(1)
    dtype = str(x.dtype)
    activation = node.attr("activation", "none")
    if activation not in ("none", "silu", "swish"):
        raise node.unsupported(f"attribute activation={activation!r}")
    if len(x.shape) != 3 or len(w.shape) != 3 or int(w.shape[1]) != 1:
        raise node.error(f"input (B, C, L) and weight (C, 1, k) expected, got {x.shape}, "
                         f"{w.shape}")
    b, c, length = (int(d) for d in x.shape)
    ksize = int(w.shape[2])
    if node.has(3):
        padded = gx.concatenate([node.input(3), x], axis=2) if ksize > 1 else x
    elif ksize > 1:
        padded = gx.concatenate([_const(np.zeros((b, c, ksize - 1)), dtype), x], axis=2)
    else:
        padded = x
    # float16 accumulates in float32 and rounds once, as the reference's conv does
    acc = "float32" if dtype == "float16" else dtype

    def wide(t: Tensor) -> Tensor:
        return t if str(t.dtype) == acc else gx.cast(t, acc)

    y = None
    for i in range(ksize):
        tap = gx.mul(wide(gx.getitem(padded, (slice(None), slice(None), slice(i, i + length)))),
                     wide(gx.getitem(w, (None, slice(None), 0, slice(i, i + 1)))))
        y = tap if y is None else gx.add(y, tap)
    if node.has(2):
        y = gx.add(y, wide(gx.reshape(node.input(2), (1, c, 1))))
    y = y if acc == dtype else gx.cast(y, dtype)
    if activation != "none":
        yf = y if dtype in ("float32", "float64") else gx.cast(y, "float32")
        y = gx.mul(yf, gx.sigmoid(yf))
        y = y if str(y.dtype) == dtype else gx.cast(y, dtype)
    state = None
    if node.wants_output(1):
        total = length + ksize - 1
        state = gx.getitem(padded, (slice(None), slice(None), slice(total - (ksize - 1), total)))
    return y, state


# -- TensorScatter ---------------------------------------------------------------------------
@handler("TensorScatter", since=24)
def tensor_scatter(node):
    """Write ``update`` into a copy of ``past_cache`` along ``axis`` at per-batch offsets
    write_indices[b] (modulo the cache length when mode='circular'): each cache position
    p takes update[p - w[b]] when that index is in range, else keeps the cache value."""
    past, update = node.input(0), node.input(1)
    mode = node.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        raise node.unsupported(f"attribute mode={mode!r}")
    shape = tuple(int(d) for d in past.shape)
    ushape = tuple(int(d) for d in update.shape)
    axis = int(node.attr("axis", -2)) % len(shape)
    if axis == 0:
        raise node.error("axis must not be the batch axis 0")
    max_len, seq = shape[axis], ushape[axis]
    batch = shape[0]
    pos = np.arange(max_len, dtype=np.int64).reshape(1, max_len)
    if node.has(2):
        w = node.input(2)
        w = w if str(w.dtype) == "int64" else gx.cast(w, "int64")
        src = gx.sub(gx.constant(pos), gx.reshape(w, (batch, 1)))  # (B, max_len)
        if mode == "circular":
            src = gx.mod(src, _const(max_len, np.int64))
        valid = gx.logical_and(gx.greater_equal(src, _const(0, np.int64)),
                               gx.less(src, _const(seq, np.int64)))
        src = gx.clip(src, 0, seq - 1)
    else:
        src = np.broadcast_to(pos, (batch, max_len))
        valid = src < seq
        src = np.minimum(src, seq - 1)
    # indices/valid broadcast to the cache's shape: (B, 1.., max_len, 1..)
    view = (batch,) + (1,) * (axis - 1) + (max_len,) + (1,) * (len(shape) - axis - 1)
    full = shape[:axis] + (max_len,) + shape[axis + 1:]
    if isinstance(src, np.ndarray):
        idx = gx.constant(np.ascontiguousarray(np.broadcast_to(src.reshape(view), full)))
        valid = gx.constant(valid.reshape(view))
    else:
        idx = gx.broadcast_to(gx.reshape(src, view), full)
        valid = gx.reshape(valid, view)
    gathered = gx.take_along_axis(update, idx, axis=axis)
    return gx.where(valid, gathered, past)


# -- LinearAttention -------------------------------------------------------------------------
@handler("LinearAttention", since=27)
def linear_attention(node):
    """The linear-attention recurrence, unrolled over the (static) sequence in float32:
    S <- S * exp(g_t) (gated), v_t <- beta_t (v_t - S^T k_t) (delta), S <- S + k_t v_t^T,
    o_t = scale * q_t S (GQA: kv head h // group for query head h)."""
    rule = node.attr("update_rule", "gated_delta")
    if rule not in ("linear", "gated", "delta", "gated_delta"):
        raise node.unsupported(f"attribute update_rule={rule!r}")
    hq, hkv = node.attr("q_num_heads"), node.attr("kv_num_heads")
    if not hq or not hkv or hq % hkv:
        raise node.error("q_num_heads must be a positive multiple of kv_num_heads")
    gating = rule in ("gated", "gated_delta")
    delta = rule in ("delta", "gated_delta")
    if gating != node.has(4):
        raise node.error(f"update_rule {rule!r} {'needs' if gating else 'forbids'} decay")
    if delta != node.has(5):
        raise node.error(f"update_rule {rule!r} {'needs' if delta else 'forbids'} beta")
    query, key, value = node.input(0), node.input(1), node.input(2)
    out_dtype = str(query.dtype)
    f32 = "float32"

    def f(t: Tensor) -> Tensor:
        return t if str(t.dtype) == f32 else gx.cast(t, f32)

    b, steps, _ = (int(d) for d in query.shape)
    q4 = f(_heads_first(query, hq))  # (B, Hq, T, dk)
    k4 = f(_heads_first(key, hkv))
    v4 = f(_heads_first(value, hkv))
    dk, dv = int(q4.shape[3]), int(v4.shape[3])
    group = hq // hkv
    if gating:
        decay = node.input(4)
        last = int(decay.shape[-1])
        if last == hkv:
            g4 = f(gx.transpose(gx.reshape(decay, (b, steps, hkv, 1)), (0, 2, 1, 3)))
        elif last == hkv * dk:
            g4 = f(_heads_first(decay, hkv))
        else:
            raise node.error(f"decay's last dim {last} must be {hkv} or {hkv * dk}")
        g4 = gx.exp(g4)  # (B, Hkv, T, 1 or dk)
    if delta:
        beta = node.input(5)
        last = int(beta.shape[-1])
        if last not in (hkv, 1):
            raise node.error(f"beta's last dim {last} must be {hkv} or 1")
        beta4 = f(gx.transpose(gx.reshape(beta, (b, steps, last, 1)), (0, 2, 1, 3)))
    if node.has(3):
        state_dtype = node.dtype(3)
        state = f(node.input(3))
    else:
        state_dtype = out_dtype
        state = _const(np.zeros((b, hkv, dk, dv)), f32)
    scale = node.attr("scale", 0.0)
    scale = 1.0 / np.sqrt(dk) if not scale else scale
    scale_c = _const(scale, f32)

    def at(t: Tensor, i: int) -> Tensor:  # step i of (B, H, T, X) -> (B, H, X)
        return gx.getitem(t, (slice(None), slice(None), i))

    outs = []
    for i in range(steps):
        k_t, v_t = at(k4, i), at(v4, i)
        if gating:
            state = gx.mul(state, gx.expand_dims(at(g4, i), -1))
        if delta:
            retrieved = gx.reshape(gx.matmul(gx.expand_dims(k_t, 2), state), (b, hkv, dv))
            v_t = gx.mul(at(beta4, i), gx.sub(v_t, retrieved))
        state = gx.add(state, gx.mul(gx.expand_dims(k_t, -1), gx.expand_dims(v_t, 2)))
        q_t = gx.reshape(at(q4, i), (b, hkv, group, 1, dk))  # query heads grouped by kv head
        o_t = gx.matmul(q_t, gx.expand_dims(state, 2))  # (B, Hkv, group, 1, dv)
        outs.append(gx.mul(gx.reshape(o_t, (b, 1, hq * dv)), scale_c))
    out = outs[0] if steps == 1 else gx.concatenate(outs, axis=1)  # (B, T, Hq*dv)
    out = out if out_dtype == f32 else gx.cast(out, out_dtype)
    present = state if state_dtype == f32 else gx.cast(state, state_dtype)
    return out, present
