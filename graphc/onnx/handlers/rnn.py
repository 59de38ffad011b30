"""ONNX recurrent layers (RNN, GRU, LSTM) as graphc graph, unrolled over time.

A graphc graph has static structure, so the sequence length (``X``'s time axis)
must be known at import; each time step becomes a few matmuls and elementwise
ops. The input projection ``X @ W^T + Wb`` of every step is one matmul over the
whole sequence; only the recurrence ``H_{t-1} @ R^T`` is per step.

``sequence_lens`` (when given and not all full) must be known at import: each
batch row then stops updating its state after its own length, its ``Y`` rows
past the length are 0, and the reverse direction reads each row backwards from
its own last valid step (a gather with a permutation table computed in NumPy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

import graphc as gx
from graphc.onnx.registry import handler
from graphc.tensor import Tensor

Act = Callable[[Tensor], Tensor]

#: activation name (lowercase) -> (number of alpha/beta values it consumes, defaults)
_ACT_PARAMS: dict[str, tuple[float, ...]] = {
    "relu": (), "tanh": (), "sigmoid": (), "softsign": (), "softplus": (),
    "affine": (1.0, 0.0), "leakyrelu": (0.01,), "thresholdedrelu": (1.0,),
    "scaledtanh": (1.0, 1.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0,),
}


def _activation(name: str, alpha: float | None, beta: float | None) -> Act:
    """The ONNX RNN activation ``name`` (case-insensitive) with its alpha/beta."""
    key = name.lower()
    a, b = alpha, beta
    if key == "relu":
        return gx.relu
    if key == "tanh":
        return gx.tanh
    if key == "sigmoid":
        return gx.sigmoid
    if key == "softsign":
        return gx.softsign
    if key == "softplus":
        return lambda x: gx.log1p(gx.exp(x))
    if key == "affine":
        return lambda x: x * a + b
    if key == "leakyrelu":
        return lambda x: gx.where(x >= 0, x, x * a)
    if key == "thresholdedrelu":  # x if x > alpha else 0 (ONNX ThresholdedRelu)
        return lambda x: gx.where(x > a, x, x * 0.0)
    if key == "scaledtanh":
        return lambda x: gx.tanh(x * b) * a
    if key == "hardsigmoid":
        return lambda x: gx.clip(x * a + b, 0.0, 1.0)
    if key == "elu":
        return lambda x: gx.where(x >= 0, x, gx.expm1(x) * a)
    raise KeyError(name)


def _activations(node, defaults: Sequence[str], n_dirs: int) -> list[list[Act]]:
    """Per direction, the activation functions (f, g, h...) with their alpha/beta.

    alpha/beta values are consumed in order by the activations that take them
    (as onnxruntime does); missing ones take the ONNX defaults.
    """
    names = node.attr("activations")
    names = list(names) if names else list(defaults) * n_dirs
    if len(names) != len(defaults) * n_dirs:
        raise node.error(f"activations must list {len(defaults) * n_dirs} functions, "
                         f"got {names}")
    alphas = list(node.attr("activation_alpha", []) or [])
    betas = list(node.attr("activation_beta", []) or [])
    acts = []
    for name in names:
        key = name.lower()
        if key not in _ACT_PARAMS:
            raise node.unsupported(f"activation {name!r}")
        params = _ACT_PARAMS[key]
        alpha = beta = None
        if params:
            alpha = alphas.pop(0) if alphas else params[0]
        if len(params) > 1:
            beta = betas.pop(0) if betas else params[1]
        acts.append(_activation(name, alpha, beta))
    n = len(defaults)
    return [acts[d * n:(d + 1) * n] for d in range(n_dirs)]


@dataclass
class _Setup:
    """What every recurrent op reads the same way."""

    X: Tensor            # (seq, batch, input), time-major
    W: Tensor            # (dirs, gates*H, input)
    R: Tensor            # (dirs, gates*H, H)
    B: Tensor | None     # (dirs, 2*gates*H)
    h0: Tensor | None    # (dirs, batch, H)
    c0: Tensor | None    # (dirs, batch, H), LSTM only
    seq: int
    batch: int
    hidden: int
    dirs: list[str]      # "forward" / "reverse", one per direction
    lens: np.ndarray | None  # per batch row, None when every row is full
    clip: float | None
    layout: int


def _setup(node, gates: int) -> _Setup:
    layout = node.attr("layout", 0)
    if layout not in (0, 1):
        raise node.unsupported(f"attribute layout={layout}")
    if node.attr("output_sequence", 0):
        raise node.unsupported("attribute output_sequence (opset 1)")
    direction = node.attr("direction", "forward")
    dirs = {"forward": ["forward"], "reverse": ["reverse"],
            "bidirectional": ["forward", "reverse"]}.get(direction)
    if dirs is None:
        raise node.unsupported(f"attribute direction={direction!r}")
    X = node.input(0)
    if X.ndim != 3:
        raise node.error(f"X must be 3-d, got shape {X.shape}")
    swap = (1, 0, 2)
    if layout == 1:
        X = gx.transpose(X, swap)
    seq, batch = X.shape[0], X.shape[1]
    if not isinstance(seq, int):
        raise node.unsupported(f"a symbolic sequence length ({seq!r}): the unrolled graph "
                               "needs it at import")
    W, R = node.input(1), node.input(2)
    hidden = node.attr("hidden_size") or R.shape[-1]
    if W.shape[0] != len(dirs) or R.shape[1] != gates * hidden:
        raise node.error(f"W {W.shape} / R {R.shape} do not match direction={direction!r}, "
                         f"hidden_size={hidden}")
    B = node.input(3) if node.has(3) else None
    lens = None
    if node.has(4):
        lens = np.asarray(node.value(4)).astype(np.int64).reshape(-1)
        if not isinstance(batch, int) or lens.shape != (batch,):
            raise node.error(f"sequence_lens has shape {lens.shape}, batch is {batch}")
        if np.any(lens < 0) or np.any(lens > seq):
            raise node.error(f"sequence_lens {lens.tolist()} outside [0, {seq}]")
        if np.all(lens == seq):
            lens = None
    h0 = node.input(5) if node.has(5) else None
    c0 = node.input(6) if node.has(6) else None
    if layout == 1:
        h0 = gx.transpose(h0, swap) if h0 is not None else None
        c0 = gx.transpose(c0, swap) if c0 is not None else None
    clip = node.attr("clip")
    return _Setup(X, W, R, B, h0, c0, seq, batch, hidden, dirs, lens, clip, layout)


def _reverse_table(lens: np.ndarray, seq: int) -> np.ndarray:
    """perm[t, b]: the step of row b read at processing step t of a reverse pass.

    Row b's valid steps 0..len-1 are read backwards, padding steps stay in place;
    the table is its own inverse, so it also puts the outputs back.
    """
    t = np.arange(seq)[:, None]
    return np.where(t < lens[None, :], lens[None, :] - 1 - t, t).astype(np.int64)


def _gather_time(x: Tensor, perm: np.ndarray) -> Tensor:
    """x[perm[t, b], b, :] for a (seq, batch, k) tensor."""
    idx = np.broadcast_to(perm[:, :, None], tuple(x.shape)).copy()
    return gx.take_along_axis(x, gx.constant(idx), axis=0)


def _run(s: _Setup, d: int, step: Callable, n_states: int, gates: int):
    """Unroll direction ``d``: ``step(xw_t, states, R^T, Rb) -> (new states, y_t)``.

    ``xw_t`` is step t's input projection ``X_t W^T + Wb`` (batch, gates*H).
    Returns Y (seq, batch, H) in original time order and the final states.
    """
    W, R = gx.getitem(s.W, d), gx.getitem(s.R, d)
    x = s.X
    reverse = s.dirs[d] == "reverse"
    perm = None
    if reverse and s.lens is not None:
        perm = _reverse_table(s.lens, s.seq)
        x = _gather_time(x, perm)
    # input projection of all steps at once: (seq, batch, gates*H)
    xw = gx.matmul(x, gx.transpose(W, (1, 0)))
    if s.B is not None:
        xw = xw + gx.getitem(s.B, (d, slice(0, gates * s.hidden)))
    Rt = gx.transpose(R, (1, 0))
    rb = gx.getitem(s.B, (d, slice(gates * s.hidden, None))) if s.B is not None else None
    zeros = gx.zeros_like(gx.getitem(xw, (0, Ellipsis, slice(0, s.hidden))))
    states = []
    for init in (s.h0, s.c0)[:n_states]:
        states.append(gx.getitem(init, d) if init is not None else zeros)
    order = range(s.seq)
    if reverse and perm is None:
        order = reversed(range(s.seq))
    ys: dict[int, Tensor] = {}
    for t in order:
        new_states, y = step(gx.getitem(xw, t), states, Rt, rb)
        if s.lens is not None:  # rows past their length keep their state, output 0
            live = gx.constant((t < s.lens)[:, None])
            new_states = [gx.where(live, n, o) for n, o in zip(new_states, states, strict=True)]
            y = gx.where(live, y, zeros)
        states = new_states
        ys[t] = y
    if s.lens is not None and np.any(s.lens == 0):
        # a row of length 0 has final states 0, not its initial state (as onnxruntime)
        nonempty = gx.constant((s.lens > 0)[:, None])
        states = [gx.where(nonempty, st, zeros) for st in states]
    Y = gx.stack([ys[t] for t in range(s.seq)], axis=0)
    if perm is not None:
        Y = _gather_time(Y, perm)
    return Y, states


def _finish(node, s: _Setup, Ys: list[Tensor], finals: list[list[Tensor]]):
    """Y (seq, dirs, batch, H), Y_h and Y_c (dirs, batch, H), in the requested layout."""
    outs = []
    if node.wants_output(0):
        Y = gx.stack(Ys, axis=1)
        outs.append(gx.transpose(Y, (2, 0, 1, 3)) if s.layout == 1 else Y)
    else:
        outs.append(None)
    for k in range(len(finals[0])):
        if node.wants_output(k + 1):
            Yk = gx.stack([f[k] for f in finals], axis=0)
            outs.append(gx.transpose(Yk, (1, 0, 2)) if s.layout == 1 else Yk)
        else:
            outs.append(None)
    return tuple(outs[:max(node.n_outputs, 1)])


def _clip(s: _Setup, x: Tensor) -> Tensor:
    return gx.clip(x, -s.clip, s.clip) if s.clip is not None else x


def _cols(x: Tensor, k: int, hidden: int) -> Tensor:
    """Gate ``k``'s columns of a (..., gates*H) tensor."""
    return gx.getitem(x, (Ellipsis, slice(k * hidden, (k + 1) * hidden)))


@handler("RNN", since=1)
def rnn(node):
    """H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)."""
    s = _setup(node, 1)
    acts = _activations(node, ["Tanh"], len(s.dirs))
    Ys, finals = [], []
    for d in range(len(s.dirs)):
        (f,) = acts[d]

        def step(xw, states, Rt, rb, f=f):
            pre = xw + gx.matmul(states[0], Rt)
            if rb is not None:
                pre = pre + rb
            h = f(_clip(s, pre))
            return [h], h

        Y, st = _run(s, d, step, 1, 1)
        Ys.append(Y)
        finals.append(st)
    return _finish(node, s, Ys, finals)


@handler("GRU", since=1)
def gru(node):
    """z, r = f(...); h~ = g(X Wh^T + (r*H) Rh^T + Rbh + Wbh) or, with
    linear_before_reset, g(X Wh^T + r*(H Rh^T + Rbh) + Wbh); H = (1-z) h~ + z H."""
    s = _setup(node, 3)
    acts = _activations(node, ["Sigmoid", "Tanh"], len(s.dirs))
    lbr = node.attr("linear_before_reset", 0)
    H = s.hidden
    Ys, finals = [], []
    for d in range(len(s.dirs)):
        f, g = acts[d]

        def step(xw, states, Rt, rb, f=f, g=g):
            h_prev = states[0]
            hr = gx.matmul(h_prev, gx.getitem(Rt, (slice(None), slice(0, 2 * H))))
            zr = gx.getitem(xw, (Ellipsis, slice(0, 2 * H))) + hr
            if rb is not None:
                zr = zr + gx.getitem(rb, slice(0, 2 * H))
            zr = f(_clip(s, zr))
            z, r = _cols(zr, 0, H), _cols(zr, 1, H)
            Rh = gx.getitem(Rt, (slice(None), slice(2 * H, 3 * H)))
            rbh = _cols(rb, 2, H) if rb is not None else None
            if lbr:
                rec = gx.matmul(h_prev, Rh)
                if rbh is not None:
                    rec = rec + rbh
                pre = _cols(xw, 2, H) + r * rec
            else:
                pre = _cols(xw, 2, H) + gx.matmul(r * h_prev, Rh)
                if rbh is not None:
                    pre = pre + rbh
            hh = g(_clip(s, pre))
            h = (1.0 - z) * hh + z * h_prev
            return [h], h

        Y, st = _run(s, d, step, 1, 3)
        Ys.append(Y)
        finals.append(st)
    return _finish(node, s, Ys, finals)


@handler("LSTM", since=1)
def lstm(node):
    """Gates i, o, f, c (ONNX order) with optional peepholes P[iof]:
    C = f*C_{t-1} + i*g(c~), H = o*h(C); input_forget couples f = 1 - i."""
    s = _setup(node, 4)
    acts = _activations(node, ["Sigmoid", "Tanh", "Tanh"], len(s.dirs))
    P = node.input(7) if node.has(7) else None
    coupled = node.attr("input_forget", 0)
    H = s.hidden
    Ys, finals = [], []
    for d in range(len(s.dirs)):
        f, g, h_act = acts[d]
        p = gx.getitem(P, d) if P is not None else None

        def step(xw, states, Rt, rb, f=f, g=g, h_act=h_act, p=p):
            h_prev, c_prev = states
            pre = xw + gx.matmul(h_prev, Rt)
            if rb is not None:
                pre = pre + rb
            pi, po, pf, pc = (_cols(pre, k, H) for k in range(4))
            if p is not None:
                pi = pi + _cols(p, 0, H) * c_prev
                pf = pf + _cols(p, 2, H) * c_prev
            i = f(_clip(s, pi))
            fg = 1.0 - i if coupled else f(_clip(s, pf))
            c = fg * c_prev + i * g(_clip(s, pc))
            if p is not None:
                po = po + _cols(p, 1, H) * c
            o = f(_clip(s, po))
            h = o * h_act(c)
            return [h, c], h

        Y, st = _run(s, d, step, 2, 4)
        Ys.append(Y)
        finals.append(st)
    return _finish(node, s, Ys, finals)
