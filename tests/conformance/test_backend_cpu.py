"""onnx's backend test suite on the CPU provider alone (expected failures: expected_failures/cpu.txt)."""

from tests.conformance.suite import make_suite

EXPECTED_FAILURES = "cpu"

globals().update(make_suite(["CPUExecutionProvider"], __name__))
