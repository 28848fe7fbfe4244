"""Benchmark models: the light models of the onnx wheel, and BERT-base, GPT-2 small and ViT-base
geometries with random weights built on demand by geometries.py (cached, never committed)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from geometries import BUILDERS, build, feed_for

from ort_core.demo import LIGHT_MODELS, light_model_case

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "tests", "models", "fixtures")
TINY = ("bert_tiny", "gpt2_tiny", "vit_tiny")  # the committed test fixtures
MODEL_NAMES = [m.replace("bvlc_", "") for m in LIGHT_MODELS] + list(BUILDERS)


def _tiny(name: str) -> tuple[str, dict[str, Any]]:
    import onnx

    path = os.path.join(FIXTURES, f"{name}.onnx")
    model = onnx.load(path, load_external_data=False)
    rng = np.random.default_rng(0)
    feed = {}
    for vi in model.graph.input:
        tt = vi.type.tensor_type
        shape = [d.dim_value or 1 for d in tt.shape.dim]
        if tt.elem_type == onnx.TensorProto.INT64:
            feed[vi.name] = rng.integers(0, 50 if vi.name == "input_ids" else 2, shape).astype(
                np.int64
            )
        else:
            feed[vi.name] = rng.standard_normal(shape).astype(np.float32)
    return path, feed


def load_benchmark_model(name: str) -> tuple[str, dict[str, Any]]:
    """(model path, feed) for a benchmark model name."""
    if name in BUILDERS:
        return build(name), feed_for(name)
    if name in TINY:
        return _tiny(name)
    light = "bvlc_alexnet" if name == "alexnet" else name
    if light in LIGHT_MODELS:
        path, feed, _ = light_model_case(light)
        return path, feed
    raise SystemExit(f"unknown benchmark model {name!r}; known: {', '.join(MODEL_NAMES)}")
