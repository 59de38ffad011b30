"""PyTorch → ONNX → graphc: outputs and parameter gradients equal torch's.

The models are exported with torch's TorchScript-based exporter (``dynamo=False``: the
dynamo exporter needs onnxscript), imported with the initializers as params, and
differentiated with ``gx.grad``; torch autograd gives the reference gradients, matched
to the params by initializer name (torch's ``named_parameters`` names).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import graphc as gx

torch = pytest.importorskip("torch")

BACKENDS = ["numpy", "llvm"]


def _mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, kernel_size=3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3))


MODELS = {"mlp": (_mlp, (6, 5)), "cnn": (_cnn, (2, 2, 8, 8))}


def _export(module: torch.nn.Module, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated
        torch.onnx.export(module, (x,), buffer, dynamo=False, input_names=["x"],
                          output_names=["y"])
    return buffer.getvalue()


def _setup(name: str) -> tuple[torch.nn.Module, np.ndarray, gx.onnx.OnnxModel]:
    torch.manual_seed(0)
    make, shape = MODELS[name]
    module = make().eval()
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    model = gx.onnx.load(_export(module, torch.from_numpy(x)), initializers="params")
    return module, x, model


def _loss(y):
    """A scalar with a gradient that depends on y: Σ y² / 2 + Σ y·k."""
    k = np.linspace(-1, 1, y.shape[-1], dtype=np.float32)
    if isinstance(y, gx.Tensor):
        return gx.sum(y * y) * 0.5 + gx.sum(y * k)
    return (y * y).sum() * 0.5 + (y * torch.from_numpy(k)).sum()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_outputs_equal_torch(name, backend):
    module, x, model = _setup(name)
    (got,) = model.compile(backend)(x)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_param_gradients_equal_torch_autograd(name, backend):
    module, x, model = _setup(name)
    torch_params = dict(module.named_parameters())
    assert set(model.params) == set(torch_params)  # every weight imported as a param
    names = sorted(model.params)
    (x_in,) = model.inputs.values()
    (y,) = model.outputs.values()
    grads = gx.grad(_loss(y), [model.params[n] for n in names])
    got = gx.compile([x_in], grads, backend=backend)(x)

    module.zero_grad()
    _loss(module(torch.from_numpy(x))).backward()
    for n, g in zip(names, got, strict=True):
        want = torch_params[n].grad.numpy()
        assert g.shape == want.shape, n
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-5, err_msg=n)


def test_imported_torch_model_exports_back():
    """torch → ONNX → graphc → ONNX: onnxruntime gives torch's outputs."""
    ort = pytest.importorskip("onnxruntime")
    module, x, model = _setup("cnn")
    proto = gx.onnx.save(model)
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x})
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
