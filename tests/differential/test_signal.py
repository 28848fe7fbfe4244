"""Signal kernels against onnx's ReferenceEvaluator: DFT (17, 20), STFT, the windows and
MelWeightMatrix."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

from tests.differential.harness import check_node

TOL = {"rtol": 1e-4, "atol": 1e-4}


def _signal(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("shape", [(2, 8, 1), (3, 7, 2), (2, 5, 6, 2), (1, 9, 1)])
@pytest.mark.parametrize("onesided", [0, 1])
@pytest.mark.parametrize("inverse", [0, 1])
@pytest.mark.parametrize("dft_length", [None, 6, 12])
def test_dft_17(shape, onesided, inverse, dft_length):
    if inverse and onesided and shape[-1] == 1:
        pytest.skip("inverse one-sided DFT takes a complex (one-sided spectrum) input")
    inputs = [_signal(shape)]
    if dft_length is not None:
        inputs.append(np.array(dft_length, np.int64))
    attrs = dict(axis=1, onesided=onesided, inverse=inverse)
    check_node("DFT", inputs, attrs, opset=17, **TOL)


@pytest.mark.parametrize("shape, axis", [((2, 8, 1), 1), ((3, 4, 7, 2), -2), ((3, 4, 6, 1), 1),
                                         ((4, 5, 2), 0), ((2, 3, 5, 2), -3)])  # fmt: skip
@pytest.mark.parametrize("onesided", [0, 1])
@pytest.mark.parametrize("inverse", [0, 1])
@pytest.mark.parametrize("dft_length", [None, 10])
def test_dft_20(shape, axis, onesided, inverse, dft_length):
    if inverse and onesided and shape[-1] == 1:
        pytest.skip("inverse one-sided DFT takes a complex (one-sided spectrum) input")
    length = None if dft_length is None else np.array(dft_length, np.int64)
    inputs = [_signal(shape), length, np.array(axis, np.int64)]
    check_node("DFT", inputs, dict(onesided=onesided, inverse=inverse), opset=20, **TOL)


def test_dft_20_default_axis():
    check_node("DFT", [_signal((2, 3, 8, 2))], {}, opset=20, **TOL)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_dft_dtypes(dtype):
    tol = {"rtol": 1e-2, "atol": 2e-2} if dtype == np.float16 else TOL
    check_node("DFT", [_signal((2, 6, 2), dtype)], dict(axis=1), opset=17, **tol)


@pytest.mark.parametrize("signal_shape", [(2, 64, 1), (1, 50, 2), (3, 33, 1)])
@pytest.mark.parametrize("step, length", [(8, 16), (5, 12), (16, 16)])
@pytest.mark.parametrize("onesided", [0, 1])
@pytest.mark.parametrize("with_window", [True, False])
def test_stft(signal_shape, step, length, onesided, with_window):
    if onesided and signal_shape[-1] == 2:
        pytest.skip("one-sided STFT is defined for real signals")
    window = np.hanning(length).astype(np.float32) if with_window else None
    inputs = [_signal(signal_shape), np.array(step, np.int64), window, np.array(length, np.int64)]
    check_node("STFT", inputs, dict(onesided=onesided), opset=17, **TOL)


def test_stft_window_only():
    inputs = [_signal((2, 40, 1)), np.array(6, np.int64), np.hamming(10).astype(np.float32)]
    check_node("STFT", inputs, {}, opset=17, **TOL)


WINDOW_TYPES = [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT32]


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("size", [1, 2, 7, 16])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("output_datatype", WINDOW_TYPES)
def test_windows(op, size, periodic, output_datatype):
    if size == 1 and not periodic:
        pytest.skip("a symmetric window of one point divides by zero")
    attrs = dict(periodic=periodic, output_datatype=output_datatype)
    # the reference computes float16 windows in float16 (errors up to ~2e-3)
    tol = {"rtol": 1e-3, "atol": 3e-3} if output_datatype == TensorProto.FLOAT16 else TOL
    check_node(op, [np.array(size, np.int64)], attrs, opset=17, **tol)


@pytest.mark.parametrize(
    "mel_bins, dft_length, rate, low, high",
    [(8, 64, 16000, 0.0, 8000.0), (20, 512, 22050, 100.0, 7000.0), (5, 16, 8000, 50.0, 3000.0),
     (40, 1024, 44100, 20.0, 20000.0)],
)  # fmt: skip
@pytest.mark.parametrize("output_datatype", [TensorProto.FLOAT, TensorProto.DOUBLE])
@pytest.mark.parametrize("int_type", [np.int64, np.int32])
def test_mel_weight_matrix(mel_bins, dft_length, rate, low, high, output_datatype, int_type):
    inputs = [
        np.array(mel_bins, int_type),
        np.array(dft_length, int_type),
        np.array(rate, int_type),
        np.array(low, np.float32),
        np.array(high, np.float32),
    ]
    check_node("MelWeightMatrix", inputs, dict(output_datatype=output_datatype), opset=17, **TOL)
