"""onnx's backend node tests on the providers named in ``ORT_GPU_CHECK_PROVIDERS``
(comma-separated; default the CPU provider alone), for ``check.py``.

The cases are those of ``tests/conformance`` (``make_suite``), without its expected-failure
lists: the check compares raw outcomes of the same tests with and without the CUDA provider. A
provider that is not available here is a collection error, never a silent fallback to the CPU.
Run from the repository root (``tests`` must be importable).
"""

import os

from ort_core.plugins import get_plugin_manager
from tests.conformance.suite import make_suite

PROVIDERS = [
    p.strip()
    for p in os.environ.get("ORT_GPU_CHECK_PROVIDERS", "CPUExecutionProvider").split(",")
    if p.strip()
]

for _name in PROVIDERS:
    _entry = get_plugin_manager().resolve(_name)
    if _entry is None:
        raise RuntimeError(f"{_name} is not installed; the backend suite cannot run on it.")
    _avail = _entry.availability()
    if not _avail:
        raise RuntimeError(f"{_name} is not available here: {_avail.reason}")

OnnxBackendNodeModelTest = make_suite(PROVIDERS, __name__)["OnnxBackendNodeModelTest"]
