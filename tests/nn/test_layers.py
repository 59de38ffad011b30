"""Every layer of graphc.nn: values and gradients against torch or NumPy formulas, random
layers' statistics, output shapes with a symbolic batch, finite-difference gradients,
batch-norm running statistics over compiled steps, and the errors bad use gets."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import pytest

import graphc as gx
from graphc import nn
from graphc.ops.activations import ACTIVATIONS
from tests.helpers import assert_gradients, distinct, rand

torch = pytest.importorskip("torch")
F = torch.nn.functional


def run(layer: nn.Layer, x: np.ndarray, training: bool = True) -> np.ndarray:
    """The layer's output for ``x``, compiled and run."""
    xin = gx.input("x", x.shape, x.dtype)
    return gx.compile([xin], layer(xin, training=training))(x)


def against_torch(layer: nn.Layer, torch_fn: Callable, x: np.ndarray, *, training=True,
                  rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """Output and gradients (of ``Σ y·r``, r random) with respect to x and every trainable
    param agree with ``torch_fn(x_t, {short param name: tensor})``, all in float64."""
    x = np.asarray(x, np.float64)
    xin = gx.input("x", x.shape, "float64")
    y = layer(xin, training=training)
    params = layer.params()
    r = np.random.default_rng(0).standard_normal(y.shape)
    value, *grads = gx.compile([xin], [y, *gx.grad(gx.sum(y * r), [xin, *params])])(x)
    tx = torch.tensor(x, requires_grad=True)
    tp = {p.name.rsplit("/", 1)[-1]: torch.tensor(p.value, requires_grad=True) for p in params}
    ty = torch_fn(tx, tp)
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(value, ty.detach().numpy(), rtol=rtol, atol=atol)
    for name, mine, theirs in zip(["x", *tp], grads, [tx, *tp.values()], strict=True):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of {name}")


def built(layer: nn.Layer, shape: tuple, dtype: str = "float64") -> nn.Layer:
    layer(gx.input("x", shape, dtype))
    return layer


# -- convolution and pooling against torch ------------------------------------------------------

CONV_CASES = [
    # (Conv2d arguments, input shape, the same in torch's conv2d)
    ((4, 3), (2, 3, 6, 6), {}),
    ((4, (3, 2)), (2, 3, 7, 6), {"stride": 2, "padding": 1}),
    ((3, 3), (1, 2, 7, 7), {"stride": (2, 1), "padding": (1, 2), "dilation": 2}),
    ((6, 3), (2, 4, 5, 5), {"groups": 2, "padding": 1}),
    ((4, 3), (1, 4, 5, 5), {"groups": 4, "padding": "same"}),
]


@pytest.mark.parametrize("args, shape, kwargs", CONV_CASES)
@pytest.mark.parametrize("use_bias", [True, False])
def test_conv2d_against_torch(args, shape, kwargs, use_bias):
    layer = nn.Conv2d(*args, **kwargs, use_bias=use_bias)
    against_torch(layer, lambda x, p: F.conv2d(x, p["W"], p.get("b"), **kwargs), rand(*shape))


@pytest.mark.parametrize("activation, params, torch_fn", [
    ("relu", {}, F.relu),
    ("leaky_relu", {"alpha": 0.3}, lambda z: F.leaky_relu(z, 0.3)),
    ("gelu", {"approximate": "tanh"}, lambda z: F.gelu(z, approximate="tanh")),
    (gx.tanh, {}, torch.tanh),
])
def test_conv2d_activation_against_torch(activation, params, torch_fn):
    layer = nn.Conv2d(3, 3, padding=1, activation=activation, **params)
    against_torch(layer, lambda x, p: torch_fn(F.conv2d(x, p["W"], p["b"], padding=1)),
                  rand(2, 2, 5, 5))


def test_conv2d_weight_layout_and_initial_values():
    layer = built(nn.Conv2d(6, (3, 2), groups=2, bias_init="ones"), ("batch", 4, 8, 8))
    assert layer.W.shape == (6, 2, 3, 2) and layer.b.shape == (6,)
    np.testing.assert_array_equal(layer.b.value, np.ones(6))
    bound = np.sqrt(6 / (2 * 6 + 6 * 6))  # Glorot: fan_in = 2·3·2, fan_out = 6·3·2
    assert 0 < np.abs(layer.W.value).max() <= bound


@pytest.mark.parametrize("layer, torch_fn", [
    (nn.MaxPool2d(2), lambda x: F.max_pool2d(x, 2)),
    (nn.MaxPool2d(3, stride=2, padding=1), lambda x: F.max_pool2d(x, 3, 2, 1)),
    (nn.MaxPool2d((2, 3), stride=1, dilation=2), lambda x: F.max_pool2d(x, (2, 3), 1,
                                                                        dilation=2)),
    (nn.AvgPool2d(2), lambda x: F.avg_pool2d(x, 2)),
    (nn.AvgPool2d(3, stride=2, padding=1), lambda x: F.avg_pool2d(x, 3, 2, 1)),
    (nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
], ids=["max", "max-strided-padded", "max-dilated", "avg", "avg-padded", "avg-exclude-pad"])
def test_pooling_against_torch(layer, torch_fn):
    # distinct values: no ties, so the max's gradient has one answer
    against_torch(layer, lambda x, p: torch_fn(x), distinct(2, 3, 7, 7))


def test_flatten_keeps_the_batch_axis_in_c_order():
    x = rand(3, 2, 4, 5)
    np.testing.assert_array_equal(run(nn.Flatten(), x), x.reshape(3, 40))


# -- normalization against torch ----------------------------------------------------------------


def set_affine(layer: nn.Layer, rng: np.random.Generator) -> None:
    """Non-trivial γ and β, so the affine part is checked too."""
    for p in (layer.gamma, layer.beta):
        p.value = rng.standard_normal(p.shape)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 5), (4, 3, 6)], ids=["NC", "NCHW", "NCL"])
def test_batch_norm_training_against_torch(shape):
    layer = built(nn.BatchNorm(eps=1e-3), shape)
    set_affine(layer, np.random.default_rng(1))
    running = np.zeros(shape[1]), np.ones(shape[1])
    against_torch(layer, lambda x, p: F.batch_norm(
        x, torch.tensor(running[0]), torch.tensor(running[1]), p["gamma"], p["beta"],
        training=True, eps=1e-3), rand(*shape))


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 5)], ids=["NC", "NCHW"])
def test_batch_norm_inference_uses_the_running_statistics(shape):
    rng = np.random.default_rng(2)
    layer = built(nn.BatchNorm(), shape)
    set_affine(layer, rng)
    layer.running_mean.value = rng.standard_normal(shape[1])
    layer.running_var.value = rng.uniform(0.5, 2.0, shape[1])
    mean, var = (torch.tensor(p.value) for p in (layer.running_mean, layer.running_var))
    against_torch(layer, lambda x, p: F.batch_norm(x, mean, var, p["gamma"], p["beta"],
                                                   training=False), rand(*shape),
                  training=False)


def test_batch_norm_running_stats_after_three_compiled_steps_match_torch():
    """Three SGD steps on a loss through BatchNorm: running statistics (momentum 0.1,
    unbiased variance) and the trained γ, β equal torch's after the same batches."""
    layer = nn.BatchNorm(momentum=0.1)
    x = gx.input("x", ("batch", 3, 4, 4), "float64")
    loss = gx.mean(gx.square(layer(x) - 1.0) * gx.constant(np.arange(1.0, 4.0)[:, None, None]))
    opt = gx.optim.SGD(0.1)
    step = gx.compile([x], loss, updates={**opt.minimize(loss, layer.params()),
                                          **nn.state_updates(loss)})
    bn = torch.nn.BatchNorm2d(3, momentum=0.1).double().train()
    torch_opt = torch.optim.SGD(bn.parameters(), lr=0.1)
    rng = np.random.default_rng(3)
    for n in (8, 5, 6):  # a different batch size each step: the symbolic batch
        batch = rng.normal(2.0, 3.0, (n, 3, 4, 4))
        mine = step(batch)
        torch_opt.zero_grad()
        theirs = (torch.square(bn(torch.tensor(batch)) - 1.0)
                  * torch.arange(1.0, 4.0, dtype=torch.float64)[:, None, None]).mean()
        theirs.backward()
        torch_opt.step()
        np.testing.assert_allclose(mine, theirs.item(), rtol=1e-12)
    for param, theirs in [(layer.running_mean, bn.running_mean),
                          (layer.running_var, bn.running_var),
                          (layer.gamma, bn.weight), (layer.beta, bn.bias)]:
        np.testing.assert_allclose(param.value, theirs.detach().numpy(), rtol=1e-12,
                                   err_msg=param.name)
    assert not np.allclose(layer.running_var.value, 1.0)  # they did move


@pytest.mark.parametrize("shape, moves", [((1, 3), False), ((2, 3), True), ((1, 3, 2), True)],
                         ids=["one example", "two examples", "one example of two values"])
def test_batch_norm_running_stats_skip_a_batch_of_one_value_per_channel(shape, moves):
    """n/(n − 1) is 0/0 for one value per channel (a last batch of one example): the
    running statistics keep their values then, instead of turning NaN."""
    layer = nn.BatchNorm()
    x = gx.input("x", ("batch", *shape[1:]), "float64")
    y = layer(x)
    step = gx.compile([x], y, updates=nn.state_updates(y))
    batch = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    step(batch)
    n = batch.size // shape[1]
    values = np.moveaxis(batch, 1, 0).reshape(shape[1], n)
    want_mean = 0.1 * values.mean(axis=1) if moves else np.zeros(shape[1])
    want_var = 0.9 + 0.1 * values.var(axis=1, ddof=1) if moves else np.ones(shape[1])
    np.testing.assert_allclose(layer.running_mean.value, want_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var.value, want_var, rtol=1e-12)


@pytest.mark.parametrize("axes, shape", [(1, (4, 6)), (1, (2, 3, 5)), (2, (2, 3, 5)),
                                         (3, (2, 3, 4, 4))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_against_torch(axes, shape, affine):
    layer = built(nn.LayerNorm(axes=axes, elementwise_affine=affine), shape)
    normalized = shape[len(shape) - axes:]
    if affine:
        set_affine(layer, np.random.default_rng(4))
        assert layer.gamma.shape == layer.beta.shape == normalized
    else:
        assert layer.params() == []
    against_torch(layer, lambda x, p: F.layer_norm(x, normalized, p.get("gamma"),
                                                   p.get("beta")), rand(*shape))


# -- activations as layers ----------------------------------------------------------------------


ACTIVATION_CASES = [
    (nn.ReLU(), F.relu), (nn.ReLU6(), F.relu6), (nn.Sigmoid(), torch.sigmoid),
    (nn.Tanh(), torch.tanh), (nn.LogSigmoid(), F.logsigmoid),
    (nn.LeakyReLU(alpha=0.2), lambda x: F.leaky_relu(x, 0.2)),
    (nn.LeakyReLU(0.3), lambda x: F.leaky_relu(x, 0.3)),
    (nn.ELU(alpha=0.5), lambda x: F.elu(x, 0.5)), (nn.SELU(), F.selu),
    (nn.CELU(alpha=2.0), lambda x: F.celu(x, 2.0)),
    (nn.GELU(), F.gelu), (nn.GELU(approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")),
    (nn.SiLU(), F.silu), (nn.Mish(), F.mish),
    (nn.Softplus(beta=2.0, threshold=3.0), lambda x: F.softplus(x, 2.0, 3.0)),
    (nn.Softsign(), F.softsign), (nn.Hardtanh(-2.0, 0.5), lambda x: F.hardtanh(x, -2.0, 0.5)),
    (nn.Hardsigmoid(), F.hardsigmoid), (nn.Hardswish(), F.hardswish),
    (nn.Tanhshrink(), F.tanhshrink), (nn.Softshrink(0.3), lambda x: F.softshrink(x, 0.3)),
    (nn.Hardshrink(lambd=0.3), lambda x: F.hardshrink(x, 0.3)),
    (nn.Threshold(0.1, -2.0), lambda x: F.threshold(x, 0.1, -2.0)),
    (nn.RReLU(0.1, 0.3), lambda x: F.rrelu(x, 0.1, 0.3, training=False)),
    (nn.Softmax(), lambda x: F.softmax(x, -1)), (nn.Softmax(axis=1), lambda x: F.softmax(x, 1)),
    (nn.LogSoftmax(), lambda x: F.log_softmax(x, -1)),
    (nn.Activation("elu", alpha=0.7), lambda x: F.elu(x, 0.7)),
    (nn.Activation(gx.softplus, beta=3.0), lambda x: F.softplus(x, 3.0)),
]


@pytest.mark.parametrize("layer, torch_fn", ACTIVATION_CASES, ids=lambda v: getattr(v, "name", ""))
def test_activation_layers_against_torch(layer, torch_fn):
    # RReLU compares in inference (its fixed mean slope); the rest in training mode
    training = not isinstance(layer, nn.RReLU)
    # torch's float64 hardsigmoid backward multiplies by a float32 1/6
    rtol = 1e-7 if isinstance(layer, nn.Hardsigmoid) else 1e-10
    against_torch(layer, lambda x, p: torch_fn(x), distinct(3, 4, 5) - 3.0, training=training,
                  rtol=rtol)


@pytest.mark.parametrize("shape, num_parameters", [((4, 3), 1), ((4, 3), 3), ((2, 3, 4, 4), 3)])
def test_prelu_learns_its_slopes_against_torch(shape, num_parameters):
    layer = built(nn.PReLU(num_parameters, init=0.1), shape)
    np.testing.assert_array_equal(layer.alpha.value, np.full(num_parameters, 0.1))
    layer.alpha.value = np.linspace(0.1, 0.5, num_parameters)
    against_torch(layer, lambda x, p: F.prelu(x, p["alpha"]), rand(*shape))


#: the parameters an activation needs to be built at all
REQUIRED = {"threshold": {"threshold": 0.1, "value": -1.0}}


@pytest.mark.parametrize("name", sorted(nn.FUNCTIONS))
def test_every_activation_has_its_layer_computing_the_function(name):
    cls = nn.ACTIVATION_LAYERS[name]
    assert getattr(nn, cls.__name__) is cls and cls.__module__ == "graphc.nn.layers"
    if name == "prelu":  # learns its slope: checked against torch above
        return
    assert f"y = gx.{name}(x, **params)" in cls.__doc__
    layer = cls(**REQUIRED.get(name, {}))
    assert layer.name == name and isinstance(layer, nn.Activation)
    x = distinct(2, 6) - 0.55
    expected = gx.compile([], nn.FUNCTIONS[name](gx.constant(x), **REQUIRED.get(name, {})))()
    # `expected` is constant-folded by NumPy; on llvm the layer runs its vector math
    np.testing.assert_allclose(run(layer, x, training=False), expected, rtol=1e-14, atol=1e-16)


def test_the_registry_is_covered_and_class_names_read_like_torch():
    assert set(nn.ACTIVATION_LAYERS) == set(ACTIVATIONS) | {"softmax", "log_softmax"}
    names = {name: cls.__name__ for name, cls in nn.ACTIVATION_LAYERS.items()}
    assert {names[k] for k in ("relu", "leaky_relu", "gelu", "silu", "logsigmoid",
                               "piecewise_linear", "log_softmax", "hardtanh")} == \
        {"ReLU", "LeakyReLU", "GELU", "SiLU", "LogSigmoid", "PiecewiseLinear", "LogSoftmax",
         "Hardtanh"}


def test_generated_docstrings_state_the_math_and_the_parameters():
    doc = inspect.getdoc(nn.LeakyReLU)
    assert "x for x > 0, α·x otherwise" in doc
    assert "alpha : float, default 0.01" in doc
    assert "Parameters\n----------" in inspect.getdoc(nn.GELU)
    assert 'approximate : {"none", "tanh"}, default \'none\'' in inspect.getdoc(nn.GELU)


@pytest.mark.parametrize("layer, text", [
    (nn.LeakyReLU(0.2), "LeakyReLU(alpha=0.2, name='leaky_relu')"),
    (nn.ReLU(name="act"), "ReLU(name='act')"),
    (nn.Activation("elu", alpha=2.0), "Activation('elu', alpha=2.0, name='elu')"),
    (nn.Activation(lambda x: 2 * x), "Activation('lambda', name='lambda')"),
])
def test_activation_layer_repr(layer, text):
    assert repr(layer) == text


def test_activation_of_a_user_function():
    layer = nn.Activation(lambda x, k: k * gx.square(x), k=3.0)
    x = rand(2, 3)
    np.testing.assert_allclose(run(layer, x), 3 * x**2, rtol=1e-15)
    assert layer.activation_params == {"k": 3.0}


def test_rrelu_layer_draws_slopes_in_training_only():
    x = -np.ones((200, 50))
    slopes = -run(nn.RReLU(0.1, 0.3), x)
    assert 0.1 <= slopes.min() < 0.11 and 0.29 < slopes.max() < 0.3
    np.testing.assert_allclose(slopes.mean(), 0.2, atol=0.005)
    np.testing.assert_allclose(-run(nn.RReLU(0.1, 0.3), x, training=False), 0.2)


# -- composite layers against NumPy formulas ----------------------------------------------------


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_dense_against_numpy():
    layer = built(nn.Dense(4, "tanh", bias_init="normal"), (5, 3))
    x = rand(5, 3)
    np.testing.assert_allclose(run(layer, x), np.tanh(x @ layer.W.value + layer.b.value),
                               rtol=1e-12)


def test_dense_takes_activations_it_cannot_fuse():
    layer = built(nn.Dense(4, "softmax"), (5, 3))
    x = rand(5, 3)
    z = np.exp(x @ layer.W.value)
    np.testing.assert_allclose(run(layer, x), z / z.sum(-1, keepdims=True), rtol=1e-12)


def test_highway_against_its_formula():
    layer = built(nn.Highway("tanh", gate_bias_init=-2.0, bias_init="normal"), (6, 4))
    np.testing.assert_array_equal(layer.b_T.value, np.full(4, -2.0))
    x = rand(6, 4)
    h = np.tanh(x @ layer.W_H.value + layer.b_H.value)
    t = sigmoid(x @ layer.W_T.value + layer.b_T.value)
    np.testing.assert_allclose(run(layer, x), t * h + (1 - t) * x, rtol=1e-12)


def test_highway_starts_biased_towards_carrying_the_input():
    layer = built(nn.Highway(), (6, 4))  # gate bias −1 and a small x: T ≈ σ(−1) ≈ 0.27
    t = sigmoid(1e-3 * rand(6, 4) @ layer.W_T.value + layer.b_T.value)
    np.testing.assert_allclose(t, sigmoid(-1.0), atol=1e-2)


def test_residual_against_its_formula():
    layer = built(nn.Residual(nn.Dense(4, "tanh")), (3, 4))
    dense = layer.f
    x = rand(3, 4)
    np.testing.assert_allclose(run(layer, x), x + np.tanh(x @ dense.W.value + dense.b.value),
                               rtol=1e-12)
    assert [p.name for p in layer.params()] == ["residual/dense/W", "residual/dense/b"]


@pytest.mark.parametrize("units, pieces", [(3, 2), (2, 4), (4, 1)])
def test_maxout_against_its_formula(units, pieces):
    layer = built(nn.Maxout(units, pieces, bias_init="normal"), (5, 3))
    assert layer.W.shape == (3, units * pieces)
    x = rand(5, 3)
    z = x @ layer.W.value + layer.b.value
    np.testing.assert_allclose(run(layer, x), z.reshape(5, units, pieces).max(-1), rtol=1e-12)


# -- random layers: statistics ------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    x = np.ones((400, 250))  # 10⁵ draws: the fraction of zeros is p within ±0.005 (3σ)
    y = run(nn.Dropout(p), x)
    dropped = y == 0
    assert abs(dropped.mean() - p) < 0.006
    np.testing.assert_allclose(y[~dropped], 1 / (1 - p))    # inverted: kept values scaled
    assert abs(y.mean() - 1.0) < 0.02                        # so the mean is preserved


@pytest.mark.parametrize("layer", [nn.Dropout(0.5), nn.DropConnect(4, 0.5)],
                         ids=["dropout", "dropconnect"])
def test_random_layers_are_deterministic_at_inference(layer):
    x = rand(6, 4)
    y = run(layer, x, training=False)
    expected = x if isinstance(layer, nn.Dropout) else x @ layer.W.value + layer.b.value
    np.testing.assert_array_equal(y, expected)


def test_dropout_at_inference_is_the_input_node_itself():
    x = gx.input("x", ("batch", 3))
    assert nn.Dropout(0.3)(x, training=False) is x


def test_dropout_draws_a_fresh_mask_at_every_call_reproducibly_from_the_seed():
    def masks(seed):
        model = nn.Sequential([nn.Dropout(0.5)], seed=seed)
        x = gx.input("x", ("batch", 64), "float64")
        f = gx.compile([x], model(x))
        return [f(np.ones((4, 64))) for _ in range(2)]
    first, again, other = masks(0), masks(0), masks(1)
    assert not np.array_equal(first[0], first[1])
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_two_dropout_layers_draw_different_masks():
    model = nn.Sequential([nn.Dropout(0.5), nn.Dropout(0.0), nn.Dropout(0.5)])
    x = gx.input("x", (1, 256), "float64")
    h = model.layers[0](x)
    g = model.layers[2](x)
    a, b = gx.compile([x], [h, g])(np.ones((1, 256)))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_dropconnect_drops_weights_with_probability_p(p):
    layer = built(nn.DropConnect(64, p), (64, 64))
    # x = I: the output is the (dropped, rescaled) weight matrix itself
    y = run(layer, np.eye(64))
    dropped = y == 0
    assert abs(dropped.mean() - p) < 0.03                   # 4096 weights: 3σ ≈ 0.02
    np.testing.assert_allclose(y[~dropped], layer.W.value[~dropped] / (1 - p), rtol=1e-12)


def test_dropconnect_preserves_the_mean():
    layer = built(nn.DropConnect(100, 0.5, kernel_init="ones", use_bias=False), (1, 400))
    y = run(layer, np.ones((1, 400)))  # each unit: Σ of 400 kept weights ×2, mean 400
    assert abs(y.mean() / 400 - 1) < 0.02


# -- output shapes with a symbolic batch --------------------------------------------------------

SHAPE_CASES = [
    (lambda: nn.Dense(5), ("batch", 3), ("batch", 5)),
    (lambda: nn.Dense(5), ("batch", 7, 3), ("batch", 7, 5)),
    (lambda: nn.Conv2d(4, 3), ("batch", 2, 8, 8), ("batch", 4, 6, 6)),
    (lambda: nn.Conv2d(4, 3, stride=2, padding="same"), ("batch", 2, 8, 8), ("batch", 4, 4, 4)),
    (lambda: nn.Conv2d(4, (1, 3), dilation=2), ("batch", 2, 8, 8), ("batch", 4, 8, 4)),
    (lambda: nn.MaxPool2d(2), ("batch", 2, 8, 8), ("batch", 2, 4, 4)),
    (lambda: nn.AvgPool2d(3, 1, 1), ("batch", 2, 8, 8), ("batch", 2, 8, 8)),
    (lambda: nn.Flatten(), ("batch", 2, 3, 4), ("batch", 24)),
    (lambda: nn.BatchNorm(), ("batch", 3, 4, 4), ("batch", 3, 4, 4)),
    (lambda: nn.BatchNorm1d(), ("batch", 3), ("batch", 3)),
    (lambda: nn.LayerNorm(), ("batch", 5), ("batch", 5)),
    (lambda: nn.LayerNorm(axes=2), ("batch", 4, 5), ("batch", 4, 5)),
    (lambda: nn.Dropout(), ("batch", 5), ("batch", 5)),
    (lambda: nn.DropConnect(6), ("batch", 5), ("batch", 6)),
    (lambda: nn.Residual(nn.Dense(5)), ("batch", 5), ("batch", 5)),
    (lambda: nn.Highway(), ("batch", 5), ("batch", 5)),
    (lambda: nn.Maxout(4, 3), ("batch", 5), ("batch", 4)),
    (lambda: nn.ReLU(), ("batch", 5), ("batch", 5)),
    (lambda: nn.PReLU(3), ("batch", 3, 2, 2), ("batch", 3, 2, 2)),
    (lambda: nn.Softmax(axis=1), ("batch", 5), ("batch", 5)),
]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("make, shape, expected", SHAPE_CASES,
                         ids=[f"{k}" for k in range(len(SHAPE_CASES))])
def test_output_shapes_with_a_symbolic_batch(make, shape, expected, training):
    layer = make()
    x = gx.input("x", shape)
    y = layer(x, training=training)
    assert y.shape == expected and y.dtype == "float32"
    assert layer.input_type.shape == shape and layer.output_type.shape == expected
    values = gx.compile([x], y)(np.ones((2, *shape[1:]), "float32"))  # runs with batch 2
    assert values.shape == (2, *expected[1:])


# -- gradients by finite differences ------------------------------------------------------------


GRADIENT_CASES = [
    (lambda: nn.Conv2d(2, 2, stride=2, padding=1, activation="tanh"), (2, 2, 5, 5)),
    (lambda: nn.BatchNorm(), (4, 2, 3, 3)),
    (lambda: nn.LayerNorm(axes=2), (2, 3, 4)),
    (lambda: nn.AvgPool2d(2, 1), (1, 2, 4, 4)),
    (lambda: nn.Highway("softplus"), (3, 4)),
    (lambda: nn.Residual(nn.Dense(4, "sigmoid")), (3, 4)),
    (lambda: nn.Maxout(2, 3), (3, 4)),
]


@pytest.mark.parametrize("make, shape", GRADIENT_CASES,
                         ids=["conv2d", "batch_norm", "layer_norm", "avg_pool2d", "highway",
                              "residual", "maxout"])
def test_gradients_by_finite_differences(make, shape):
    layer = make()
    # distinct inputs keep maxout's pieces apart (no ties at the point)
    assert_gradients(lambda x: layer(x), distinct(*shape) - shape[-1] / 10)


# -- errors -------------------------------------------------------------------------------------


def test_dense_called_on_more_features_than_it_was_built_for():
    layer = built(nn.Dense(3), ("batch", 4), "float32")
    with pytest.raises(ValueError, match=r"Dense 'dense': was built for input of 4 features "
                                         r"\(W of shape \(4, 3\)\), got input of shape "
                                         r"\(batch, 5\)"):
        layer(gx.input("x", ("batch", 5)))


def test_residual_branch_that_changes_the_shape():
    with pytest.raises(ValueError, match=r"Residual 'residual': x \+ f\(x\) needs f to keep the "
                                         r"input's shape, but Dense 'dense' maps \(batch, 4\) "
                                         r"to \(batch, 3\)"):
        nn.Residual(nn.Dense(3))(gx.input("x", ("batch", 4)))


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.Dense(0), ValueError, "Dense: units must be a positive int, got 0"),
    (lambda: nn.Dense(3, "relu6x"), ValueError, "Dense: unknown activation 'relu6x'; known:"),
    (lambda: nn.Dense(3, alpha=0.2), TypeError, r"activation parameters \{'alpha': 0.2\} "
                                                "given without an activation"),
    (lambda: nn.Conv2d(8, 0), ValueError, "Conv2d: kernel_size must be a positive int, got 0"),
    (lambda: nn.Conv2d(8, (3, 3, 3)), ValueError, "kernel_size must be an int or a pair"),
    (lambda: nn.Conv2d(6, 3, groups=4), ValueError, "groups=4 must divide out_channels=6"),
    (lambda: nn.MaxPool2d(2, stride=-1), ValueError, "MaxPool2d: stride must be a positive"),
    (lambda: nn.AvgPool2d("2"), ValueError, "AvgPool2d: kernel must be an int or a pair"),
    (lambda: nn.Dropout(1.5), ValueError, r"Dropout: p must be a probability in \[0, 1\], "
                                          "got 1.5"),
    (lambda: nn.DropConnect(4, p=-0.1), ValueError, "DropConnect: p must be a probability"),
    (lambda: nn.BatchNorm(momentum=2), ValueError, r"momentum must be in \[0, 1\], got 2"),
    (lambda: nn.LayerNorm(eps=0), ValueError, "LayerNorm: eps must be > 0, got 0"),
    (lambda: nn.Maxout(3, pieces=0), ValueError, "Maxout: pieces must be a positive int"),
    (lambda: nn.Residual("dense"), TypeError, "Residual wraps a Layer, got 'dense'"),
    (lambda: nn.LeakyReLU(alpah=0.1), TypeError,
     r"LeakyReLU: bad arguments for leaky_relu \(got an unexpected keyword argument 'alpah'\); "
     "it takes alpha"),
    (lambda: nn.ReLU(0.1), TypeError, "ReLU: bad arguments for relu .*it takes no parameters"),
    (lambda: nn.Threshold(), TypeError, "missing a required argument: 'threshold'"),
    (lambda: nn.GELU(approximate="cubic"), ValueError,
     "GELU: gelu refuses {'approximate': 'cubic'}: gelu: approximate must be 'none' or 'tanh'"),
    (lambda: nn.Hardtanh(1.0, -1.0), ValueError, "min_val=1.0 is greater than max_val=-1.0"),
    (lambda: nn.RReLU(training=True), TypeError, "'training' is set by the layer at each call"),
    (lambda: nn.Activation("nope"), ValueError, "Activation: unknown activation 'nope'"),
    (lambda: nn.Activation(3), TypeError, "an activation is a name or a function, got 3"),
])
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("make, shape, message", [
    (lambda: nn.Dense(3), ("batch", "features"), r"Dense 'dense': needs input of shape "
                                                 r"\(\.\.\., features\) with a fixed last dim, "
                                                 r"got input of shape \(batch, features\)"),
    (lambda: nn.Conv2d(4, 3), ("batch", 3), r"Conv2d 'conv2d': needs input of shape "
                                            r"\(N, C, H, W\) with a fixed C, got input of "
                                            r"shape \(batch, 3\)"),
    (lambda: nn.Conv2d(4, 3, groups=2), ("batch", 3, 8, 8), "groups=2 must divide the input "
                                                            "channels"),
    (lambda: nn.BatchNorm(), ("batch",), r"BatchNorm 'batch_norm': needs input of shape "
                                         r"\(N, C, \.\.\.\)"),
    (lambda: nn.Flatten(), ("batch", "h", 4), r"Flatten 'flatten': needs input of shape "
                                              r"\(N, \.\.\.\) with fixed dims after the first, "
                                              r"got input of shape \(batch, h, 4\)"),
    (lambda: nn.LayerNorm(axes=3), ("batch", 4), "needs 3 fixed trailing dim"),
    (lambda: nn.PReLU(3), ("batch", 4), "has 3 slopes, one per channel of axis 1"),
])
def test_inputs_a_layer_cannot_be_built_for(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make()(gx.input("x", shape))


@pytest.mark.parametrize("make, first, second, message", [
    (lambda: nn.Conv2d(4, 3), (1, 3, 8, 8), (1, 4, 8, 8), r"was built for \(N, 3, H, W\) input"),
    (lambda: nn.BatchNorm(), (2, 3), (2, 4), "was built for input of 3 channels"),
    (lambda: nn.LayerNorm(), (2, 3), (2, 4), r"was built to normalize over trailing dims \(3,\)"),
    (lambda: nn.Highway(), (2, 3), (2, 4), "was built for input of 3 features"),
    (lambda: nn.Maxout(2), (2, 3), (2, 4), "was built for input of 3 features"),
])
def test_later_calls_must_fit_the_built_params(make, first, second, message):
    layer = built(make(), first, "float32")
    with pytest.raises(ValueError, match=message):
        layer(gx.input("x", second))
