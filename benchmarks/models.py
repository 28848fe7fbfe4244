"""Benchmark models: the light models of the onnx wheel (more geometries join with issue 7)."""

from __future__ import annotations

from typing import Any

from ort_core.demo import LIGHT_MODELS, light_model_case

MODEL_NAMES = [m.replace("bvlc_", "") for m in LIGHT_MODELS]


def load_benchmark_model(name: str) -> tuple[str, dict[str, Any]]:
    """(model path, feed) for a benchmark model name."""
    light = "bvlc_alexnet" if name == "alexnet" else name
    if light in LIGHT_MODELS:
        path, feed, _ = light_model_case(light)
        return path, feed
    raise SystemExit(f"unknown benchmark model {name!r}; known: {', '.join(MODEL_NAMES)}")
