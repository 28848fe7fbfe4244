"""onnx's backend test suite on the OpenCL provider with CPU fallback (expected failures:
expected_failures/opencl.txt). Skipped, with the reason, where the provider is unavailable."""

import pytest

from ort_core.plugins import get_plugin_manager
from tests.conformance.suite import make_suite

EXPECTED_FAILURES = "opencl"

_entry = get_plugin_manager().resolve("OpenCLExecutionProvider")
if _entry is None:
    pytest.skip(
        "ort-opencl is not installed: pip install ort-core[opencl]", allow_module_level=True
    )
_avail = _entry.availability()
if not _avail:
    pytest.skip(f"OpenCLExecutionProvider is unavailable: {_avail.reason}", allow_module_level=True)

globals().update(make_suite(["OpenCLExecutionProvider", "CPUExecutionProvider"], __name__))
