"""ONNX signal ops (DFT, STFT, windows, mel filters) against np.fft and NumPy formulas."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphc as gx
from graphc.onnx import OnnxImportError, dtypes, load
from graphc.onnx.handlers.signal import dft

BACKENDS = ["numpy", "llvm"]
RNG = np.random.default_rng(2)


def _model(node: onnx.NodeProto, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray],
           opset: int = 20) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node], "m",
        [helper.make_tensor_value_info(k, dtypes.to_onnx(v.dtype), v.shape)
         for k, v in inputs.items()],
        [helper.make_tensor_value_info(node.output[0], TensorProto.UNDEFINED, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model: onnx.ModelProto, inputs: dict[str, np.ndarray], backend: str) -> np.ndarray:
    return load(model, initializers="constants").compile(backend)(*inputs.values())[0]


def _complex(y: np.ndarray) -> np.ndarray:
    return y[..., 0] + 1j * y[..., 1]


SIGNAL = RNG.standard_normal((2, 8, 3, 2))  # batch, n (axis 1), channels, (re, im)

# (attrs, dft_length, NumPy transform of the complex signal along axis 1, real input?)
DFT_CASES = [
    ({}, None, lambda z: np.fft.fft(z, axis=1), False),
    ({"inverse": 1}, None, lambda z: np.fft.ifft(z, axis=1), False),
    ({}, 11, lambda z: np.fft.fft(z, n=11, axis=1), False),
    ({}, 5, lambda z: np.fft.fft(z, n=5, axis=1), False),
    ({"onesided": 1}, None, lambda z: np.fft.rfft(z.real, axis=1), True),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("attrs,length,reference,real", DFT_CASES)
def test_dft_matches_numpy_fft(backend, attrs, length, reference, real):
    x = SIGNAL[..., :1] if real else SIGNAL
    consts = {"axis": np.array(1, np.int64)}
    if length is not None:
        consts["n"] = np.array(length, np.int64)
    node = helper.make_node("DFT", ["x", "n" if length else "", "axis"], ["y"], **attrs)
    y = _run(_model(node, {"x": x}, consts), {"x": x}, backend)
    z = x[..., 0] + (0 if real else 1j * x[..., 1])
    np.testing.assert_allclose(_complex(y), reference(z), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_irfft_inverts_rfft(backend):
    spectrum = np.fft.rfft(RNG.standard_normal((2, 10)), axis=1)
    x = np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)
    node = helper.make_node("DFT", ["x"], ["y"], inverse=1, onesided=1, axis=1)
    y = _run(_model(node, {"x": x}, {}, opset=17), {"x": x}, backend)
    assert y.shape == (2, 10, 1)
    np.testing.assert_allclose(y[..., 0], np.fft.irfft(spectrum, n=10, axis=1), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stft_with_window(backend):
    signal = RNG.standard_normal((2, 40, 1)).astype(np.float32)
    window = np.hanning(16).astype(np.float32)
    node = helper.make_node("STFT", ["x", "step", "w"], ["y"])
    y = _run(_model(node, {"x": signal}, {"step": np.array(6, np.int64), "w": window},
                    opset=17), {"x": signal}, backend)
    frames = np.stack([signal[:, i:i + 16, 0] for i in range(0, 40 - 16 + 1, 6)], axis=1)
    expected = np.fft.rfft(frames * window, axis=-1)
    assert y.shape == (2, 5, 9, 2)
    np.testing.assert_allclose(_complex(y), expected, rtol=1e-4, atol=1e-4)


def _hamming(m: int) -> np.ndarray:
    """ONNX's Hamming window: alpha = 25/46 exactly (np.hamming rounds it to 0.54)."""
    return 25 / 46 - 21 / 46 * np.cos(2 * np.pi * np.arange(m) / (m - 1))


@pytest.mark.parametrize("op,symmetric", [("HannWindow", np.hanning),
                                          ("HammingWindow", _hamming),
                                          ("BlackmanWindow", np.blackman)])
@pytest.mark.parametrize("periodic", [0, 1])
def test_windows(op, symmetric, periodic):
    node = helper.make_node(op, ["n"], ["w"], periodic=periodic,
                            output_datatype=TensorProto.DOUBLE)
    w = _run(_model(node, {}, {"n": np.array(9, np.int64)}, opset=17), {}, "numpy")
    # a periodic window of n is the symmetric window of n + 1 without its last point
    expected = symmetric(10)[:9] if periodic else symmetric(9)
    assert w.dtype == np.float64
    np.testing.assert_allclose(w, expected, atol=1e-12)


def test_mel_weight_matrix_matches_reference():
    from onnx.reference import ReferenceEvaluator
    consts = {"bins": np.array(8, np.int64), "n": np.array(64, np.int64),
              "rate": np.array(16000, np.int64), "lo": np.array(0.0, np.float32),
              "hi": np.array(8000.0, np.float32)}
    node = helper.make_node("MelWeightMatrix", list(consts), ["m"])
    model = _model(node, {}, consts, opset=17)
    np.testing.assert_allclose(_run(model, {}, "numpy"),
                               ReferenceEvaluator(model).run(None, {})[0])


def test_dft_gradient():
    x = RNG.standard_normal((2, 6, 2))
    report = gx.check_grad(lambda t: dft(t, 1, 8, inverse=False, onesided=False), [x])
    assert report.ok, report


def test_dft_on_the_component_axis_is_an_import_error():
    x = SIGNAL.astype(np.float32)
    node = helper.make_node("DFT", ["x", "", "axis"], ["y"])
    model = _model(node, {"x": x}, {"axis": np.array(-1, np.int64)})
    with pytest.raises(OnnxImportError, match="DFT"):
        load(model)
