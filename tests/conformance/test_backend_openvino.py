"""onnx's backend test suite on the OpenVINO provider with the CPU provider as fallback (expected
failures: expected_failures/openvino.txt). Skipped with the reason when OpenVINO is unavailable."""

import pytest

from ort_core.session import get_provider_availability
from tests.conformance.suite import make_suite

EXPECTED_FAILURES = "openvino"

_available, _reason = get_provider_availability().get(
    "OpenVINOExecutionProvider",
    (False, "ort-openvino is not installed: pip install ort-core[openvino]"),
)
if not _available:
    pytest.skip(f"OpenVINOExecutionProvider is unavailable: {_reason}", allow_module_level=True)

globals().update(make_suite(["OpenVINOExecutionProvider", "CPUExecutionProvider"], __name__))
