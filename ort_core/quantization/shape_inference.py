"""onnxruntime's module path for ``quant_pre_process``
(``from onnxruntime.quantization.shape_inference import quant_pre_process``)."""

from .preprocess import quant_pre_process

__all__ = ["quant_pre_process"]
