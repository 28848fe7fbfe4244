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

# min_cpu_work 0: OpenVINO claims the suite's tiny models too (by default the CPU provider runs
# graphs that small), so that these cases test OpenVINO's results
OPENVINO = ("OpenVINOExecutionProvider", {"min_cpu_work": "0"})
globals().update(make_suite([OPENVINO, "CPUExecutionProvider"], __name__))
