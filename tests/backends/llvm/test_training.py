"""Training on the llvm backend follows the numpy backend step for step.

Two copies of one MLP (same seed, so the same initial params) are trained by the same
optimizer on the same batches, one compiled with each backend. After every step the
losses agree, and at the end every param and every optimizer state does: to 1e-10 in
float64, to 1e-4 relative in float32 (the two backends sum in different orders).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import graphc as gx
from graphc import nn, optim

STEPS = 30
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 1e-6}}
OPTIMIZERS: dict[str, Callable[[], optim.Optimizer]] = {
    "sgd_momentum": lambda: optim.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optim.Adam(1e-2, weight_decay=1e-3),
}


def _data(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 4)).astype(dtype)
    y = (X[:, 0] * X[:, 1] > 0).astype("int64") + (X[:, 2] > 1).astype("int64")  # 3 classes
    return X, y


def _train(backend: str, dtype: str, make_optimizer) -> tuple[list[float], dict, dict]:
    """Losses of every step, and the final params and optimizer state, by name."""
    model = nn.Sequential([nn.Dense(16, "tanh"), nn.Dense(16, "relu"), nn.Dense(3)],
                          input_shape=(4,), dtype=dtype, seed=3)
    x = gx.input("x", ("batch", 4), dtype)
    y = gx.input("y", ("batch",), "int64")
    loss = gx.cross_entropy(model(x, training=True), y).mean()
    opt = make_optimizer()
    updates = opt.minimize(loss, model.params())
    step = gx.compile([x, y], loss, updates=updates, backend=backend)
    X, labels = _data(dtype)
    losses = []
    for k in range(STEPS):
        size = (8, 32, 17)[k % 3]  # batch sizes vary: the symbolic dim binds afresh
        start = (k * 7) % (len(X) - size)
        losses.append(float(step(X[start:start + size], labels[start:start + size])))
    params = {p.name: p.value.copy() for p in model.params()}
    state = {p.name: p.value.copy() for p in updates if p.name not in params}
    return losses, params, state


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_llvm_training_follows_numpy(dtype: str, optimizer: str) -> None:
    want_losses, want_params, want_state = _train("numpy", dtype, OPTIMIZERS[optimizer])
    losses, params, state = _train("llvm", dtype, OPTIMIZERS[optimizer])
    np.testing.assert_allclose(losses, want_losses, **TOL[dtype])
    assert want_losses[-1] < want_losses[0]  # it did learn something
    assert params.keys() == want_params.keys() and state.keys() == want_state.keys()
    for name in want_params:
        assert params[name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(params[name], want_params[name], **TOL[dtype], err_msg=name)
    for name in want_state:
        np.testing.assert_allclose(state[name], want_state[name], **TOL[dtype], err_msg=name)


def test_fit_on_llvm_follows_fit_on_numpy() -> None:
    """``fit`` (shuffled mini-batches, guarded updates) gives the same model on both."""
    X, y = _data("float64")
    models = {}
    for backend in ("numpy", "llvm"):
        model = nn.Sequential([nn.Dense(8, "tanh"), nn.Dense(3)], input_shape=(4,),
                              dtype="float64", seed=5)
        history = model.fit(X, y, loss="cross_entropy", optimizer=optim.Adam(1e-2), epochs=3,
                            batch_size=16, progress=False, backend=backend)
        models[backend] = (model, history)
    (ref, ref_history), (got, history) = models["numpy"], models["llvm"]
    got_params = got.named_params()
    for name, param in ref.named_params().items():
        np.testing.assert_allclose(got_params[name].value, param.value, **TOL["float64"],
                                   err_msg=name)
    np.testing.assert_allclose(history.step_loss, ref_history.step_loss, **TOL["float64"])


def test_batch_norm_steps_follow_numpy_with_the_reduction_planned_in_place() -> None:
    """γ's gradient is a kernel summing over (batch, h, w) that the memory plan runs in
    place on a dying input. Its elementwise stage may overwrite that input, but this
    backend's kernel writes the reduced sums as it sweeps the input: it must take a
    buffer of its own (it once wrote into the input and broke channel 0's sum)."""
    from graphc.passes.memory import plan

    results = {}
    for backend in ("numpy", "llvm"):
        layer = nn.BatchNorm(momentum=0.1)
        x = gx.input("x", ("batch", 3, 4, 4), "float64")
        loss = gx.mean(gx.square(layer(x) - 1.0) * gx.constant(np.arange(1.0, 4.0)[:, None, None]))
        step = gx.compile([x], loss, backend=backend,
                          updates={**optim.SGD(0.1).minimize(loss, layer.params()),
                                   **nn.state_updates(loss)})
        if backend == "llvm":
            assert any(n.op.name == "fused" and n.attr["reduce"] is not None
                       for n in plan(step.graph).in_place)
        rng = np.random.default_rng(3)
        losses = [float(step(rng.normal(2.0, 3.0, (n, 3, 4, 4)))) for n in (8, 5, 6)]
        results[backend] = losses, [p.value.copy() for p in layer.params()]
    np.testing.assert_allclose(results["llvm"][0], results["numpy"][0], rtol=1e-12)
    for mine, theirs in zip(results["llvm"][1], results["numpy"][1], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-15)
