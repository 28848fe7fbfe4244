"""Signal kernels: DFT, STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix.

Complex tensors follow ONNX's convention: a trailing axis of size 1 (real) or 2 (real, imaginary).
Transforms use numpy.fft in float32 (float16/bfloat16/float32 inputs) or float64.
"""

from __future__ import annotations

import numpy as np

from ort_core._onnx import helper
from ort_core.provider import FLOAT_TYPES

from ._registry import kernel


def _work(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.float64 else x.astype(np.float32)


def _to_complex(x: np.ndarray) -> np.ndarray:
    """ONNX [..., 1|2] layout to a numpy (real or complex) array without the trailing axis."""
    x = _work(x)
    if x.shape[-1] == 1:
        return x[..., 0]
    return x[..., 0] + 1j * x[..., 1]


def _from_complex(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


def _opt_int(v) -> int | None:
    if v is None or np.asarray(v).size == 0:
        return None
    return int(np.asarray(v).reshape(-1)[0])


def _dft(x, dft_length, axis: int, inverse: bool, onesided: bool):
    axis = axis % x.ndim
    n = _opt_int(dft_length)
    if n is None:
        n = 2 * (x.shape[axis] - 1) if inverse and onesided else x.shape[axis]
    z = _to_complex(x)
    if inverse:
        if onesided:
            return np.fft.irfft(z, n=n, axis=axis)[..., None].astype(x.dtype)
        return _from_complex(np.fft.ifft(z, n=n, axis=axis), x.dtype)
    if onesided and not np.iscomplexobj(z):
        return _from_complex(np.fft.rfft(z, n=n, axis=axis), x.dtype)
    y = np.fft.fft(z, n=n, axis=axis)
    if onesided:
        y = np.take(y, np.arange(n // 2 + 1), axis=axis)
    return _from_complex(y, x.dtype)


@kernel("DFT", since=17, dtypes=FLOAT_TYPES)
def dft_17(x, dft_length=None, axis=1, inverse=0, onesided=0):
    return _dft(x, dft_length, axis, bool(inverse), bool(onesided))


@kernel("DFT", since=20, dtypes=FLOAT_TYPES)
def dft_20(x, dft_length=None, axis=None, inverse=0, onesided=0):
    ax = _opt_int(axis)
    return _dft(x, dft_length, -2 if ax is None else ax, bool(inverse), bool(onesided))


@kernel("STFT", since=17, dtypes=FLOAT_TYPES)
def stft(signal, frame_step, window=None, frame_length=None, onesided=1):
    step = int(np.asarray(frame_step).reshape(-1)[0])
    length = _opt_int(frame_length)
    if length is None:
        length = signal.shape[-2] if window is None else window.shape[0]
    n_frames = 1 + (signal.shape[-2] - length) // step
    starts = np.arange(n_frames) * step
    frames = _to_complex(signal)[:, starts[:, None] + np.arange(length)[None, :]]
    if window is not None:
        frames = frames * _work(window)
    if onesided and not np.iscomplexobj(frames):
        y = np.fft.rfft(frames, n=length, axis=-1)
    else:
        y = np.fft.fft(frames, n=length, axis=-1)
        if onesided:
            y = y[..., : length // 2 + 1]
    return _from_complex(y, signal.dtype)


def _window(size, periodic: int, output_datatype: int, fn):
    """``fn(n, N)`` evaluated at n = 0..size-1 with N = size (periodic) or size - 1."""
    n_points = int(np.asarray(size).reshape(-1)[0])
    denom = n_points if periodic else n_points - 1
    w = fn(np.arange(n_points, dtype=np.float64), denom)
    return w.astype(helper.tensor_dtype_to_np_dtype(output_datatype))


_HAMMING_ALPHA = 25.0 / 46.0


@kernel("HannWindow", since=17)
def hann_window(size, output_datatype=1, periodic=1):
    return _window(size, periodic, output_datatype, lambda n, N: np.sin(np.pi * n / N) ** 2)


@kernel("HammingWindow", since=17)
def hamming_window(size, output_datatype=1, periodic=1):
    def fn(n, N):
        return _HAMMING_ALPHA - (1 - _HAMMING_ALPHA) * np.cos(2 * np.pi * n / N)

    return _window(size, periodic, output_datatype, fn)


@kernel("BlackmanWindow", since=17)
def blackman_window(size, output_datatype=1, periodic=1):
    def fn(n, N):
        return -0.5 * np.cos(2 * np.pi * n / N) + 0.08 * np.cos(4 * np.pi * n / N) + 0.42

    return _window(size, periodic, output_datatype, fn)


@kernel("MelWeightMatrix", since=17)
def mel_weight_matrix(
    num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz, output_datatype=1
):
    """Triangular filters between num_mel_bins + 2 points equally spaced on the mel scale
    (mel(f) = 2595 log10(1 + f / 700)), each mapped to a spectrogram bin by
    floor((dft_length + 1) * f / sample_rate); each triangle peaks at 1 on its center bin."""
    mel_bins = int(np.asarray(num_mel_bins).reshape(-1)[0])
    n_fft = int(np.asarray(dft_length).reshape(-1)[0])
    rate = np.asarray(sample_rate).reshape(-1)[0]
    low = np.asarray(lower_edge_hertz).reshape(-1)[0]
    high = np.asarray(upper_edge_hertz).reshape(-1)[0]
    low_mel = 2595 * np.log1p(low / 700) / np.log(10)
    high_mel = 2595 * np.log1p(high / 700) / np.log(10)
    points = np.arange(mel_bins + 2)
    hz = points * ((high_mel - low_mel) / points.shape[0]) + low_mel
    hz = 700 * np.expm1(hz / 2595 * np.log(10))
    bins = (((n_fft + 1) * hz) // rate).astype(np.int64)
    left, center, right = bins[:-2][None], bins[1:-1][None], bins[2:][None]
    j = np.arange(n_fft // 2 + 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(center > left, (j - left) / np.maximum(center - left, 1), 1.0)
        down = (right - j) / np.maximum(right - center, 1)
    out = np.where((j >= left) & (j <= center) & ((center > left) | (j == center)), up, 0.0)
    out = np.where((j >= center) & (j < right), down, out)
    return out.astype(helper.tensor_dtype_to_np_dtype(output_datatype))
