"""ImageDecoder (opset 20) through Pillow, against the ReferenceEvaluator; without Pillow the node
is declined at session creation with the reason."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from tests.differential.harness import check_node, make_node_model, run_cpu, run_reference

PIL = pytest.importorskip("PIL.Image", reason="ImageDecoder needs Pillow (ort-cpu[image])")


def _encode(fmt: str, rgb: bool = True) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 9, 3) if rgb else (12, 9), dtype=np.uint8)
    img = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)  # blocks survive lossy codecs better
    buf = io.BytesIO()
    PIL.fromarray(img).save(buf, format=fmt)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "JPEG", "TIFF", "WEBP", "PPM"])
@pytest.mark.parametrize("pixel_format", ["RGB", "BGR", "Grayscale"])
def test_image_decoder(fmt, pixel_format):
    check_node("ImageDecoder", [_encode(fmt)], {"pixel_format": pixel_format}, opset=20)


def test_grayscale_source_as_rgb():
    """A one-channel image asked for as RGB has 3 equal channels (the spec's (H, W, 3); the
    ReferenceEvaluator returns the (H, W) gray plane)."""
    model, feeds = make_node_model("ImageDecoder", [_encode("PNG", rgb=False)], opset=20)
    (got,) = run_cpu(model, feeds)
    (gray,) = run_reference(model, feeds)
    assert got.shape == (*gray.shape[:2], 3)
    for c in range(3):
        np.testing.assert_array_equal(got[:, :, c], gray.reshape(gray.shape[:2]))


def test_undecodable_stream_gives_an_empty_image():
    model, feeds = make_node_model("ImageDecoder", [np.arange(40, dtype=np.uint8)], opset=20)
    (got,) = run_cpu(model, feeds)
    assert got.dtype == np.uint8 and got.size == 0 and got.ndim == 3


def test_declined_without_pillow(monkeypatch):
    import ort_core
    from ort_core.errors import NotImplemented as OrtNotImplemented

    model, _ = make_node_model("ImageDecoder", [_encode("PNG")], opset=20)
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL raises ImportError
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(OrtNotImplemented, match=r"Pillow.*ort-cpu\[image\]"):
        ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
