"""Translation conformance: the ONNX backend suite's node tests that the Core ML provider admits
(every node on Core ML), converted to ML Programs and evaluated by the MIL reference runtime, in
float32 and in float16 compute precision. Not device conformance: Core ML itself does not run here.

Data: conformance/admitted.txt (the admitted tests; exact, so a capability change shows) and
conformance/expected_failures.txt (PRECISION test # reason; a listed test that passes fails)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import node_cases, run_case

HERE = Path(__file__).parent / "conformance"
CHUNKS = 6
#: a quick sample of the suite, run by default (the whole suite is slow)
SAMPLE = (
    "test_add_bcast", "test_averagepool_2d_pads_count_include_pad", "test_cast_FLOAT_to_FLOAT16",
    "test_concat_3d_axis_negative_1", "test_gather_negative_indices", "test_gemm_all_attributes",
    "test_lrn", "test_matmul_4d", "test_maxpool_2d_ceil", "test_softmax_axis_0",
    "test_transpose_all_permutations_3", "test_where_example", "test_depthtospace_crd_mode_example",
    "test_gelu_tanh_1", "test_argmax_negative_axis_keepdims_random", "test_hardswish_expanded",
    "test_attention_4d_expanded", "test_clip_splitbounds_expanded", "test_flatten_negative_axis1",
    "test_shape_start_1", "test_pow", "test_globalaveragepool", "test_logsoftmax_axis_1",
    "test_mean_two_inputs", "test_thresholdedrelu_example", "test_spacetodepth",
    "test_gridsample_reflection_padding", "test_gridsample_nearest",
)  # fmt: skip


def _read(name: str) -> list[str]:
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


ADMITTED = set(_read("admitted.txt"))
#: admitted once the inputs after the first are constants (harness.with_constant_inputs)
CONSTANT_INPUTS = set(_read("admitted_constant_inputs.txt"))
EXPECTED: dict[str, dict[str, str]] = {
    f"{p}{v}": {} for p in ("FLOAT32", "FLOAT16") for v in ("", "/constant-inputs")
}
for _line in _read("expected_failures.txt"):
    _head, _, _reason = _line.partition("#")
    _precision, _case = _head.split()
    EXPECTED[_precision][_case] = _reason.strip()


def _check(cases: list[str], precision: str, admission: bool, constants: bool = False) -> None:
    outcomes = [run_case(c, precision, constants=constants) for c in cases]
    if admission:
        admitted = {o.name for o in outcomes if o.status != "refused"}
        listed = ADMITTED & set(cases)
        assert admitted == listed, (
            f"admission changed: newly admitted {sorted(admitted - listed)}, no longer admitted "
            f"{sorted(listed - admitted)} (update conformance/admitted.txt when intended)"
        )
    if constants:
        refused = {o.name: o.detail for o in outcomes if o.status == "refused"}
        assert not refused, f"no longer admitted with constant inputs: {refused}"
    expected = EXPECTED[precision + ("/constant-inputs" if constants else "")]
    failed = {o.name: o.detail for o in outcomes if o.status == "fail" and o.name not in expected}
    assert not failed, f"{precision}: {len(failed)} admitted node tests fail: {failed}"
    stale = [o.name for o in outcomes if o.status == "pass" and o.name in expected]
    assert not stale, f"{precision}: listed as failing but passing (remove them): {stale}"


def test_sample(reference):
    assert set(SAMPLE) <= ADMITTED
    _check(list(SAMPLE), "FLOAT32", admission=False)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_float32(reference, chunk):
    """Every node test: admission is exactly the list, every admitted one passes (float32)."""
    _check(node_cases()[chunk::CHUNKS], "FLOAT32", admission=True)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS // 2))
def test_float16(reference, chunk):
    """The admitted node tests with ComputePrecision=FLOAT16 (admission does not depend on it)."""
    cases = sorted(ADMITTED)[chunk :: CHUNKS // 2]
    _check(cases, "FLOAT16", admission=False)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["FLOAT32", "FLOAT16"])
@pytest.mark.parametrize("chunk", range(2))
def test_constant_inputs(reference, precision, chunk):
    """The tests admitted once their weights, shapes and axes are constants: still admitted, and
    passing in both precisions."""
    _check(sorted(CONSTANT_INPUTS)[chunk::2], precision, admission=False, constants=True)


def test_data_files_are_consistent():
    names = set(node_cases())
    assert ADMITTED <= names, sorted(ADMITTED - names)
    assert CONSTANT_INPUTS <= names and not CONSTANT_INPUTS & ADMITTED
    for precision, entries in EXPECTED.items():
        pool = CONSTANT_INPUTS if precision.endswith("/constant-inputs") else ADMITTED
        assert set(entries) <= pool, (precision, sorted(set(entries) - pool))
        assert all(entries.values()), f"{precision}: an expected failure has no reason"
