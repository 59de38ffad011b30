"""Every optimizer against torch.optim: the same MLP, initial weights and batches, 6 steps,
params compared in float64; gradient clipping against torch.nn.utils."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import graphc as gx
from graphc import nn, optim

torch = pytest.importorskip("torch")
TOL = dict(rtol=1e-10, atol=1e-12)
STEPS = 6

_rng = np.random.default_rng(7)
BATCHES = [(_rng.standard_normal((8, 3)), _rng.standard_normal((8, 2))) for _ in range(STEPS)]


@pytest.fixture(autouse=True)
def float64_torch():
    """torch keeps NAdam's mu_product and the step counts in the default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def mlp() -> nn.Sequential:
    return nn.Sequential([nn.Dense(5, "tanh"), nn.Dense(2)], seed=1, input_shape=(3,),
                         dtype="float64")


def torch_copy(model: nn.Sequential):
    """The same network in torch (Linear keeps W transposed), and its (weights, biases)."""
    first, second = model.layers
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    with torch.no_grad():
        for linear, dense in ((net[0], first), (net[2], second)):
            linear.weight.copy_(torch.tensor(dense.W.value.T))
            linear.bias.copy_(torch.tensor(dense.b.value))
    return net, [net[0].weight, net[2].weight], [net[0].bias, net[2].bias]


def gx_step(model: nn.Sequential, opt: optim.Optimizer):
    x, y = gx.input("x", ("batch", 3), "float64"), gx.input("y", ("batch", 2), "float64")
    loss = gx.mean(gx.square(model(x) - y))
    return gx.compile([x, y], loss, updates=opt.minimize(loss, model.params()))


def torch_loss(net, xb, yb):
    return ((net(torch.tensor(xb)) - torch.tensor(yb)) ** 2).mean()


def assert_same_params(model: nn.Sequential, weights, biases, **tol) -> None:
    for layer, w, b in zip(model.layers, weights, biases, strict=True):
        np.testing.assert_allclose(layer.W.value, w.detach().numpy().T, **(tol or TOL))
        np.testing.assert_allclose(layer.b.value, b.detach().numpy(), **(tol or TOL))


def decayed_weights_only(torch_cls, **hyper):
    """torch's optimizer with its weight decay on weights only (graphc's default)."""
    def make(weights, biases):
        return torch_cls([{"params": weights}, {"params": biases, "weight_decay": 0.0}],
                         **hyper)
    return make


def on_all(torch_cls, **hyper):
    return lambda weights, biases: torch_cls(weights + biases, **hyper)


T = torch.optim
#: id, graphc optimizer, torch optimizer of (weights, biases)
CASES = [
    # the defaults are torch's
    ("sgd_defaults", optim.SGD, on_all(T.SGD)),
    ("adagrad_defaults", optim.Adagrad, on_all(T.Adagrad)),
    ("rmsprop_defaults", optim.RMSprop, on_all(T.RMSprop)),
    ("adam_defaults", optim.Adam, on_all(T.Adam)),
    ("adadelta_defaults", optim.AdaDelta, on_all(T.Adadelta)),
    ("nadam_defaults", optim.Nadam, on_all(T.NAdam)),
    ("adamw_defaults", lambda: optim.AdamW(decay_bias=True), on_all(T.AdamW)),
    # hyperparameters, weight decay on weights only and on everything
    ("sgd", lambda: optim.SGD(0.1), on_all(T.SGD, lr=0.1)),
    ("sgd_momentum_decay", lambda: optim.SGD(0.1, momentum=0.9, weight_decay=0.01),
     decayed_weights_only(T.SGD, lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("sgd_dampening", lambda: optim.SGD(0.1, momentum=0.8, dampening=0.4),
     on_all(T.SGD, lr=0.1, momentum=0.8, dampening=0.4)),
    ("sgd_nesterov_decay_all",
     lambda: optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.05, decay_bias=True),
     on_all(T.SGD, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("adagrad", lambda: optim.Adagrad(0.1, lr_decay=0.05, initial_accumulator_value=0.1,
                                      eps=1e-8, weight_decay=0.02),
     decayed_weights_only(T.Adagrad, lr=0.1, lr_decay=0.05, initial_accumulator_value=0.1,
                          eps=1e-8, weight_decay=0.02)),
    ("rmsprop_momentum", lambda: optim.RMSprop(0.01, alpha=0.9, momentum=0.5, weight_decay=0.01),
     decayed_weights_only(T.RMSprop, lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.01)),
    ("rmsprop_centered", lambda: optim.RMSprop(0.01, centered=True, momentum=0.3, eps=1e-6,
                                               weight_decay=0.01, decay_bias=True),
     on_all(T.RMSprop, lr=0.01, centered=True, momentum=0.3, eps=1e-6, weight_decay=0.01)),
    ("adadelta", lambda: optim.AdaDelta(0.5, rho=0.8, eps=1e-5, weight_decay=0.1),
     decayed_weights_only(T.Adadelta, lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("adam", lambda: optim.Adam(0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01),
     decayed_weights_only(T.Adam, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)),
    ("adam_amsgrad", lambda: optim.Adam(0.01, amsgrad=True),
     on_all(T.Adam, lr=0.01, amsgrad=True)),
    ("adamw", lambda: optim.AdamW(0.01, weight_decay=0.1),
     decayed_weights_only(T.AdamW, lr=0.01, weight_decay=0.1)),
    ("adamw_amsgrad_all", lambda: optim.AdamW(0.01, weight_decay=0.1, amsgrad=True,
                                              decay_bias=True),
     on_all(T.AdamW, lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("nadam", lambda: optim.Nadam(0.01, betas=(0.85, 0.99), momentum_decay=0.01,
                                  weight_decay=0.01),
     decayed_weights_only(T.NAdam, lr=0.01, betas=(0.85, 0.99), momentum_decay=0.01,
                          weight_decay=0.01)),
]


def train_both(make_gx: Callable[[], optim.Optimizer], make_torch: Callable,
               torch_after_backward: Callable | None = None):
    """``STEPS`` steps of both on the same batches; returns graphc's model, torch's params."""
    model = mlp()
    net, weights, biases = torch_copy(model)
    step = gx_step(model, make_gx())
    topt = make_torch(weights, biases)
    for xb, yb in BATCHES:
        step(xb, yb)
        topt.zero_grad()
        torch_loss(net, xb, yb).backward()
        if torch_after_backward is not None:
            torch_after_backward(weights + biases)
        topt.step()
    return model, weights, biases


@pytest.mark.parametrize("make_gx, make_torch",
                         [pytest.param(g, t, id=name) for name, g, t in CASES])
def test_steps_match_torch(make_gx, make_torch):
    model, weights, biases = train_both(make_gx, make_torch)
    assert_same_params(model, weights, biases)


# -- clipping against torch.nn.utils -------------------------------------------------------------

def _one_step_gradients(**options) -> tuple[list[np.ndarray], list]:
    """The gradients graphc's step used (SGD with lr 1: θ₀ − θ₁) and torch's raw ones."""
    model = mlp()
    net, weights, biases = torch_copy(model)
    before = [p.value.copy() for p in model.params()]
    gx_step(model, optim.SGD(1.0, **options))(*BATCHES[0])
    used = [b - p.value for b, p in zip(before, model.params(), strict=True)]
    torch_loss(net, *BATCHES[0]).backward()
    # graphc's params are (W, b) per layer; torch's in the same order
    return used, [weights[0], biases[0], weights[1], biases[1]]


def _as_graphc(t) -> np.ndarray:
    g = t.grad.numpy()
    return g.T if g.ndim == 2 else g


@pytest.mark.parametrize("limit", [0.05, 0.3, 100.0])
def test_clip_value_matches_clip_grad_value(limit):
    used, params = _one_step_gradients(clip_value=limit)
    torch.nn.utils.clip_grad_value_(params, limit)
    for mine, p in zip(used, params, strict=True):
        np.testing.assert_allclose(mine, _as_graphc(p), rtol=1e-12, atol=1e-15)
        assert np.abs(mine).max() <= limit * (1 + 1e-12)


@pytest.mark.parametrize("limit", [0.05, 0.3, 100.0])
def test_clip_norm_matches_clip_grad_norm(limit):
    used, params = _one_step_gradients(clip_norm=limit)
    norm = float(torch.nn.utils.clip_grad_norm_(params, limit))
    # torch divides by ‖g‖ + 1e-6: a relative difference of 1e-6/‖g‖ where it clips
    rtol = 2e-6 / norm if norm > limit else 1e-12
    for mine, p in zip(used, params, strict=True):
        np.testing.assert_allclose(mine, _as_graphc(p), rtol=rtol, atol=1e-15)
    total = np.sqrt(sum(np.sum(g * g) for g in used))
    np.testing.assert_allclose(total, min(norm, limit), rtol=1e-12)  # norm: before clipping


def test_training_with_clipping_matches_torch():
    limit = 0.2

    def clip(params):
        torch.nn.utils.clip_grad_value_(params, 0.25)
        torch.nn.utils.clip_grad_norm_(params, limit)

    model, weights, biases = train_both(
        lambda: optim.Adam(0.01, clip_value=0.25, clip_norm=limit), on_all(T.Adam, lr=0.01),
        torch_after_backward=clip)
    assert_same_params(model, weights, biases, rtol=1e-6, atol=1e-9)
