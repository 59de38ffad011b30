"""A loss that turns NaN or infinite stops training: the params keep the last finite step's
values and the error names the epoch, the step and the first non-finite layer."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc import nn, optim
from tests.train.common import assert_same_values, param_values


def ones_model() -> nn.Sequential:
    """Dense(2, relu) → Dense(1), every weight 1 and every bias 0, so overflow is exact
    arithmetic: float32 holds up to about 3.4e38."""
    model = nn.Sequential([nn.Dense(2, "relu"), nn.Dense(1)], input_shape=(2,))
    for p in model.params():
        p.value = np.full(p.shape, 1.0 if p.name.endswith("W") else 0.0, p.dtype)
    return model


def data_with(big: float) -> tuple[np.ndarray, np.ndarray]:
    """Six small rows, the fifth (batch 3 of 3 at batch size 2) filled with ``big``."""
    X = np.full((6, 2), 0.1, np.float32)
    X[4] = big
    return X, np.zeros((6, 1), np.float32)


# big value, the layer named, what its message says
OVERFLOWS = {
    # 2e38 + 2e38 = inf already in the first layer
    "first layer": (2e38, "dense", "layer 'dense' (Dense): its output holds 2 non-finite "
                    "values of 4 (the first is inf at index (0, 0))"),
    # the first layer gives 2e38 (finite); the second sums two of them: inf
    "second layer": (1e38, "dense_1", "layer 'dense_1' (Dense): its output holds 1 "
                     "non-finite value of 2 (the first is inf at index (0, 0))"),
    # every layer is finite (≈ 4e19); the squared error, ≈ 1.6e39, is not
    "the loss": (1e19, None, "every layer's params and outputs are finite, so the loss "
                 "itself overflowed"),
}


@pytest.mark.parametrize("big, layer, finding", OVERFLOWS.values(), ids=OVERFLOWS.keys())
def test_stops_naming_the_first_non_finite_layer(big, layer, finding):
    X, y = data_with(big)
    model, optimizer = ones_model(), optim.SGD(1e-3)
    with pytest.raises(gx.train.TrainingError) as caught:
        gx.train.fit(model, X, y, loss="mse", optimizer=optimizer, batch_size=2, epochs=3,
                     shuffle=False, progress=False)
    error = caught.value
    assert (error.epoch, error.step, error.layer) == (1, 3, layer)
    message = str(error)
    assert message.startswith("the loss became inf at epoch 1, step 3 of 3 (step 3 overall)")
    assert "params keep their values from the step before" in message
    assert finding in message
    assert len(error.history.step_loss) == 2

    # the failing step changed nothing: the params are those after the two good steps
    twin, twin_optimizer = ones_model(), optim.SGD(1e-3)
    gx.train.fit(twin, X[:4], y[:4], loss="mse", optimizer=twin_optimizer, batch_size=2,
                 epochs=1, shuffle=False, progress=False)
    assert_same_values(param_values(model), param_values(twin))
    assert int(optimizer.step.value) == 2


def test_non_finite_params_are_named():
    # lr · gradient overflows: the first step's loss is finite but its update makes the
    # weights infinite; the next step's loss is not finite, and the params are blamed
    X = np.ones((4, 1), np.float32)
    y = np.full((4, 1), 10.0, np.float32)
    model = nn.Sequential([nn.Dense(1)], input_shape=(1,))
    with pytest.raises(gx.train.TrainingError) as caught:
        gx.train.fit(model, X, y, loss="mse", optimizer=optim.SGD(3e38), batch_size=2,
                     shuffle=False, progress=False)
    assert (caught.value.epoch, caught.value.step, caught.value.layer) == (1, 2, "dense")
    assert "layer 'dense' (Dense): its param 'dense/W' holds 1 non-finite value" in \
        str(caught.value)


def test_the_diagnostic_pass_leaves_the_layers_as_they_were():
    X, y = data_with(2e38)
    model = ones_model()
    with pytest.raises(gx.train.TrainingError):
        gx.train.fit(model, X, y, loss="mse", optimizer=optim.SGD(1e-3), batch_size=2,
                     shuffle=False, progress=False)
    assert all("forward" not in vars(layer) for layer in [model, *model.layers])
    finite = gx.train.predict(model, X[:4])
    assert np.isfinite(finite).all()


@pytest.mark.skipif(not hasattr(nn, "Residual"), reason="graphc.nn has no Residual")
def test_the_layer_is_found_inside_a_wrapper():
    model = nn.Sequential([nn.Dense(4, "tanh"), nn.Residual(nn.Dense(4, "tanh")), nn.Dense(2)],
                          input_shape=(2,))
    inner = model.layers[1].f
    inner.W.value = np.where(np.eye(4, dtype=bool), np.nan, inner.W.value).astype(np.float32)
    X = np.ones((4, 2), np.float32)
    with pytest.raises(gx.train.TrainingError) as caught:
        gx.train.fit(model, X, np.array([0, 1, 0, 1]), optimizer=optim.SGD(0.1), progress=False)
    assert caught.value.layer == "residual/dense"
    assert ("layer 'residual/dense' (Dense): its param 'residual/dense/W' holds 4 non-finite "
            "values of 16") in str(caught.value)
