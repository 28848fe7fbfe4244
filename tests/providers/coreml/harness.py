"""Shared pieces of the Core ML provider's tests: the reference-runtime switch, sessions, and the
ONNX backend suite's node tests run through the MIL reference runtime (translation conformance).

What these tests prove is the translation: ONNX nodes -> MIL program -> ML Program package,
evaluated by the MIL reference runtime (coremltools' value inference and checked numpy ops). They do
not prove that Core ML on a device computes the same; tests that need a Mac carry ``coreml_mac``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import os
import platform
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from unittest import mock

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import ort_core as ort

COREML = "CoreMLExecutionProvider"
CPU = "CPUExecutionProvider"


def coreml_mac() -> pytest.MarkDecorator:
    """The marker of tests that need Core ML itself (macOS): they skip elsewhere, with the reason."""
    return pytest.mark.skipif(
        platform.system() != "Darwin" or os.environ.get("ORT_COREML_REFERENCE") == "1",
        reason="needs Core ML on macOS (this machine runs "
        f"{platform.system()}; only the MIL reference runtime is available here)",
    )


def session(model, options=None, fallback=True, **kw):
    """A session on [Core ML (reference runtime), CPU]; ``fallback=False``: Core ML alone."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not fallback:
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    providers = [(COREML, options or {})] + ([CPU] if fallback else [])
    return ort.InferenceSession(data, so, providers=providers, **kw)


def placement(sess) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sub in sess.placements:
        counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    return counts


@dataclass
class Outcome:
    name: str
    status: str  # "refused", "pass", "fail"
    detail: str = ""


@functools.cache
def _node_tests() -> dict:
    """onnx's node test cases (models and data built in memory by onnx.backend.test.case)."""
    from onnx.backend.test.loader import load_node_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = {t.name: t for t in load_node_model_tests()}
    # keep these many long-lived objects out of later collections
    gc.freeze()
    return cases


def node_cases() -> list[str]:
    return sorted(_node_tests())


def _normalize(value):
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, np.generic):
        return np.asarray(value)
    return value


def _load(case: str):
    t = _node_tests()[case]
    inputs, outputs = t.data_sets[0]
    names = [i.name for i in t.model.graph.input]
    return t.model, dict(zip(names, map(_normalize, inputs))), [_normalize(o) for o in outputs]


#: tolerance of the comparison: the backend suite's own for float32; float16 compute gets the
#: error of half precision over a few roundings
TOLERANCE = {"FLOAT32": (1e-3, 1e-5), "FLOAT16": (2e-2, 5e-3)}


def with_constant_inputs(model: onnx.ModelProto, feeds: dict) -> tuple[onnx.ModelProto, dict]:
    """The test with every input but the first made a constant initializer holding its test
    value: Core ML needs weights, shapes and axes constant, which the suite feeds as inputs."""
    model = copy.deepcopy(model)
    graph = model.graph
    rest = dict(feeds)
    for inp in list(graph.input)[1:]:
        value = feeds.get(inp.name)
        if isinstance(value, np.ndarray):
            graph.initializer.append(numpy_helper.from_array(value, inp.name))
            graph.input.remove(inp)
            del rest[inp.name]
    return model, rest


@contextlib.contextmanager
def no_full_collections():
    """coremltools' convert() ends with a full ``gc.collect()``: in a test process holding the
    whole node suite that costs ~0.1-0.4 s per conversion, more than the conversion. The sweep
    skips it (it frees nothing the results depend on)."""
    from coremltools.converters import _converters_entry

    with mock.patch.object(_converters_entry, "gc", SimpleNamespace(collect=lambda *a: 0)):
        yield


def run_case(case: str, precision: str = "FLOAT32", constants: bool = False) -> Outcome:
    with no_full_collections():
        return _run_case(case, precision, constants)


def _run_case(case: str, precision: str, constants: bool) -> Outcome:
    """Run one node test on Core ML alone (reference runtime). Refused when Core ML does not take
    every node (with the reasons), else pass or fail against the suite's expected outputs.
    ``constants``: the test's inputs after the first become constants (:func:`with_constant_inputs`)."""
    try:
        model, feeds, expected = _load(case)
    except Exception as e:  # a test whose data this onnx cannot read is not admitted
        return Outcome(case, "refused", f"unreadable: {e}")
    if constants:
        if len(model.graph.input) < 2:
            return Outcome(case, "refused", "a single input: nothing to make constant")
        model, feeds = with_constant_inputs(model, feeds)
    if any(i.type.WhichOneof("value") != "tensor_type" for i in model.graph.input):
        return Outcome(case, "refused", "non-tensor input")
    try:
        sess = session(model, {"ComputePrecision": precision}, fallback=False)
    except ort.capi.onnxruntime_pybind11_state.NotImplemented as e:
        return Outcome(case, "refused", str(e)[-300:])
    except Exception as e:
        return Outcome(case, "fail", f"session: {type(e).__name__}: {str(e)[-400:]}")
    try:
        got = sess.run(None, feeds)
    except Exception as e:
        return Outcome(case, "fail", f"run: {type(e).__name__}: {str(e)[-400:]}")
    rtol, atol = TOLERANCE[precision]
    for i, (g, e) in enumerate(zip(got, expected)):
        g = np.asarray(g)
        if not isinstance(e, np.ndarray):
            return Outcome(case, "refused", f"output {i} is not a tensor")
        if g.dtype != e.dtype or g.shape != e.shape:
            return Outcome(case, "fail", f"output {i}: {g.dtype}{g.shape} vs {e.dtype}{e.shape}")
        if e.dtype.kind == "f":
            if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
                err = np.nanmax(np.abs(g.astype(np.float64) - e))
                return Outcome(case, "fail", f"output {i}: max abs error {err:.3g}")
        elif not np.array_equal(g, e):
            return Outcome(case, "fail", f"output {i}: values differ")
    return Outcome(case, "pass")
