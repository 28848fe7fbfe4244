"""The OpenVINO provider's tests build tiny models to test OpenVINO's results: OpenVINO claims
them here, where by default the CPU provider runs graphs that small (``min_cpu_work``); the tests
of that rule set it themselves."""

import pytest


@pytest.fixture(autouse=True)
def _openvino_claims_small_graphs(monkeypatch):
    try:
        from ort_openvino.provider import OpenVINOExecutionProvider
    except ImportError:  # not installed: the modules skip themselves
        return
    monkeypatch.setattr(OpenVINOExecutionProvider, "min_cpu_work", 0)
