"""Quantized and float16 models, made at generation time by onnxruntime's own tools from the float
models of gen_cnn.py and geometries.py, with the settings onnxruntime's documentation recommends
for x86 CPUs (activations uint8, weights int8).

- ``mobilenetv2_qdq``: MobileNetV2 through ``quantize_static`` (QDQ, per-channel weights, MinMax
  calibration on 8 random images)
- ``yolo_n_qdq``: the YOLOv8n-like detector through ``quantize_static`` (QDQ, per-tensor weights, 4
  calibration images)
- ``minilm_int8``: a MiniLM-L6-like BERT (6 layers, hidden 384, 12 heads, sequence 128) through
  ``quantize_dynamic`` (MatMulInteger with DynamicQuantizeLinear)
- ``mobilenetv2_fp16``: MobileNetV2 through onnxruntime.transformers' ``convert_float_to_float16``
  (float32 inputs and outputs kept, as ``keep_io_types=True`` does)
"""

from __future__ import annotations

import logging
import os
import tempfile

import onnx
from gen_cnn import image_feed, mobilenet_v2, yolo_n
from geometries import bert, feed_for
from zoo import Spec

KIND = "quantized"
DEPENDS = ("gen_cnn.py", "geometries.py", "zoo.py")


class _Images:
    """onnxruntime's CalibrationDataReader protocol: get_next() -> feed or None."""

    def __init__(self, shape, count: int) -> None:
        self.feeds = iter([image_feed(shape, seed=100 + i) for i in range(count)])

    def get_next(self):
        return next(self.feeds, None)

    def rewind(self):  # some calibrators call it
        pass


def _quantized(float_model: onnx.ModelProto, how) -> onnx.ModelProto:
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)  # the quantizer's advice to pre-process the model
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "quant.onnx")
            onnx.save(float_model, src)
            how(src, dst)
            return onnx.load(dst)
    finally:
        logging.root.setLevel(level)


def qdq(builder, shape, count: int, per_channel: bool) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    return _quantized(
        builder(),
        lambda src, dst: quantize_static(
            src,
            dst,
            _Images(shape, count),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        ),
    )


def minilm_int8() -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    return _quantized(
        bert(layers=6, d=384, heads=12, seq=128),
        lambda src, dst: quantize_dynamic(src, dst, weight_type=QuantType.QInt8),
    )


def mobilenetv2_fp16() -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(mobilenet_v2(), keep_io_types=True)


MODELS = {
    "mobilenetv2_qdq": Spec(
        "mobilenetv2_qdq",
        lambda: qdq(mobilenet_v2, (1, 3, 224, 224), 8, True),
        lambda: image_feed((1, 3, 224, 224)),
        "QDQ u8/s8 per-channel",
    ),
    "yolo_n_qdq": Spec(
        "yolo_n_qdq",
        lambda: qdq(yolo_n, (1, 3, 640, 640), 4, False),
        lambda: image_feed((1, 3, 640, 640)),
        "QDQ u8/s8 per-tensor",
    ),
    "minilm_int8": Spec(
        "minilm_int8", minilm_int8, lambda: feed_for("bert_base"), "dynamic int8, sequence 128"
    ),
    "mobilenetv2_fp16": Spec(
        "mobilenetv2_fp16",
        mobilenetv2_fp16,
        lambda: image_feed((1, 3, 224, 224)),
        "float16 weights and compute, float32 I/O",
    ),
}
