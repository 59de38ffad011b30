"""Models built from layers: unique names, params named by scope path, seeding, the
summary table, state updates across training and inference graphs, drawings clustered
by layer, and a small CNN that trains with a compiled step."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc import nn
from tests.viz.dot import label_text, parse


def names(model: nn.Sequential) -> list[str]:
    return [layer.name for layer in model.layers]


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layers, expected", [
    ([nn.Dense(4), nn.Dense(4), nn.Conv2d(2, 3), nn.Conv2d(2, 3), nn.BatchNorm(),
      nn.BatchNorm2d(), nn.ReLU(), nn.ReLU(), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
      nn.Flatten(), nn.Dropout(), nn.Dense(3, name="head")],
     ["dense", "dense_1", "conv2d", "conv2d_1", "batch_norm", "batch_norm_1", "relu", "relu_1",
      "leaky_relu", "max_pool2d", "flatten", "dropout", "head"]),
    # a name the user gave is kept; the generated one steps aside
    ([nn.Dense(2), nn.Dense(2, name="dense")], ["dense_1", "dense"]),
    ([nn.Residual(nn.Dense(2)), nn.Residual(nn.Dense(2)), nn.Highway(), nn.Maxout(2),
      nn.LayerNorm(), nn.DropConnect(2), nn.AvgPool2d(2), nn.Activation("tanh"),
      nn.Activation(gx.softplus), nn.PReLU(), nn.Softmax(), nn.LogSoftmax()],
     ["residual", "residual_1", "highway", "maxout", "layer_norm", "drop_connect",
      "avg_pool2d", "tanh", "softplus", "prelu", "softmax", "log_softmax"]),
])
def test_sequential_gives_layers_unique_names(layers, expected):
    assert names(nn.Sequential(layers)) == expected


def test_names_are_unique_through_nested_sequentials():
    inner = nn.Sequential([nn.Dense(2), nn.Dense(2)])  # dense, dense_1 on their own
    outer = nn.Sequential([nn.Dense(2), inner, nn.Dense(2)])
    assert [names(outer)[0], *names(inner), names(outer)[2]] == [
        "dense", "dense_1", "dense_2", "dense_3"]


def test_a_layer_used_twice_is_named_once():
    shared = nn.Dense(3)
    model = nn.Sequential([nn.Dense(3), shared, nn.ReLU(), shared])
    assert names(model) == ["dense", "dense_1", "relu", "dense_1"]
    model(gx.input("x", ("batch", 3)))
    assert list(model.named_params()) == ["dense/W", "dense/b", "dense_1/W", "dense_1/b"]


def test_a_built_model_keeps_its_names_when_nested():
    encoder = nn.Sequential([nn.Dense(3)], input_shape=(4,))  # params dense/W, dense/b
    model = nn.Sequential([nn.Dense(4), encoder])
    assert names(model)[0] == "dense_1" and names(encoder) == ["dense"]
    model(gx.input("x", ("batch", 4)))
    assert list(model.named_params()) == ["dense_1/W", "dense_1/b", "dense/W", "dense/b"]


def test_built_models_whose_names_collide_cannot_nest():
    first = nn.Sequential([nn.Dense(3)], input_shape=(4,))
    second = nn.Sequential([nn.Dense(2)], input_shape=(3,))
    with pytest.raises(ValueError, match="two layers are named 'dense'; built layers keep "
                                         "their names, which their params carry"):
        nn.Sequential([first, second])
    assert names(second) == ["dense"] and second.layers[0].W.name == "dense/W"


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.Sequential([nn.Dense(2, name="a"), nn.Dense(3, name="a")]), ValueError,
     "two layers are named 'a'"),
    (lambda: nn.Dense(2, name="a/b"), ValueError, "layer names are non-empty strings without "
                                                  "'/', got 'a/b'"),
    (lambda: nn.Sequential([nn.Dense(2), "relu"]), TypeError, "Sequential takes layers, got "
                                                              "'relu'"),
])
def test_naming_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_an_initializer_of_the_wrong_shape_is_named():
    def flat(shape, rng, dtype):
        return np.zeros(shape[-1], dtype)

    with pytest.raises(ValueError, match=r"Dense 'dense': the initializer 'flat' gave shape "
                                         r"\(3,\) for 'dense/W' of shape \(2, 3\)"):
        nn.Dense(3, kernel_init=flat)(gx.input("x", ("batch", 2)))


# -- params by scope path -----------------------------------------------------------------------


def test_params_are_named_by_scope_path():
    model = nn.Sequential([nn.Dense(4), nn.Dense(4), nn.Residual(nn.Dense(4)),
                           nn.Residual(nn.Sequential([nn.Dense(4, "relu"), nn.Dense(4)])),
                           nn.BatchNorm()])
    model(gx.input("x", ("batch", 3)))
    assert [p.name for p in model.params()] == [
        "dense/W", "dense/b", "dense_1/W", "dense_1/b", "residual/dense/W", "residual/dense/b",
        "residual_1/dense/W", "residual_1/dense/b", "residual_1/dense_1/W",
        "residual_1/dense_1/b", "batch_norm/gamma", "batch_norm/beta"]
    assert [p.name for p in model.state()] == ["batch_norm/running_mean",
                                               "batch_norm/running_var"]
    named = model.named_params()
    assert named["residual/dense/W"] is model.layers[2].f.W
    assert named["batch_norm/running_var"] is model.layers[4].running_var


def test_a_failed_first_call_builds_nothing():
    model = nn.Sequential([nn.Dense(8), nn.BatchNorm(), nn.Conv2d(2, 3)])
    with pytest.raises(ValueError, match=r"Conv2d 'conv2d': needs input of shape \(N, C, H, W\)"):
        model(gx.input("x", ("batch", 6)))  # Dense and BatchNorm build, then Conv2d fails
    assert not model.built and not any(layer.built for layer in model.layers)
    assert model.params() == [] and model.state() == []
    y = model(gx.input("x", ("batch", 3, 5, 4)))  # the corrected call builds afresh
    assert y.shape == ("batch", 2, 3, 6)
    assert model.layers[0].W.shape == (4, 8) and model.layers[1].gamma.shape == (3,)


def test_a_second_call_reuses_the_params():
    model = nn.Sequential([nn.Dense(4), nn.BatchNorm(), nn.Dense(2)])
    x = gx.input("x", ("batch", 3))
    model(x)
    before = model.named_params()
    model(x, training=False)
    model(gx.input("x2", (5, 3)))
    assert model.named_params() == before


# -- seeds ------------------------------------------------------------------------------------


def weights(seed: int) -> dict[str, np.ndarray]:
    model = nn.Sequential([nn.Conv2d(4, 3, padding=1), nn.BatchNorm(), nn.Flatten(),
                           nn.Highway(), nn.Dense(3, kernel_init="orthogonal")], seed=seed)
    model(gx.input("x", ("batch", 2, 3, 3)))
    return {name: p.value for name, p in model.named_params().items()}


def test_one_seed_gives_one_model():
    first, second = weights(0), weights(0)
    assert list(first) == list(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_another_seed_changes_every_random_weight():
    first, other = weights(0), weights(1)
    random = ["conv2d/W", "highway/W_H", "highway/W_T", "dense/W"]
    for name in random:
        assert not np.any(first[name] == other[name]), name
    for name in set(first) - set(random):  # biases and norm params start at their constants
        np.testing.assert_array_equal(first[name], other[name])


# -- summary ------------------------------------------------------------------------------------

SUMMARY = """\
Model: "sequential"
───────────────────────────────────────────────
Layer (type)            Output Shape  Param #
═══════════════════════════════════════════════
dense (Dense)           (batch, 10)        50
batch_norm (BatchNorm)  (batch, 10)        40
relu (ReLU)             (batch, 10)         0
dropout (Dropout)       (batch, 10)         0
head (Dense)            (batch, 3)         33
───────────────────────────────────────────────
Total params: 123
Trainable params: 103
Non-trainable params: 20"""


def test_summary_text():
    # dense 4·10 + 10, batch norm γ, β (trainable) and running mean, var (not), head 10·3 + 3
    model = nn.Sequential([nn.Dense(10), nn.BatchNorm(), nn.ReLU(), nn.Dropout(0.2),
                           nn.Dense(3, name="head")], input_shape=(4,))
    printed = []
    assert model.summary(print_fn=printed.append) == SUMMARY
    assert printed == [SUMMARY]


def test_summary_before_build_is_an_error():
    with pytest.raises(ValueError, match="'sequential' has not been built: call it on an "
                                         "input"):
        nn.Sequential([nn.Dense(3)]).summary()


# -- state updates ------------------------------------------------------------------------------


def test_state_updates_across_training_and_inference_graphs():
    model = nn.Sequential([nn.Dense(4), nn.BatchNorm(eps=1e-3), nn.Dense(2)])
    dense, bn, head = model.layers
    x = gx.input("x", ("batch", 3), "float64")
    train, infer = model(x), model(x, training=False)
    loss = gx.mean(gx.square(train))

    updates = nn.state_updates(loss)
    assert set(updates) == {bn.running_mean, bn.running_var} == set(model.state())
    assert nn.state_updates(infer) == {}
    assert nn.state_updates(loss, infer) == updates

    step = gx.compile([x], loss, updates={**gx.optim.SGD(0.1).minimize(loss, model.params()),
                                          **updates})
    X = np.random.default_rng(0).normal(1.0, 2.0, (16, 3))
    h = X @ dense.W.value + dense.b.value  # the batch norm's input before the step
    step(X)
    np.testing.assert_allclose(bn.running_mean.value, 0.1 * h.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.value, 0.9 + 0.1 * h.var(0, ddof=1), rtol=1e-12)

    # inference normalizes with the running statistics (and the updated weights)
    h = X @ dense.W.value + dense.b.value
    normalized = (h - bn.running_mean.value) / np.sqrt(bn.running_var.value + 1e-3)
    expected = (normalized * bn.gamma.value + bn.beta.value) @ head.W.value + head.b.value
    np.testing.assert_allclose(gx.compile([x], infer)(X), expected, rtol=1e-12)


def test_two_training_calls_in_one_graph_are_an_error():
    model = nn.Sequential([nn.BatchNorm()])
    a, b = gx.input("a", ("batch", 3)), gx.input("b", ("batch", 3))
    loss = gx.mean(model(a)) + gx.mean(model(b))
    with pytest.raises(ValueError, match="'batch_norm/running_mean' is updated by two calls of "
                                         "its layer in one graph"):
        nn.state_updates(loss)


# -- drawings -----------------------------------------------------------------------------------


def test_layers_are_drawn_as_clusters_holding_their_params():
    model = nn.Sequential([nn.Dense(4, "relu"), nn.BatchNorm(), nn.Residual(nn.Dense(4)),
                           nn.Dense(2)])
    x = gx.input("x", ("batch", 3))
    # both graphs: the inference one reads the running statistics
    dot = parse(gx.viz.draw([model(x), model(x, training=False)]).source)

    def title(cluster):
        return label_text(dot.clusters[cluster].get("label", "")).split("\n")[0]

    def contents(cluster):
        return {dot.text(n).split("\n")[0] for n in dot.members[cluster]}

    nesting = sorted((title(c), title(parent) if parent else "")
                     for c, parent in dot.parent.items())
    assert nesting == [("batch_norm", ""), ("dense", ""), ("dense", "residual"),
                       ("dense_1", ""), ("residual", "")]
    inner = next(c for c, parent in dot.parent.items() if parent is not None)
    assert {"residual/dense/W", "residual/dense/b"} <= contents(inner)
    assert {"batch_norm/gamma", "batch_norm/beta", "batch_norm/running_mean",
            "batch_norm/running_var"} <= contents(dot.cluster_named("batch_norm"))


# -- a small CNN trains -------------------------------------------------------------------------


def test_a_small_cnn_trains_with_a_compiled_step():
    model = nn.Sequential([nn.Conv2d(8, 3, padding=1, activation="relu"), nn.BatchNorm(),
                           nn.MaxPool2d(2), nn.Flatten(), nn.Dense(10)])
    x, y = gx.input("x", ("batch", 1, 8, 8)), gx.input("y", ("batch",), "int64")
    logits = model(x)
    assert logits.shape == ("batch", 10)
    loss = gx.cross_entropy(logits, y, reduction="mean")
    step = gx.compile([x, y], loss, updates={**gx.optim.SGD(0.1).minimize(loss, model.params()),
                                             **nn.state_updates(loss)})
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 1, 8, 8)).astype("float32")
    Y = rng.integers(0, 10, 16)
    losses = [float(step(X, Y)) for _ in range(5)]
    assert all(np.diff(losses) < 0), losses
    assert losses[-1] < losses[0] / 2, losses
    assert not np.allclose(model.layers[1].running_mean.value, 0.0)
    predict = gx.compile([x], model(x, training=False))
    assert predict(X[:3]).shape == (3, 10)
