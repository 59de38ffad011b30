"""ONNX signal ops (DFT, STFT, windows, mel filter banks) as graphc graph.

A DFT of static length is a real-linear map of the signal's (real, imaginary)
pairs, so it is one matmul with a matrix built here in NumPy at import: the matrix
is NumPy's own FFT applied to the basis vectors, which makes every variant (zero
padding, truncation, one-sided, inverse, inverse one-sided = irfft) agree with
``np.fft`` by construction. Windows and mel matrices depend only on sizes known at
import, so they are arrays (folded constants).
"""

from __future__ import annotations

import numpy as np

import graphc as gx
from graphc.onnx import dtypes
from graphc.onnx.registry import handler


def _dft_matrix(n_in: int, c_in: int, length: int, inverse: bool, onesided: bool
                ) -> tuple[np.ndarray, int, int]:
    """The (n_in*c_in, n_out*c_out) matrix of the ONNX DFT along one axis.

    Row ``j*c_in + p`` is the transform of the basis signal with component ``p`` (real,
    imaginary) of sample ``j`` set to one; the transform is linear over the reals.
    """
    basis = np.eye(n_in * c_in).reshape(n_in * c_in, n_in, c_in)
    signal = basis[..., 0] + (1j * basis[..., 1] if c_in == 2 else 0)
    if inverse and onesided:
        out = np.fft.irfft(signal, n=length, axis=1)[..., None]
    elif inverse:
        out = np.fft.ifft(signal, n=length, axis=1)
    else:
        out = np.fft.fft(signal, n=length, axis=1)
        if onesided:
            out = out[:, :length // 2 + 1]
    if out.dtype.kind == "c":
        out = np.stack([out.real, out.imag], axis=-1)
    n_out, c_out = out.shape[1], out.shape[2]
    return out.reshape(n_in * c_in, n_out * c_out), n_out, c_out


def dft(x: gx.Tensor, axis: int, length: int | None, inverse: bool, onesided: bool
        ) -> gx.Tensor:
    """ONNX DFT of ``x`` (``[..., n, ..., 1 or 2]``) along ``axis`` (not the last)."""
    rank = len(x.shape)
    axis %= rank
    if axis == rank - 1:
        raise ValueError("the DFT axis cannot be the last (real/imaginary) axis")
    n_in, c_in = x.shape[axis], x.shape[-1]
    if not isinstance(n_in, int) or c_in not in (1, 2):
        raise ValueError(f"DFT needs a static signal axis and a last axis of 1 or 2, got "
                         f"shape {x.shape}")
    if length is None:
        length = 2 * (n_in - 1) if inverse and onesided else n_in
    matrix, n_out, c_out = _dft_matrix(n_in, c_in, int(length), inverse, onesided)
    # move the signal axis next to the component axis, flatten both, one matmul
    perm = [a for a in range(rank - 1) if a != axis] + [axis, rank - 1]
    moved = gx.transpose(x, perm)
    lead = tuple(moved.shape[:-2])
    flat = gx.reshape(moved, (*lead, n_in * c_in))
    y = gx.matmul(flat, gx.constant(matrix.astype(x.dtype)))
    y = gx.reshape(y, (*lead, n_out, c_out))
    inverse_perm = list(np.argsort(perm))
    return gx.transpose(y, inverse_perm)


def _optional_int(node, i: int) -> int | None:
    if not node.has(i):
        return None
    v = np.asarray(node.value(i))
    return int(v.reshape(-1)[0]) if v.size else None


@handler("DFT", since=17)
def dft_17(node):
    length = _optional_int(node, 1)
    return dft(node.input(0), node.attr("axis", 1), length,
               bool(node.attr("inverse", 0)), bool(node.attr("onesided", 0)))


@handler("DFT", since=20)
def dft_20(node):
    length = _optional_int(node, 1)
    axis = _optional_int(node, 2)
    return dft(node.input(0), -2 if axis is None else axis, length,
               bool(node.attr("inverse", 0)), bool(node.attr("onesided", 0)))


@handler("STFT", since=17)
def stft(node):
    """Frames ``[batch, frames, frame_length, c]`` gathered by an index table, windowed,
    then one DFT along the frame axis."""
    x = node.input(0)
    step = _optional_int(node, 1)
    window = node.input(2) if node.has(2) else None
    length = _optional_int(node, 3)
    if length is None:
        length = window.shape[0] if window is not None else x.shape[-2]
    n = x.shape[-2]
    if not all(isinstance(d, int) for d in (n, length)) or step is None or step <= 0:
        raise node.error(f"needs a static signal length and frame_step, got shape {x.shape}")
    frames = 1 + (n - length) // step
    index = np.arange(frames)[:, None] * step + np.arange(length)[None, :]
    framed = gx.take(x, gx.constant(index.astype(np.int64)), axis=-2)  # [b, f, L, c]
    if window is not None:
        framed = framed * gx.reshape(window, (length, 1))
    return dft(framed, 2, length, False, bool(node.attr("onesided", 1)))


def _window(node, kind: str) -> np.ndarray:
    size = int(np.asarray(node.value(0)).reshape(-1)[0])
    denom = size if node.attr("periodic", 1) else size - 1
    phase = 2 * np.pi * np.arange(size) / denom
    if kind == "hann":
        w = np.sin(phase / 2) ** 2
    elif kind == "hamming":
        alpha = 25.0 / 46.0
        w = alpha - (1 - alpha) * np.cos(phase)
    else:  # blackman
        w = 0.42 - 0.5 * np.cos(phase) + 0.08 * np.cos(2 * phase)
    return w.astype(_out_dtype(node))


def _out_dtype(node) -> str:
    try:
        return dtypes.to_graphc(node.attr("output_datatype", 1))
    except TypeError as e:
        raise node.unsupported(f"output_datatype: {e}") from None


@handler("HannWindow", since=17)
def hann_window(node):
    return _window(node, "hann")


@handler("HammingWindow", since=17)
def hamming_window(node):
    return _window(node, "hamming")


@handler("BlackmanWindow", since=17)
def blackman_window(node):
    return _window(node, "blackman")


@handler("MelWeightMatrix", since=17)
def mel_weight_matrix(node):
    """Triangular mel filters ``[dft_length//2 + 1, num_mel_bins]`` (ONNX's bin rounding)."""
    n_mel, dft_length = (int(np.asarray(node.value(i)).reshape(-1)[0]) for i in (0, 1))
    rate = np.asarray(node.value(2)).reshape(-1)[0]
    low, high = (np.asarray(node.value(i)).reshape(-1)[0] for i in (3, 4))
    mel_low = 2595 * np.log1p(low / 700) / np.log(10)
    mel_high = 2595 * np.log1p(high / 700) / np.log(10)
    mel = np.arange(n_mel + 2) * ((mel_high - mel_low) / (n_mel + 2)) + mel_low
    hertz = 700 * np.expm1(mel / 2595 * np.log(10))
    bins = (((dft_length + 1) * hertz) // rate).astype(int)
    out = np.zeros((dft_length // 2 + 1, n_mel))
    for i in range(n_mel):
        left, center, right = bins[i], bins[i + 1], bins[i + 2]
        if center == left:
            out[center, i] = 1
        else:
            j = np.arange(left, center + 1)
            out[j, i] = (j - left) / (center - left)
        if right > center:
            j = np.arange(center, right)
            out[j, i] = (right - j) / (right - center)
    return out.astype(_out_dtype(node))
