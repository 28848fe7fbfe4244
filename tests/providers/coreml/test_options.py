"""Host logic: the provider's options, availability and fallback (no conversion runs here)."""

from __future__ import annotations

import platform

import numpy as np
import pytest
from onnx import TensorProto, helper
from ort_coreml.options import COMPUTE_UNITS, VALID_OPTIONS, CoreMLOptions
from ort_coreml.provider import CoreMLExecutionProvider

import ort_core as ort
from ort_core.errors import InvalidArgument, ProviderNotAvailable
from tests.conftest import make_model, tensor

from .harness import COREML, session

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _relu_model():
    return make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [tensor("x", shape=[2, 3])],
        [tensor("y", shape=[2, 3])],
    )


def test_defaults_are_reported_with_the_runtime(reference):
    ep = CoreMLExecutionProvider({})
    opts = ep.get_options()
    assert opts["ModelFormat"] == "MLProgram"
    assert opts["MLComputeUnits"] == "ALL"
    assert opts["RequireStaticInputShapes"] == "0"
    assert opts["EnableOnSubgraphs"] == "0"
    assert opts["SpecializationStrategy"] == "Default"
    assert opts["ComputePrecision"] == "FLOAT32"
    assert opts["runtime"] == "MIL reference runtime (numpy)"
    assert "ModelCacheDirectory" not in opts


@pytest.mark.parametrize("units", COMPUTE_UNITS)
def test_compute_units_accepted(units):
    assert CoreMLOptions.parse({"MLComputeUnits": units}).compute_units == units


def test_every_option_parses_and_round_trips(tmp_path):
    given = {
        "ModelFormat": "MLProgram",
        "MLComputeUnits": "CPUAndNeuralEngine",
        "RequireStaticInputShapes": "1",
        "EnableOnSubgraphs": "1",
        "SpecializationStrategy": "FastPrediction",
        "ProfileComputePlan": "1",
        "AllowLowPrecisionAccumulationOnGPU": "1",
        "ModelCacheDirectory": str(tmp_path),
        "ComputePrecision": "FLOAT16",
    }
    assert set(given) == set(VALID_OPTIONS)
    parsed = CoreMLOptions.parse(given)
    assert parsed.require_static_input_shapes and parsed.enable_on_subgraphs
    assert parsed.profile_compute_plan and parsed.allow_low_precision_accumulation_on_gpu
    assert parsed.as_dict() == given


def test_unknown_option_is_an_invalid_argument_naming_the_valid_ones():
    with pytest.raises(
        InvalidArgument, match="Unknown CoreMLExecutionProvider option.*MLComputeUnits"
    ):
        CoreMLOptions.parse({"ComputeUnits": "ALL"})


def test_neural_network_format_is_refused_with_the_reason():
    with pytest.raises(InvalidArgument, match="NeuralNetwork is not supported.*MLProgram"):
        CoreMLOptions.parse({"ModelFormat": "NeuralNetwork"})


@pytest.mark.parametrize(
    "options, match",
    [
        ({"MLComputeUnits": "GPU"}, "not one of CPUOnly"),
        ({"RequireStaticInputShapes": "yes"}, "not a flag"),
        ({"SpecializationStrategy": "Fast"}, "not one of Default, FastPrediction"),
        ({"ComputePrecision": "INT8"}, "not one of FLOAT32, FLOAT16"),
    ],
)
def test_bad_values_are_invalid_arguments(options, match):
    with pytest.raises(InvalidArgument, match=match):
        CoreMLOptions.parse(options)


def test_session_rejects_unknown_options(reference):
    with pytest.raises(InvalidArgument, match="Unknown CoreMLExecutionProvider option"):
        session(_relu_model(), {"device_type": "GPU"})


@pytest.mark.skipif(platform.system() == "Darwin", reason="Core ML is available on macOS")
def test_unavailable_off_macos_with_one_sentence(monkeypatch):
    monkeypatch.delenv("ORT_COREML_REFERENCE", raising=False)
    avail = CoreMLExecutionProvider.availability()
    assert not avail and avail.reason == "Core ML runs on macOS only."
    assert COREML not in ort.get_available_providers()


@pytest.mark.skipif(platform.system() == "Darwin", reason="Core ML is available on macOS")
def test_session_falls_back_with_the_reason(monkeypatch):
    monkeypatch.delenv("ORT_COREML_REFERENCE", raising=False)
    with pytest.warns(RuntimeWarning, match="Core ML runs on macOS only"):
        sess = ort.InferenceSession(_relu_model().SerializeToString(), providers=["coreml", "cpu"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.maximum(x, 0))


@pytest.mark.skipif(platform.system() == "Darwin", reason="Core ML is available on macOS")
def test_strict_mode_fails_with_the_reason(monkeypatch):
    monkeypatch.delenv("ORT_COREML_REFERENCE", raising=False)
    so = ort.SessionOptions()
    so.add_session_config_entry("session.strict_providers", "1")
    with pytest.raises(ProviderNotAvailable, match="Core ML runs on macOS only"):
        ort.InferenceSession(_relu_model().SerializeToString(), so, providers=["coreml", "cpu"])


def test_reference_runtime_reports_itself(reference):
    avail = CoreMLExecutionProvider.availability()
    assert avail and "reference runtime" in avail.reason and "not Core ML" in avail.reason
    with pytest.warns(RuntimeWarning, match="MIL reference runtime.*not on Core ML"):
        sess = ort.InferenceSession(_relu_model().SerializeToString(), providers=["coreml"])
    assert sess.get_provider_options()[COREML]["runtime"] == "MIL reference runtime (numpy)"


def test_int64_feed_outside_int32_is_a_typed_error(reference):
    model = make_model(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
        [tensor("a", TensorProto.INT64, [2]), tensor("b", TensorProto.INT64, [2])],
        [tensor("y", TensorProto.INT64, [2])],
    )
    sess = session(model)
    a = np.array([1, 2], np.int64)
    np.testing.assert_array_equal(sess.run(None, {"a": a, "b": a})[0], [2, 4])
    with pytest.raises(Exception, match="outside the int32 range"):
        sess.run(None, {"a": np.array([2**40, 1], np.int64), "b": a})
