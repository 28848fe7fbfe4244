"""Fixtures: the test models on disk, calibration and test batches, both quantizers' runs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from . import models

ort = pytest.importorskip("onnxruntime")

SHAPES = {"cnn": (8, 3, 16, 16), "transformer": (8, 8, 32)}
BUILD = {"cnn": models.cnn, "transformer": models.transformer}


@pytest.fixture(params=["cnn", "transformer"])
def float_model(request, tmp_path):
    """(kind, path of the float model, calibration batches, test batches)."""
    kind = request.param
    path = tmp_path / f"{kind}.onnx"
    onnx.save(BUILD[kind](), path)
    shape = SHAPES[kind]
    return kind, str(path), models.batches(shape, 4, seed=1), models.batches(shape, 4, seed=2)


def ort_run(path, feeds) -> np.ndarray:
    """onnxruntime's outputs (first output) on ``feeds``, concatenated."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, f)[0] for f in feeds])


def core_run(path, feeds) -> np.ndarray:
    import ort_core

    sess = ort_core.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([np.asarray(sess.run(None, f)[0]) for f in feeds])


def errors(ref: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """(max abs error, top-1 agreement)."""
    return float(np.abs(ref - out).max()), float((ref.argmax(-1) == out.argmax(-1)).mean())


class Reader:
    """A calibration reader both quantizers accept (duck-typed get_next)."""

    def __init__(self, feeds):
        self.it = iter(list(feeds))

    def get_next(self):
        return next(self.it, None)
