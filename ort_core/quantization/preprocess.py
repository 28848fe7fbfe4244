"""``quant_pre_process``: shape inference and graph optimization before quantization.

The optimization is ort-core's own BASIC level (constant folding, Conv+BatchNormalization
folding, identity/dropout removal...), run by an ``ort_core.InferenceSession`` that saves its
optimized graph. The output carries onnxruntime's pre-processing mark in its metadata, so
onnxruntime's quantizer and ours both see the model as pre-processed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import onnx

__all__ = ["quant_pre_process"]

logger = logging.getLogger(__name__)

PRE_PROCESS_KEY = "onnx.quant.pre_process"
PRE_PROCESS_VALUE = "onnxruntime.quant"


def quant_pre_process(
    input_model: str | Path | onnx.ModelProto | None = None,
    output_model_path: str | Path | None = None,
    skip_optimization: bool = False,
    skip_onnx_shape: bool = False,
    skip_symbolic_shape: bool = False,
    auto_merge: bool = False,
    int_max: int = 2**31 - 1,
    guess_output_rank: bool = False,
    verbose: int = 0,
    save_as_external_data: bool = False,
    all_tensors_to_one_file: bool = False,
    external_data_location: str | None = None,
    external_data_size_threshold: int = 1024,
) -> None:
    """Prepare a float model for quantization and save it to ``output_model_path``.

    Steps: shape inference with constant propagation (the "symbolic" step: onnx's data
    propagation stands in for onnxruntime's symbolic shape inference), ort-core's BASIC graph
    optimizations, then plain onnx shape inference. ``auto_merge`` and ``guess_output_rank``
    belong to onnxruntime's symbolic shape inference and are rejected when set.
    """
    if input_model is None or output_model_path is None:
        raise ValueError("quant_pre_process needs input_model and output_model_path")
    if auto_merge or guess_output_rank or int_max != 2**31 - 1:
        raise ValueError(
            "auto_merge, guess_output_rank and int_max tune onnxruntime's symbolic shape "
            "inference, which ort-core does not have; leave them at their defaults"
        )
    if isinstance(input_model, onnx.ModelProto):
        model = input_model
    elif isinstance(input_model, (str, os.PathLike)):
        if not Path(input_model).is_file():
            raise FileNotFoundError(f"input_model {str(input_model)!r} is not a file")
        model = onnx.load(str(input_model))
    else:
        raise TypeError(
            f"input_model must be a path or ModelProto, got {type(input_model).__name__}"
        )

    if not skip_symbolic_shape:
        model = _infer(model, data_prop=True)
    if not skip_optimization:
        model = _optimize(model)
    if not skip_onnx_shape:
        model = _infer(model, data_prop=False)
    props = {p.key: p for p in model.metadata_props}
    if PRE_PROCESS_KEY in props:
        props[PRE_PROCESS_KEY].value = PRE_PROCESS_VALUE
    else:
        onnx.helper.set_model_props(
            model,
            {**{p.key: p.value for p in model.metadata_props}, PRE_PROCESS_KEY: PRE_PROCESS_VALUE},
        )
    if save_as_external_data:
        onnx.save_model(
            model,
            str(output_model_path),
            save_as_external_data=True,
            all_tensors_to_one_file=all_tensors_to_one_file,
            location=external_data_location,
            size_threshold=external_data_size_threshold,
        )
    else:
        onnx.save_model(model, str(output_model_path))


def _infer(model: onnx.ModelProto, data_prop: bool) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=data_prop)
    except Exception as exc:
        logger.warning("shape inference failed (%s); continuing without it", exc)
        return model


def _optimize(model: onnx.ModelProto) -> onnx.ModelProto:
    from ort_core import GraphOptimizationLevel, InferenceSession, SessionOptions

    with tempfile.TemporaryDirectory(prefix="ort_core_quant_") as tmp:
        path = os.path.join(tmp, "optimized.onnx")
        so = SessionOptions()
        so.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = path
        InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        optimized = onnx.load(path)
    return optimized
