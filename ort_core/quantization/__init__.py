"""Drop-in for ``onnxruntime.quantization``: the same names, signatures and defaults.

Scripts change only their import::

    from ort_core.quantization import QuantType, quantize_dynamic, quantize_static

Calibration runs through ort-core's own ``InferenceSession``. Float16/bfloat16 conversion lives in
:mod:`ort_core.quantization.float16`, 4-bit weight-only MatMul quantization in
:mod:`ort_core.quantization.matmul_nbits_quantizer`. ``import ort_core`` does not import this
package, and this package loads its modules on first use (so ``ort_core.quantization.cli`` stays
cheap to import).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

_EXPORTS = {
    "CalibrationDataReader": "calibrate",
    "CalibrationMethod": "calibrate",
    "TensorData": "calibrate",
    "TensorsData": "calibrate",
    "create_calibrator": "calibrate",
    "quant_pre_process": "preprocess",
    "QuantFormat": "quant_utils",
    "QuantType": "quant_utils",
    "QuantizationMode": "quant_utils",
    "DynamicQuantConfig": "quantize",
    "QuantConfig": "quantize",
    "StaticQuantConfig": "quantize",
    "quantize": "quantize",
    "quantize_dynamic": "quantize",
    "quantize_static": "quantize",
    "MatMulNBitsQuantizer": "matmul_nbits_quantizer",
    "DefaultWeightOnlyQuantConfig": "matmul_nbits_quantizer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ort_core.quantization' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    # importing the submodule ``quantize`` binds the package attribute to the module; the
    # public name is the function, as in onnxruntime.quantization
    loaded = sys.modules.get(f"{__name__}.quantize")
    if loaded is not None:
        globals()["quantize"] = loaded.quantize
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
