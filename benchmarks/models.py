"""Benchmark models: the light models of the onnx wheel, and BERT-base, GPT-2 small and ViT-base
geometries with random weights built on demand by geometries.py (cached, never committed)."""

from __future__ import annotations

from typing import Any

from geometries import BUILDERS, build, feed_for

from ort_core.demo import LIGHT_MODELS, light_model_case

MODEL_NAMES = [m.replace("bvlc_", "") for m in LIGHT_MODELS] + list(BUILDERS)


def load_benchmark_model(name: str) -> tuple[str, dict[str, Any]]:
    """(model path, feed) for a benchmark model name."""
    if name in BUILDERS:
        return build(name), feed_for(name)
    light = "bvlc_alexnet" if name == "alexnet" else name
    if light in LIGHT_MODELS:
        path, feed, _ = light_model_case(light)
        return path, feed
    raise SystemExit(f"unknown benchmark model {name!r}; known: {', '.join(MODEL_NAMES)}")
