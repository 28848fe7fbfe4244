"""Build onnx's backend test suite for a list of providers, with expected failures as data.

Each provider has ``expected_failures/<name>.txt``: one test name per line, then ``#`` and the reason.
Listed tests are marked xfail(strict=True), so a listed test that passes fails the run (a stale entry);
entries whose reason starts with "[random]" compare random draws, and those starting with
"[ill-conditioned]" expect exact float ties that depend on the machine's BLAS kernels: neither is
strict.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import onnx.backend.test

from ort_core.backend import OrtCoreBackend

HERE = Path(__file__).parent
EXPECTED_DIR = HERE / "expected_failures"


def read_expected(name: str) -> dict[str, str]:
    """Test name -> reason, from ``expected_failures/<name>.txt``."""
    path = EXPECTED_DIR / f"{name}.txt"
    entries: dict[str, str] = {}
    if not path.exists():
        return entries
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        test, _, reason = line.partition("#")
        test, reason = test.strip(), reason.strip()
        if not reason:
            raise ValueError(f"{path.name}:{lineno}: entry '{test}' has no reason after '#'")
        if test in entries:
            raise ValueError(f"{path.name}:{lineno}: duplicate entry '{test}'")
        entries[test] = reason
    return entries


def backend_for(providers: list) -> type[OrtCoreBackend]:
    """A backend whose sessions take ``providers`` (names, or (name, options) pairs)."""

    class Backend(OrtCoreBackend):
        @classmethod
        def prepare(cls, model, device="CPU", **kwargs):
            return super().prepare(model, device, providers=providers, **kwargs)

    names = [p if isinstance(p, str) else p[0] for p in providers]
    Backend.__name__ = "Backend_" + "_".join(p.replace("ExecutionProvider", "") for p in names)
    return Backend


def make_suite(providers: list, module_name: str) -> dict[str, type]:
    """The unittest TestCase classes of onnx's backend suite (CPU cases only) for ``providers``."""
    os.environ.setdefault("ONNX_HOME", os.path.join(tempfile.gettempdir(), "ort_core_onnx_home"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        suite = onnx.backend.test.BackendTest(backend_for(providers), module_name)
    cases = suite.test_cases
    for cls in cases.values():  # keep the CPU cases only (the CUDA copies would all be skipped)
        for attr in [a for a in vars(cls) if a.startswith("test_") and not a.endswith("_cpu")]:
            delattr(cls, attr)
    return cases


def all_case_names() -> set[str]:
    """Names of every CPU case of the suite (for the stale-entry check)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        suite = onnx.backend.test.BackendTest(OrtCoreBackend, "names")
    names = set()
    for items in suite._test_items.values():
        names.update(n for n in items if n.endswith("_cpu"))
    return names
