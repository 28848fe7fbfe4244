"""The Core ML provider's tests need ort-coreml and coremltools installed; they skip without."""

import pytest

pytest.importorskip(
    "coremltools", reason="coremltools is not installed: pip install ort-core[coreml]"
)
pytest.importorskip(
    "ort_coreml", reason="ort-coreml is not installed: pip install ort-core[coreml]"
)


@pytest.fixture
def reference(monkeypatch):
    """Select the MIL reference runtime for the test (ORT_COREML_REFERENCE=1)."""
    monkeypatch.setenv("ORT_COREML_REFERENCE", "1")


def pytest_configure(config):
    # also proposed for the root pyproject's marker list; registered here so the marker is known
    # wherever these tests run
    config.addinivalue_line(
        "markers", "coreml_mac: needs Core ML itself (macOS); skips elsewhere with the reason"
    )
