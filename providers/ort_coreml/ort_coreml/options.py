"""The provider options, parsed and checked once (no coremltools import here).

Names and values are onnxruntime's Core ML provider options; ``ComputePrecision`` is ort-core's own
(onnxruntime has no such option): it asks coremltools to convert the program to float16 compute.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ort_core.errors import InvalidArgument

PROVIDER = "CoreMLExecutionProvider"
MODEL_FORMATS = ("MLProgram", "NeuralNetwork")
COMPUTE_UNITS = ("CPUOnly", "CPUAndNeuralEngine", "CPUAndGPU", "ALL")
SPECIALIZATION = ("Default", "FastPrediction")
PRECISIONS = ("FLOAT32", "FLOAT16")
VALID_OPTIONS = (
    "ModelFormat",
    "MLComputeUnits",
    "RequireStaticInputShapes",
    "EnableOnSubgraphs",
    "SpecializationStrategy",
    "ProfileComputePlan",
    "AllowLowPrecisionAccumulationOnGPU",
    "ModelCacheDirectory",
    "ComputePrecision",
)
#: the environment variable that selects the MIL reference runtime (numpy) instead of Core ML
REFERENCE_ENV = "ORT_COREML_REFERENCE"


def reference_requested() -> bool:
    """Whether ``ORT_COREML_REFERENCE`` asks for the MIL reference runtime."""
    return os.environ.get(REFERENCE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _choice(options: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = options.get(name, default).strip()
    for a in allowed:
        if a.lower() == value.lower():
            return a
    raise InvalidArgument(f"{PROVIDER} option {name}={value!r} is not one of {', '.join(allowed)}.")


def _flag(options: dict[str, str], name: str) -> bool:
    value = options.get(name, "0").strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false", ""):
        return False
    raise InvalidArgument(f"{PROVIDER} option {name}={value!r} is not a flag: use 0 or 1.")


@dataclass(frozen=True)
class CoreMLOptions:
    """The options in force (see docs/providers/coreml.md)."""

    model_format: str = "MLProgram"
    compute_units: str = "ALL"
    require_static_input_shapes: bool = False
    enable_on_subgraphs: bool = False
    specialization_strategy: str = "Default"
    profile_compute_plan: bool = False
    allow_low_precision_accumulation_on_gpu: bool = False
    model_cache_directory: str = ""
    compute_precision: str = "FLOAT32"

    @classmethod
    def parse(cls, options: dict[str, str]) -> CoreMLOptions:
        """Check and parse provider options.

        Raises:
            InvalidArgument: an unknown option, a value outside an option's choices, or
                ``ModelFormat=NeuralNetwork``.
        """
        unknown = sorted(set(options) - set(VALID_OPTIONS))
        if unknown:
            raise InvalidArgument(
                f"Unknown {PROVIDER} option(s) {unknown}. Valid options: {', '.join(VALID_OPTIONS)}."
            )
        fmt = _choice(options, "ModelFormat", MODEL_FORMATS, "MLProgram")
        if fmt == "NeuralNetwork":
            raise InvalidArgument(
                f"{PROVIDER} option ModelFormat=NeuralNetwork is not supported: ort-coreml builds "
                "ML Programs only (the NeuralNetwork format is Core ML's legacy format, frozen by "
                "Apple since Core ML 5). Use ModelFormat=MLProgram or leave the option out."
            )
        return cls(
            model_format=fmt,
            compute_units=_choice(options, "MLComputeUnits", COMPUTE_UNITS, "ALL"),
            require_static_input_shapes=_flag(options, "RequireStaticInputShapes"),
            enable_on_subgraphs=_flag(options, "EnableOnSubgraphs"),
            specialization_strategy=_choice(
                options, "SpecializationStrategy", SPECIALIZATION, "Default"
            ),
            profile_compute_plan=_flag(options, "ProfileComputePlan"),
            allow_low_precision_accumulation_on_gpu=_flag(
                options, "AllowLowPrecisionAccumulationOnGPU"
            ),
            model_cache_directory=options.get("ModelCacheDirectory", "").strip(),
            compute_precision=_choice(options, "ComputePrecision", PRECISIONS, "FLOAT32"),
        )

    def as_dict(self) -> dict[str, str]:
        """The options as onnxruntime's ``get_provider_options()`` reports them."""
        out = {
            "ModelFormat": self.model_format,
            "MLComputeUnits": self.compute_units,
            "RequireStaticInputShapes": str(int(self.require_static_input_shapes)),
            "EnableOnSubgraphs": str(int(self.enable_on_subgraphs)),
            "SpecializationStrategy": self.specialization_strategy,
            "ProfileComputePlan": str(int(self.profile_compute_plan)),
            "AllowLowPrecisionAccumulationOnGPU": str(
                int(self.allow_low_precision_accumulation_on_gpu)
            ),
            "ComputePrecision": self.compute_precision,
        }
        if self.model_cache_directory:
            out["ModelCacheDirectory"] = self.model_cache_directory
        return out
