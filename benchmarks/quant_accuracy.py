"""Quantization accuracy: ort-core's quantizer against onnxruntime's, and ort-core's int8
execution against onnxruntime's, on the quantized kind's models (issue 17's closing numbers).

For each model, both quantizers get the same float model, settings and calibration data
(``quantize_static``: QDQ, uint8 activations, int8 weights, MinMax, per-channel weights for
MobileNetV2; ``quantize_dynamic``: int8 weights), as gen_quantized.py quantizes them. On evaluation inputs the calibration never saw, it reports:

- each quantized model's error against the float model, both run by onnxruntime (so the two
  quantizers are compared on the same runtime): the largest absolute difference, the mean one,
  both relative to the float output's largest magnitude, and for classifiers the share of
  inputs whose top class agrees with the float model's;
- the largest difference between ort-core's and onnxruntime's outputs on onnxruntime's quantized
  model (the int8 execution), relative the same way.

Usage (from the repository root): ``python benchmarks/quant_accuracy.py [--models a,b]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_cnn import image_feed, mobilenet_v2, yolo_n  # noqa: E402
from geometries import bert  # noqa: E402


class _Feeds:
    """The CalibrationDataReader protocol (get_next() -> feed or None) over a list of feeds."""

    def __init__(self, feeds: list[dict]) -> None:
        self.feeds = list(feeds)
        self.at = 0

    def get_next(self):
        if self.at >= len(self.feeds):
            return None
        self.at += 1
        return self.feeds[self.at - 1]

    def rewind(self):
        self.at = 0


def _text_feeds(count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "input_ids": rng.integers(0, 30522, (1, 128)).astype(np.int64),
            "input_mask": np.ones((1, 128), np.int64),
        }
        for _ in range(count)
    ]


#: name -> (float model builder, "static"/"dynamic" (with per-channel weights: "static-pc"),
#: calibration feeds, evaluation feeds, classifier), as gen_quantized.py quantizes them
def _images(build, how: str, shape: tuple, calibration: int, evaluation: int, classifier: bool):
    """A MODELS entry of an image model: random images as gen_cnn.image_feed makes them, the
    calibration's seeds from 100, the evaluation's from 500."""
    return (
        build,
        how,
        lambda: [image_feed(shape, seed=100 + i) for i in range(calibration)],
        lambda: [image_feed(shape, seed=500 + i) for i in range(evaluation)],
        classifier,
    )


MODELS = {
    "mobilenetv2_qdq": _images(mobilenet_v2, "static-pc", (1, 3, 224, 224), 8, 16, True),
    "yolo_n_qdq": _images(yolo_n, "static", (1, 3, 640, 640), 2, 2, False),
    "minilm_int8": (
        lambda: bert(layers=6, d=384, heads=12, seq=128),
        "dynamic",
        lambda: [],
        lambda: _text_feeds(8, 500),
        False,
    ),
}


def _quantize(module, float_path: str, out_path: str, how: str, calibration: list[dict]) -> None:
    if how.startswith("static"):
        module.quantize_static(
            float_path,
            out_path,
            _Feeds(calibration),
            quant_format=module.QuantFormat.QDQ,
            per_channel=how == "static-pc",
            activation_type=module.QuantType.QUInt8,
            weight_type=module.QuantType.QInt8,
        )
    else:
        module.quantize_dynamic(float_path, out_path, weight_type=module.QuantType.QInt8)


def _run(runtime, path: str, feeds: list[dict]) -> list[np.ndarray]:
    sess = runtime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return [sess.run(None, f)[0] for f in feeds]


def _errors(got: list[np.ndarray], want: list[np.ndarray], classifier: bool) -> dict:
    scale = max(float(np.abs(w).max()) for w in want) or 1.0
    diff = [np.abs(g.astype(np.float64) - w) for g, w in zip(got, want, strict=True)]
    out = {
        "max": max(float(d.max()) for d in diff) / scale,
        "mean": float(np.mean([d.mean() for d in diff])) / scale,
    }
    if classifier:
        same = [int(np.argmax(g) == np.argmax(w)) for g, w in zip(got, want, strict=True)]
        out["top1"] = sum(same) / len(same)
    return out


def measure(name: str) -> dict:
    import onnxruntime
    import onnxruntime.quantization as theirs

    import ort_core
    import ort_core.quantization as ours

    build, how, calibration, evaluation, classifier = MODELS[name]
    with tempfile.TemporaryDirectory() as tmp:
        float_path = os.path.join(tmp, "float.onnx")
        onnx.save(build(), float_path)
        paths = {}
        for label, module in (("onnxruntime", theirs), ("ort-core", ours)):
            paths[label] = os.path.join(tmp, f"{label}.onnx")
            _quantize(module, float_path, paths[label], how, calibration())
        feeds = evaluation()
        reference = _run(onnxruntime, float_path, feeds)
        row = {"model": name}
        for label, path in paths.items():
            row[label] = _errors(_run(onnxruntime, path, feeds), reference, classifier)
        int8_theirs = _run(onnxruntime, paths["onnxruntime"], feeds)
        int8_ours = _run(ort_core, paths["onnxruntime"], feeds)
        scale = max(float(np.abs(w).max()) for w in int8_theirs) or 1.0
        row["int8_vs_onnxruntime"] = (
            max(
                float(np.abs(a.astype(np.float64) - b).max())
                for a, b in zip(int8_ours, int8_theirs)
            )
            / scale
        )
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    logging.root.setLevel(logging.ERROR)  # the quantizers' advice to pre-process the models
    print("model              quantizer     max err  mean err   top-1   (relative to the float "
          "output's largest magnitude)")  # fmt: skip
    for name in args.models.split(","):
        row = measure(name)
        for label in ("onnxruntime", "ort-core"):
            e = row[label]
            top1 = f"{e['top1']:6.2f}" if "top1" in e else "     -"
            print(f"{name:18s} {label:12s} {e['max']:8.4f} {e['mean']:9.5f}  {top1}")
        print(f"{name:18s} int8 run: ort-core vs onnxruntime on onnxruntime's model: max "
              f"{row['int8_vs_onnxruntime']:.5f}")  # fmt: skip


if __name__ == "__main__":
    main()
