"""The light models that ship inside the onnx wheel, and a demo that runs them on every provider.

Their weights are constants, so a match with the expected output proves coverage, not numerics
(the numerical tests build random-weight models and compare with onnx's ReferenceEvaluator).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["LIGHT_MODELS", "light_model_dir", "light_model_case", "run_light_model", "DemoRow"]

LIGHT_MODELS = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)


def light_model_dir() -> str:
    """The folder of the light models inside the installed onnx package."""
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def light_model_case(name: str) -> tuple[str, dict[str, np.ndarray], list[np.ndarray]]:
    """(model path, feed, expected outputs) of a light model.

    The feed is the one onnx's backend test uses for these models: ``arange(n) / n`` in the input's
    shape, float32, with unknown dims set to 1.
    """
    path = os.path.join(light_model_dir(), f"light_{name}.onnx")
    model = onnx.load(path, load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    feed = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim
        )
        n = int(np.prod(shape))
        feed[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    expected = []
    for i in range(len(model.graph.output)):
        t = onnx.TensorProto()
        with open(os.path.join(light_model_dir(), f"light_{name}_output_{i}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        expected.append(numpy_helper.to_array(t))
    return path, feed, expected


@dataclass
class DemoRow:
    model: str
    providers: list[str]
    nodes: dict[str, int]
    latency_ms: float
    max_error: float
    ok: bool
    error: str = ""


def run_light_model(name: str, providers: list[str], repeat: int = 3) -> DemoRow:
    """Run one light model on ``providers`` and compare with its expected output."""
    from .session import InferenceSession

    path, feed, expected = light_model_case(name)
    try:
        sess = InferenceSession(path, providers=providers)
        outs = sess.run(None, feed)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            outs = sess.run(None, feed)
            times.append(time.perf_counter() - t0)
    except Exception as e:  # the demo reports every failure as a FAIL row
        return DemoRow(
            name, providers, {}, float("nan"), float("nan"), False, f"{type(e).__name__}: {e}"
        )
    nodes: dict[str, int] = {}
    for sub in sess.get_provider_graph_assignment_info():
        nodes[sub.ep_name] = nodes.get(sub.ep_name, 0) + len(sub.get_nodes())
    err = max(float(np.max(np.abs(o.astype(np.float64) - e))) for o, e in zip(outs, expected))
    ok = all(
        o.shape == e.shape and np.allclose(o, e, rtol=1e-3, atol=1e-5)
        for o, e in zip(outs, expected)
    )
    return DemoRow(name, sess.get_providers(), nodes, 1000 * float(np.median(times)), err, ok)
