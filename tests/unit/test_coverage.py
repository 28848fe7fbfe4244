"""Audit of the CPU provider's operator coverage against the installed onnx's schemas.

Every non-deprecated schema version of ai.onnx, ai.onnx.preview and ai.onnx.preview.training must
resolve to a CPU kernel at its since-version, or be listed below with the reason it has none.
"""

from __future__ import annotations

import numpy as np
import onnx
from ort_cpu.kernels import registry

DOMAINS = ("", "ai.onnx.preview", "ai.onnx.preview.training")

#: Ops the standard defines as functions that have no direct kernel: the partitioner expands
#: their body into ops that have kernels. (domain, op) -> why there is no direct kernel.
EXPANDED_FUNCTIONS: dict[tuple[str, str], str] = {}

#: Ops with neither a kernel nor a function body. (domain, op) -> reason.
KNOWN_GAPS = {
    ("ai.onnx.preview.training", "Gradient"): (
        "differentiates the enclosing graph (xs/zs to y), which a kernel cannot see: it needs "
        "the core to hand the graph to the kernel builder (or a core pass that expands Gradient "
        "into the backward graph) plus gradient rules per op"
    ),
}


def _schemas():
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain in DOMAINS and not s.deprecated:
            yield s


def _is_function(s) -> bool:
    return bool(s.has_function or s.has_context_dependent_function)


def test_every_schema_version_has_a_kernel_or_a_listed_reason():
    missing = {}
    for s in _schemas():
        if registry.lookup(s.domain, s.name, s.since_version) is None:
            missing.setdefault((s.domain, s.name), []).append(s.since_version)
    unexplained = {k: v for k, v in missing.items() if k not in EXPANDED_FUNCTIONS | KNOWN_GAPS}
    assert not unexplained, (
        f"schema versions without a CPU kernel or a listed reason: {unexplained}"
    )
    stale = sorted(set(EXPANDED_FUNCTIONS) | set(KNOWN_GAPS) - set(missing))
    assert not stale, f"listed as missing but a kernel exists now (remove the entry): {stale}"


def test_listed_function_ops_have_a_body():
    for key in EXPANDED_FUNCTIONS:
        versions = [s for s in _schemas() if (s.domain, s.name) == key]
        assert versions and all(map(_is_function, versions)), f"{key[1]} has no function body"


def test_known_gaps_are_not_functions():
    for (domain, op), reason in KNOWN_GAPS.items():
        assert reason
        schema = onnx.defs.get_schema(op, domain=domain)
        assert not _is_function(schema), f"{op} is a function: list it in EXPANDED_FUNCTIONS"


def test_kernel_since_versions_exist_in_the_standard():
    """A kernel registered at a since-version the standard does not have is dead (never picked
    before the next real version) or a typo."""
    versions = {}
    for s in onnx.defs.get_all_schemas_with_history():
        versions.setdefault((s.domain, s.name), set()).add(s.since_version)
    bad = [
        (d, op, since)
        for d, op, since in registry.keys()
        if (d, op) in versions and since not in versions[(d, op)]
    ]
    assert not bad, f"kernels at since-versions onnx does not define: {bad}"


def test_dtype_sets_are_numpy_dtypes():
    for domain, op, since in registry.keys():
        for allowed in registry.lookup(domain, op, since).dtypes.values():
            assert all(isinstance(t, np.dtype) for t in allowed), (domain, op, since)
