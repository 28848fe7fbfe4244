"""``quantize_static``, ``quantize_dynamic`` and ``quantize``, with onnxruntime's signatures."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx

from . import smooth_quant
from ._quantizer import Quantizer, check_extra_options, tensors_to_calibrate
from .calibrate import (
    CalibrationDataReader,
    CalibrationMethod,
    collect_ranges,
    load_tensors_data,
    save_tensors_data,
    strided_reader_length,
)
from .quant_utils import QuantFormat, QuantType

__all__ = [
    "DynamicQuantConfig",
    "QuantConfig",
    "StaticQuantConfig",
    "quantize",
    "quantize_dynamic",
    "quantize_static",
]

logger = logging.getLogger(__name__)


class QuantConfig:
    """What both static and dynamic quantization take."""

    def __init__(
        self,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=None,
        nodes_to_quantize=None,
        nodes_to_exclude=None,
        per_channel=False,
        reduce_range=False,
        use_external_data_format=False,
    ):
        self.activation_type = activation_type
        self.weight_type = weight_type
        self.op_types_to_quantize = op_types_to_quantize or []
        self.nodes_to_quantize = nodes_to_quantize or []
        self.nodes_to_exclude = nodes_to_exclude or []
        self.per_channel = per_channel
        self.reduce_range = reduce_range
        self.use_external_data_format = use_external_data_format


class StaticQuantConfig(QuantConfig):
    """Static quantization: ranges come from running ``calibration_data_reader``'s batches."""

    def __init__(
        self,
        calibration_data_reader: CalibrationDataReader,
        calibrate_method=CalibrationMethod.MinMax,
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=None,
        nodes_to_quantize=None,
        nodes_to_exclude=None,
        per_channel=False,
        reduce_range=False,
        use_external_data_format=False,
        calibration_providers=None,
        extra_options=None,
    ):
        super().__init__(
            activation_type,
            weight_type,
            op_types_to_quantize,
            nodes_to_quantize,
            nodes_to_exclude,
            per_channel,
            reduce_range,
            use_external_data_format,
        )
        self.calibration_data_reader = calibration_data_reader
        self.calibrate_method = calibrate_method
        self.quant_format = quant_format
        self.calibration_providers = calibration_providers
        self.extra_options = extra_options or {}


class DynamicQuantConfig(QuantConfig):
    """Dynamic quantization: weights quantized ahead, activations at run time."""

    def __init__(
        self,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=None,
        nodes_to_quantize=None,
        nodes_to_exclude=None,
        per_channel=False,
        reduce_range=False,
        use_external_data_format=False,
        extra_options=None,
    ):
        super().__init__(
            weight_type=weight_type,
            op_types_to_quantize=op_types_to_quantize,
            nodes_to_quantize=nodes_to_quantize,
            nodes_to_exclude=nodes_to_exclude,
            per_channel=per_channel,
            reduce_range=reduce_range,
            use_external_data_format=use_external_data_format,
        )
        self.extra_options = extra_options or {}


def _load(model_input: Any) -> onnx.ModelProto:
    if isinstance(model_input, onnx.ModelProto):
        return model_input
    if isinstance(model_input, (str, os.PathLike)):
        path = Path(model_input)
        if not path.is_file():
            raise FileNotFoundError(f"model_input {str(path)!r} is not a file")
        return onnx.load(str(path))
    raise TypeError(
        f"model_input must be a path or an onnx.ModelProto, got {type(model_input).__name__}"
    )


def _save(model: onnx.ModelProto, model_output: Any, external: bool) -> None:
    if not isinstance(model_output, (str, os.PathLike)):
        raise TypeError(f"model_output must be a path, got {type(model_output).__name__}")
    onnx.checker.check_model(model)
    if external:
        name = Path(model_output).name + ".data"
        onnx.save_model(
            model,
            str(model_output),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=name,
        )
    else:
        onnx.save_model(model, str(model_output))


def _check_lists(op_types, nodes_to_quantize, nodes_to_exclude) -> None:
    for what, v in (
        ("op_types_to_quantize", op_types),
        ("nodes_to_quantize", nodes_to_quantize),
        ("nodes_to_exclude", nodes_to_exclude),
    ):
        if v is not None and (isinstance(v, str) or not isinstance(v, Sequence | set)):
            raise TypeError(f"{what} must be a list of names, got {v!r}")


def quantize_static(
    model_input: str | Path | onnx.ModelProto,
    model_output: str | Path,
    calibration_data_reader: CalibrationDataReader | None = None,
    quant_format=QuantFormat.QDQ,
    op_types_to_quantize=None,
    per_channel=False,
    reduce_range=False,
    activation_type=QuantType.QInt8,
    weight_type=QuantType.QInt8,
    nodes_to_quantize=None,
    nodes_to_exclude=None,
    use_external_data_format=False,
    calibrate_method=CalibrationMethod.MinMax,
    calibration_providers=None,
    extra_options=None,
    calibration_cache_path: str | Path | None = None,
) -> None:
    """Quantize weights and activations, with activation ranges from calibration data.

    Calibration runs the float model in ``ort_core.InferenceSession`` with
    ``calibration_providers`` (the CPU provider by default). ``quant_format`` picks QDQ pairs
    around float ops or QOperator (QLinear*) ops. The model written passes onnx.checker.

    ``calibration_cache_path``: a JSON file of calibrated ranges; read when it exists (the reader
    is then not needed), written after calibrating otherwise. Its method must match
    ``calibrate_method``; ranges cached with other SmoothQuant settings are recalibrated.

    ``extra_options["CalibStridedMinMax"]``: read the calibration batches that many at a time
    through the reader's ``set_range`` (it needs ``__len__`` too), as onnxruntime does.

    ``extra_options["SmoothQuant"]``: smooth activation outliers into the weights of MatMul,
    Gemm and 1x1 Conv ops first (see :mod:`ort_core.quantization.smooth_quant`), then calibrate
    and quantize the smoothed model.
    """
    _check_lists(op_types_to_quantize, nodes_to_quantize, nodes_to_exclude)
    if not isinstance(quant_format, QuantFormat):
        raise TypeError(f"quant_format must be a QuantFormat, got {quant_format!r}")
    cache = Path(calibration_cache_path) if calibration_cache_path is not None else None
    if cache is not None and cache.exists() and not cache.is_file():
        raise ValueError(f"calibration_cache_path {str(cache)!r} is not a file")
    if calibration_data_reader is None and (cache is None or not cache.is_file()):
        raise ValueError(
            "quantize_static needs a calibration_data_reader (a CalibrationDataReader yielding "
            "input dicts) or an existing calibration_cache_path; use quantize_dynamic to "
            "quantize without calibration data"
        )
    extra = check_extra_options(extra_options)
    model = _load(model_input)
    stride = extra.get("CalibStridedMinMax")
    if stride and calibration_data_reader is not None and (cache is None or not cache.is_file()):
        strided_reader_length(calibration_data_reader, stride)  # fail before any work
    sq = smooth_quant.settings(extra)
    if sq is not None:
        if calibration_data_reader is None:
            raise ValueError(
                "extra_options['SmoothQuant'] needs a calibration_data_reader: the smoothing "
                "scales come from per-channel statistics that a calibration cache does not hold"
            )
        model, inserted, replay = smooth_quant.smooth_model(
            model, calibration_data_reader, extra, calibration_providers
        )
        if not stride:  # strides are read again through set_range
            calibration_data_reader = replay
        # the Muls that carry 1/s where it could not be folded stay float, as in onnxruntime
        nodes_to_exclude = [*(nodes_to_exclude or []), *inserted]
    mode = "qdq" if quant_format is QuantFormat.QDQ else "qoperator"
    kw = dict(
        per_channel=per_channel,
        reduce_range=reduce_range,
        weight_type=weight_type,
        activation_type=activation_type,
        op_types_to_quantize=op_types_to_quantize,
        nodes_to_quantize=nodes_to_quantize,
        nodes_to_exclude=nodes_to_exclude,
        extra_options=extra,
    )
    names = tensors_to_calibrate(model, mode, **kw)
    calib_keys = {
        "CalibTensorRangeSymmetric": "symmetric",
        "CalibMovingAverage": "moving_average",
        "CalibMovingAverageConstant": "averaging_constant",
        "CalibMaxIntermediateOutputs": "max_intermediate_outputs",
        "CalibPercentile": "percentile",
    }
    calib_opts = {v: extra[k] for k, v in calib_keys.items() if k in extra}
    ranges = None
    if cache is not None and cache.is_file():
        cached = load_tensors_data(cache)
        if (cached.smooth_quant or None) != sq:
            if calibration_data_reader is None:
                raise ValueError(
                    f"the calibration cache {str(cache)!r} was calibrated with SmoothQuant "
                    f"settings {cached.smooth_quant or None}, this run uses {sq}; pass a "
                    "calibration_data_reader to recalibrate, or delete the cache"
                )
            logger.warning(
                "the calibration cache %s was calibrated with SmoothQuant settings %s, this run "
                "uses %s: recalibrating and overwriting it",
                cache,
                cached.smooth_quant or None,
                sq,
            )
        elif cached.calibration_method != calibrate_method:
            raise ValueError(
                f"the calibration cache {str(cache)!r} holds {cached.calibration_method.name} "
                f"ranges but calibrate_method is {calibrate_method}; delete the cache or pass "
                "the matching method"
            )
        else:
            ranges = cached
    if ranges is None:
        ranges = collect_ranges(
            model,
            names,
            calibration_data_reader,
            calibrate_method,
            calibration_providers,
            calib_opts,
            stride=stride,
        )
        if cache is not None:
            save_tensors_data(ranges, cache, smooth_quant=sq or False)
    quantized = Quantizer(model, mode, ranges=dict(ranges), **kw).run()
    _save(quantized, model_output, use_external_data_format)


def quantize_dynamic(
    model_input: str | Path | onnx.ModelProto,
    model_output: str | Path,
    op_types_to_quantize=None,
    per_channel=False,
    reduce_range=False,
    weight_type=QuantType.QInt8,
    nodes_to_quantize=None,
    nodes_to_exclude=None,
    use_external_data_format=False,
    extra_options=None,
) -> None:
    """Quantize weights ahead of time and activations at run time (DynamicQuantizeLinear ->
    MatMulInteger/ConvInteger), as onnxruntime's quantize_dynamic writes them."""
    _check_lists(op_types_to_quantize, nodes_to_quantize, nodes_to_exclude)
    if check_extra_options(extra_options).get("SmoothQuant", False):
        raise ValueError(
            "extra_options['SmoothQuant'] needs calibration data and applies to quantize_static "
            "only; quantize_dynamic quantizes activations at run time"
        )
    model = _load(model_input)
    quantized = Quantizer(
        model,
        "dynamic",
        per_channel=per_channel,
        reduce_range=reduce_range,
        weight_type=weight_type,
        activation_type=QuantType.QUInt8,
        op_types_to_quantize=op_types_to_quantize,
        nodes_to_quantize=nodes_to_quantize,
        nodes_to_exclude=nodes_to_exclude,
        extra_options=extra_options,
    ).run()
    _save(quantized, model_output, use_external_data_format)


def quantize(
    model_input: str | Path | onnx.ModelProto, model_output: str | Path, quant_config: QuantConfig
) -> None:
    """Quantize with a ``StaticQuantConfig``, ``DynamicQuantConfig`` or weight-only config."""
    if isinstance(quant_config, StaticQuantConfig):
        quantize_static(
            model_input,
            model_output,
            quant_config.calibration_data_reader,
            calibrate_method=quant_config.calibrate_method,
            quant_format=quant_config.quant_format,
            activation_type=quant_config.activation_type,
            weight_type=quant_config.weight_type,
            op_types_to_quantize=quant_config.op_types_to_quantize,
            nodes_to_quantize=quant_config.nodes_to_quantize,
            nodes_to_exclude=quant_config.nodes_to_exclude,
            per_channel=quant_config.per_channel,
            reduce_range=quant_config.reduce_range,
            use_external_data_format=quant_config.use_external_data_format,
            calibration_providers=quant_config.calibration_providers,
            extra_options=quant_config.extra_options,
        )
    elif isinstance(quant_config, DynamicQuantConfig):
        quantize_dynamic(
            model_input,
            model_output,
            weight_type=quant_config.weight_type,
            op_types_to_quantize=quant_config.op_types_to_quantize,
            nodes_to_quantize=quant_config.nodes_to_quantize,
            nodes_to_exclude=quant_config.nodes_to_exclude,
            per_channel=quant_config.per_channel,
            reduce_range=quant_config.reduce_range,
            use_external_data_format=quant_config.use_external_data_format,
            extra_options=quant_config.extra_options,
        )
    else:
        from .matmul_nbits_quantizer import MatMulNBitsQuantizer, WeightOnlyQuantConfig

        if isinstance(quant_config, WeightOnlyQuantConfig):
            q = MatMulNBitsQuantizer(_load(model_input), algo_config=quant_config)
            q.process()
            _save(q.model.model if hasattr(q.model, "model") else q.model, model_output, False)
            return
        raise TypeError(
            "quant_config must be a StaticQuantConfig, DynamicQuantConfig or a "
            f"WeightOnlyQuantConfig, got {type(quant_config).__name__}"
        )
