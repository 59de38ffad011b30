"""ONNX training ops (domain ai.onnx.preview.training) as graphc graph.

The optimizers take a learning rate ``R`` and a step count ``T`` (scalars)
followed by n tensors per group (``X1..Xn, G1..Gn, ...``) and return the
updated groups (``X1'..Xn', ...``); each update is a few elementwise ops:

- Adagrad: g = lambda*x + g;  h' = h + g^2;  x' = x - R/(1 + T*decay) * g / (sqrt(h') + eps)
- Momentum: g = lambda*x + g;  v' = alpha*v + beta_T*g  (beta_T = 1 at T = 0, else beta);
  standard: x' = x - R*v';  nesterov: x' = x - R*(g + alpha*v')
- Adam: g = lambda*x + g;  v' = alpha*v + (1-alpha)*g;  h' = beta*h + (1-beta)*g^2;
  R_T = R*sqrt(1-beta^T)/(1-alpha^T) for T > 0 (else R);
  x' = (1-lambda_post)*(x - R_T*v'/(sqrt(h')+eps))

``T`` may be known at import or a run-time tensor (then the T > 0 tests are ``where``).

``Gradient`` is the symbolic gradient of the graph value named ``y`` (summed)
with respect to the node's inputs (named by ``xs``): a ``gx.vjp`` of the
already-imported graph.
"""

from __future__ import annotations

import graphc as gx
from graphc.onnx.registry import handler
from graphc.tensor import Tensor

DOMAIN = "ai.onnx.preview.training"


def _groups(node, per: int) -> list[list[Tensor]]:
    """The n tensors of each of ``per`` groups after R and T."""
    rest = len(node.inputs) - 2
    if rest <= 0 or rest % per:
        raise node.error(f"expects R, T and {per} groups of equal size, got {len(node.inputs)} "
                         "inputs")
    n = rest // per
    return [[node.input(2 + k * n + i) for i in range(n)] for k in range(per)]


def _rt(node, dtype: str) -> tuple[Tensor, Tensor]:
    """R and T as scalars of the parameters' dtype."""
    r = gx.cast(gx.reshape(node.input(0), ()), dtype)
    t = gx.cast(gx.reshape(node.input(1), ()), dtype)
    return r, t


@handler("Adagrad", since=1, domain=DOMAIN)
def adagrad(node):
    xs, gs, hs = _groups(node, 3)
    lam = node.attr("norm_coefficient", 0.0)
    decay = node.attr("decay_factor", 0.0)
    eps = node.attr("epsilon", 1e-6)
    new_x, new_h = [], []
    for x, g, h in zip(xs, gs, hs, strict=True):
        r, t = _rt(node, x.dtype)
        rate = r / (t * decay + 1.0)
        g = x * lam + g
        h2 = h + g * g
        new_x.append(x - rate * g / (gx.sqrt(h2) + eps))
        new_h.append(h2)
    return tuple(new_x + new_h)


@handler("Momentum", since=1, domain=DOMAIN)
def momentum(node):
    xs, gs, vs = _groups(node, 3)
    try:
        lam, alpha, beta = (float(node.attrs[k]) for k in ("norm_coefficient", "alpha", "beta"))
        mode = node.attrs["mode"]
    except KeyError as e:
        raise node.error(f"attribute {e.args[0]!r} is required") from None
    if mode not in ("standard", "nesterov"):
        raise node.unsupported(f"attribute mode={mode!r}")
    new_x, new_v = [], []
    for x, g, v in zip(xs, gs, vs, strict=True):
        r, t = _rt(node, x.dtype)
        g = x * lam + g
        # the gradient's coefficient is 1 at T = 0, beta after
        beta_t = gx.cast(t > 0, x.dtype) * (beta - 1.0) + 1.0
        v2 = v * alpha + beta_t * g
        step = v2 if mode == "standard" else g + v2 * alpha
        new_x.append(x - r * step)
        new_v.append(v2)
    return tuple(new_x + new_v)


@handler("Adam", since=1, domain=DOMAIN)
def adam(node):
    xs, gs, vs, hs = _groups(node, 4)
    lam = node.attr("norm_coefficient", 0.0)
    lam_post = node.attr("norm_coefficient_post", 0.0)
    alpha = node.attr("alpha", 0.9)
    beta = node.attr("beta", 0.999)
    eps = node.attr("epsilon", 1e-6)
    new_x, new_v, new_h = [], [], []
    for x, g, v, h in zip(xs, gs, vs, hs, strict=True):
        r, t = _rt(node, x.dtype)
        g = x * lam + g
        v2 = v * alpha + g * (1.0 - alpha)
        h2 = h * beta + g * g * (1.0 - beta)
        # bias correction only from T = 1 on (at T = 0 it would divide by 0)
        ts = gx.maximum(t, 1.0)
        corrected = r * gx.sqrt(1.0 - gx.pow(beta, ts)) / (1.0 - gx.pow(alpha, ts))
        rate = gx.where(t > 0, corrected, r)
        x2 = x - rate * (v2 / (gx.sqrt(h2) + eps))
        new_x.append(x2 * (1.0 - lam_post))
        new_v.append(v2)
        new_h.append(h2)
    return tuple(new_x + new_v + new_h)


@handler("Gradient", since=1, domain=DOMAIN)
def gradient(node):
    """d sum(y) / d x for each input x (named in ``xs``), by graphc's reverse-mode autodiff."""
    if node.attr("zs"):
        raise node.unsupported("attribute zs")
    y_name = node.attr("y")
    xs = node.attr("xs") or []
    if not y_name or len(xs) != len(node.inputs):
        raise node.error("needs attribute y and one input per name in xs")
    env = node.importer.env
    if y_name not in env:
        raise node.error(f"y {y_name!r} is not a value of the graph")
    y = node.importer.tensor(env[y_name])
    wrt = [node.input(i) for i in range(len(xs))]
    grads = gx.vjp(y, wrt, gx.ones_like(y), allow_unused=True)
    if isinstance(grads, Tensor):
        grads = [grads]
    return tuple(g if g is not None else gx.zeros_like(x) for g, x in zip(grads, wrt,
                                                                       strict=True))
