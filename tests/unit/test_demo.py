"""The demo's judging (well- and ill-conditioned outputs), its table, and ``ort-core demo``."""

from __future__ import annotations

import os

import numpy as np
import pytest
from onnx import TensorProto, helper

from ort_core import demo
from ort_core.cli import main
from ort_core.demo import (
    DemoReport,
    DemoRow,
    Run,
    Verdict,
    augment,
    condition_number,
    decide,
    format_report,
    judge,
    run_demo,
)
from ort_core.provider import KernelProvider, KernelRegistry
from tests.conftest import make_model, tensor
from tests.unit.providers_for_tests import UnavailableProvider

N = 1000


def softmax_case(op="Softmax", opset=9):
    """x[1,4] -> MatMul(W[4,1000]) -> z -> Softmax -> y (the model is only read, never run)."""
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, N], np.zeros(4 * N, np.float32))
    model = make_model(
        [
            helper.make_node("MatMul", ["x", "W"], ["z"], name="fc"),
            helper.make_node(op, ["z"], ["y"], name="prob"),
        ],
        [tensor("x", shape=[1, 4])],
        [tensor("y", shape=[1, N])],
        [w],
        opset=opset,
    )
    return model


def case_with(expected, op="Softmax"):
    return augment("toy", softmax_case(op), {}, [np.asarray(expected, np.float32)])


def f32_softmax(z):
    z = np.asarray(z, np.float32)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def run_of(y, z):
    return Run("TestExecutionProvider", [np.asarray(y, np.float32), np.asarray(z, np.float32)])


# -- condition numbers --------------------------------------------------------------------------


def test_augment_exposes_the_softmax_input():
    case = case_with(np.full((1, N), 1 / N))
    assert [o.name for o in case.model.graph.output] == ["y", "z"]
    (probe,) = case.probes
    assert (probe.output, probe.op_type, probe.logits, probe.opset) == (0, "Softmax", 1, 9)


def test_condition_number_of_equal_logits_grows_with_their_magnitude():
    for m in (350.0, 3.5):  # small perturbations: about twice the logits' magnitude
        z = np.full((1, N), m, np.float32)
        for axis, opset in ((None, 9), (-1, 13), (1, 13)):
            kappa = condition_number("Softmax", z, axis, opset, rel=1e-9)
            assert kappa == pytest.approx(2 * m * (1 - 1 / N), rel=1e-3)
    squeezenet = np.full((1, N, 1, 1), 9.5e9, np.float32)  # saturates: one rounding decides
    assert condition_number("Softmax", squeezenet, 1, 9) * demo.ROUNDING > 0.9
    squeezenet[0, 0] = np.nextafter(squeezenet[0, 0], np.float32(np.inf))  # a unique maximum
    kappa = condition_number("Softmax", squeezenet, 1, 9)
    assert np.isfinite(kappa) and kappa * demo.ROUNDING > 0.9
    assert np.isfinite(condition_number("LogSoftmax", squeezenet, 1, 9))
    assert condition_number("Softmax", np.full((1, N), 3.5), opset=9) * demo.ROUNDING < 1e-3


def test_condition_number_sees_ties_that_rounding_can_break():
    z = np.array([[1e9, 1e9 + 20]])  # 20 apart, but float32 rounds 1e9 to a multiple of 64
    assert condition_number("Softmax", z, rel=1e-12) < 100  # linearized: looks harmless
    assert condition_number("Softmax", z) * demo.ROUNDING > demo.TOLERANCE
    spread = np.random.default_rng(0).standard_normal((2, 10)) * 3e4  # far apart: stays one-hot
    assert condition_number("Softmax", spread) < 1


def test_condition_number_bounds_random_perturbations():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((1, 50)) * 4
    kappa = condition_number("Softmax", z, opset=13, rel=1e-7)
    y = demo._softmax(z)
    worst = 0.0
    for _ in range(200):  # relative perturbations of every logit, of size 1e-7
        dz = z * 1e-7 * rng.choice([-1.0, 1.0], z.shape)
        worst = max(worst, np.abs(demo._softmax(z + dz) - y).max() / y.max() / 1e-7)
    assert worst <= kappa * 1.001  # a bound ...
    assert worst >= kappa / 10  # ... that random signs come near


def test_log_softmax_condition_number():
    z = np.full((1, 8), 2.0)
    z[0, 0] = 30.0  # one class near log-probability 0: its relative error is amplified
    assert condition_number("LogSoftmax", z, opset=13) > condition_number("Softmax", z, opset=13)


# -- judging ------------------------------------------------------------------------------------


def test_well_conditioned_output_is_judged_and_a_wrong_one_fails():
    z = np.random.default_rng(2).standard_normal((1, N)).astype(np.float32)
    expected = demo._softmax(z.astype(np.float64)).astype(np.float32)
    case = case_with(expected)
    kappa = decide(case, None, [run_of(f32_softmax(z), z)])
    assert kappa * demo.ROUNDING <= demo.TOLERANCE
    v = judge(case, run_of(f32_softmax(z), z), kappa, None)
    assert (v.compared, v.ok) == ("output, logits", True) and v.rel_err < 1e-5
    y = f32_softmax(z)
    y[0, int(y.argmax())] *= 1.01
    v = judge(case, run_of(y, z), kappa, None)
    assert (v.compared, v.ok) == ("output, logits", False) and v.rel_err > demo.TOLERANCE


def test_wrong_logits_fail_even_when_the_output_cannot_tell():
    z_ref = np.full((1, N), 3.5, np.float32)  # shufflenet's: equal, small, well-conditioned
    expected = f32_softmax(z_ref)
    case = case_with(expected)
    kappa = decide(case, [expected, z_ref], [])
    assert kappa * demo.ROUNDING <= demo.TOLERANCE
    z = z_ref * np.float32(1.1)  # the output is still uniform
    assert np.array_equal(f32_softmax(z), expected)
    v = judge(case, run_of(f32_softmax(z), z), kappa, [expected, z_ref])
    assert (v.compared, v.ok) == ("output, logits", False)
    assert v.rel_err == pytest.approx(0.1, rel=1e-3)


def squeezenet_like():
    """Logits all 9.5e9, as squeezenet's; one run rounds its last block one float32 step up."""
    z_ref = np.full((1, N), 9.5e9, np.float32)
    z_run = z_ref.copy()
    z_run[0, -8:] = np.nextafter(z_ref[0, -8:], np.float32(np.inf))
    return z_ref, z_run, f32_softmax(z_ref)


def test_ill_conditioned_softmax_is_judged_on_its_logits():
    z_ref, z_run, expected = squeezenet_like()
    case = case_with(expected)
    y = f32_softmax(z_run)
    assert np.abs(y - expected).max() > 0.1  # 0.125 on 8 classes: the old check read FAIL
    kappa = decide(case, [expected, z_ref], [])
    assert kappa * demo.ROUNDING > 100 * demo.TOLERANCE
    for reference in ([expected, z_ref], None):
        v = judge(case, run_of(y, z_run), kappa, reference)
        assert (v.compared, v.ok) == ("logits", True), v
        assert v.rel_err < 1e-6


def test_real_errors_on_ill_conditioned_models_still_fail():
    z_ref, z_run, expected = squeezenet_like()
    case = case_with(expected)
    kappa = decide(case, [expected, z_ref], [])
    reference = [expected, z_ref]

    scaled = z_ref * np.float32(1.01)  # a uniform 1% error: only the reference can see it
    v = judge(case, run_of(f32_softmax(scaled), scaled), kappa, reference)
    assert (v.compared, v.ok) == ("logits", False) and v.rel_err == pytest.approx(0.01, rel=1e-3)

    uneven = z_ref.copy()  # a 1% error in some classes: the shipped output sees it too
    uneven[0, :100] *= np.float32(1.01)
    for ref in (reference, None):
        v = judge(case, run_of(f32_softmax(uneven), uneven), kappa, ref)
        assert not v.ok and v.rel_err > demo.TOLERANCE

    # a broken Softmax: right logits, but the output is not their Softmax
    v = judge(case, run_of(expected, z_run), kappa, reference)
    assert not v.ok and v.rel_err > 0.1

    nan = z_ref.copy()
    nan[0, 3] = np.nan
    v = judge(case, run_of(f32_softmax(z_ref), nan), kappa, reference)
    assert not v.ok

    v = judge(case, run_of(expected.reshape(1, N, 1), z_run), kappa, reference)
    assert not v.ok and "shape" in v.error

    v = judge(case, Run("X", error="EPFail: boom"), kappa, reference)
    assert not v.ok and v.error == "EPFail: boom"


def test_log_softmax_is_judged_on_its_logits_too():
    z_ref, z_run, _ = squeezenet_like()
    expected = demo._log_softmax(z_ref.astype(np.float64)).astype(np.float32)
    case = case_with(expected, op="LogSoftmax")
    kappa = decide(case, [expected, z_ref], [])
    y = demo._log_softmax(z_run.astype(np.float64)).astype(np.float32)
    v = judge(case, run_of(y, z_run), kappa, [expected, z_ref])
    assert (v.compared, v.ok) == ("logits", True)
    v = judge(case, run_of(y, z_run * np.float32(0.9)), kappa, [expected, z_ref])
    assert not v.ok


# -- the table ----------------------------------------------------------------------------------


def fake_report(onnxruntime: bool) -> DemoReport:
    providers = ["CPUExecutionProvider", "OpenVINOExecutionProvider"]
    rows = []
    for name, compared, kappa in (
        ("squeezenet", "logits", 1.9e10),
        ("shufflenet", "output, logits", 7),
    ):
        runs = {
            "CPUExecutionProvider": Run(
                "CPUExecutionProvider", [], {"CPUExecutionProvider": 39}, 21.8, 3
            ),
            "OpenVINOExecutionProvider": Run(
                "OpenVINOExecutionProvider",
                [],
                {"OpenVINOExecutionProvider": 60, "CPUExecutionProvider": 5},
                9.0,
                3,
            ),
        }
        verdicts = {
            "CPUExecutionProvider": Verdict(compared, 3e-7, True),
            "OpenVINOExecutionProvider": Verdict(compared, 2e-2, False, "too far"),
        }
        ort_run = Run("onnxruntime", [], {}, 10.0, 3) if onnxruntime else None
        reference = "onnxruntime 1.0" if onnxruntime else "the CPU provider"
        rows.append(DemoRow(name, kappa, compared, runs, verdicts, ort_run, reference))
    return DemoReport(providers, rows, onnxruntime, 12)


@pytest.mark.parametrize("onnxruntime", [True, False])
def test_table_has_one_row_per_model_with_providers_side_by_side(onnxruntime):
    text = format_report(fake_report(onnxruntime))
    lines = text.splitlines()
    groups, header, rule = lines[:3]
    assert groups.split() == ["CPU", "OpenVINO"] + (["onnxruntime"] if onnxruntime else [])
    sub = ["nodes", "ms", "vs", "ort", "result"] if onnxruntime else ["nodes", "ms", "result"]
    assert header.split() == ["model", "compared", *sub, *sub] + (["ort", "ms"] * onnxruntime)
    assert ("vs ort" in text) == onnxruntime and ("onnxruntime" in text) == onnxruntime
    squeeze, shuffle = lines[3], lines[4]
    assert squeeze.startswith("squeezenet  logits, cond 2e+10")
    assert shuffle.startswith("shufflenet  output, logits ")
    assert lines[5] == ""
    # each cell starts where its header does
    for line in (squeeze, shuffle):
        for word in ("39", "OK 3e-07", "60 +5 CPU", "FAIL 2e-02"):
            assert word in line
        assert line.index("FAIL 2e-02") == header.rindex("result")
        assert line.index("OK 3e-07") == header.index("result")
    if onnxruntime:
        assert squeeze.split()[-1] == "10.0" and "2.18x" in squeeze and "0.90x" in squeeze
    assert groups.index("OpenVINO") == header.index("nodes", header.index("result"))
    assert set(rule) == {"-", " "}
    assert lines[6:8] == ["squeezenet on OpenVINO: too far", "shufflenet on OpenVINO: too far"]
    assert lines[8].startswith("compared: ") and '"logits" alone: the Softmax is' in text
    reference = "onnxruntime 1.0's" if onnxruntime else "the CPU provider's"
    assert f"Softmax against {reference} and against" in " ".join(text.split())
    summary = lines[-1]
    assert summary.startswith("2 OK, 2 FAIL (2 models x 2 providers in 12 s)")
    assert ("vs onnxruntime" in summary) == onnxruntime


# -- real models, through a test provider with a broken kernel ----------------------------------

broken = KernelRegistry("BrokenReluExecutionProvider")


@broken.kernel("Relu", since=6)
def broken_relu(x):
    return np.maximum(x, 0) * np.float32(1.01)  # 1% too large: compounds through the network


class BrokenReluProvider(KernelProvider):
    """Runs Relu 1% wrong; everything else falls back to the CPU provider."""

    name = "BrokenReluExecutionProvider"
    aliases = ("brokenrelu",)
    registry = broken


noisy = KernelRegistry("NoisyExecutionProvider")


@noisy.kernel("Relu", since=6)
def noisy_relu(x):
    os.write(1, b"noise from a runtime library\n")  # as C++ code writing to std::cout would
    return np.maximum(x, 0)


class NoisyProvider(KernelProvider):
    name = "NoisyExecutionProvider"
    aliases = ("noisy",)
    registry = noisy


def test_broken_kernel_fails_on_an_ill_conditioned_model(register_provider):
    register_provider(BrokenReluProvider)
    report = run_demo(
        ["squeezenet"],
        ["BrokenReluExecutionProvider", "CPUExecutionProvider"],
        repeat=1,
        onnxruntime=False,
    )
    (row,) = report.rows
    assert row.compared == "logits" and np.isfinite(row.kappa)
    assert row.kappa * demo.ROUNDING > demo.TOLERANCE
    assert row.verdicts["CPUExecutionProvider"].ok
    bad = row.verdicts["BrokenReluExecutionProvider"]
    assert not bad.ok and bad.rel_err > 0.05
    assert row.runs["BrokenReluExecutionProvider"].nodes["BrokenReluExecutionProvider"] > 0
    assert report.reference == "the CPU provider" and report.failures == 1


def test_well_conditioned_model_is_judged_on_its_output():
    report = run_demo(["shufflenet"], ["CPUExecutionProvider"], repeat=1, onnxruntime=False)
    (row,) = report.rows
    assert row.compared == "output, logits" and 1 < row.kappa < 100
    assert row.verdicts["CPUExecutionProvider"].ok


def test_onnxruntime_is_the_reference_when_importable(register_provider):
    ort = pytest.importorskip("onnxruntime")
    register_provider(BrokenReluProvider)
    report = run_demo(
        ["squeezenet"], ["BrokenReluExecutionProvider", "CPUExecutionProvider"], repeat=1
    )
    (row,) = report.rows
    assert report.reference == f"onnxruntime {ort.__version__}" and report.onnxruntime
    assert row.onnxruntime.latency_ms > 0 and row.onnxruntime.runs == 1
    assert row.verdicts["CPUExecutionProvider"].ok
    assert not row.verdicts["BrokenReluExecutionProvider"].ok


def test_demo_check_exit_code(register_provider, capsys):
    register_provider(BrokenReluProvider)
    argv = ["demo", "--models", "squeezenet", "--repeat", "1", "--no-onnxruntime"]
    assert main([*argv, "--providers", "brokenrelu,cpu"]) == 0  # reported, not an error
    out = capsys.readouterr().out
    assert "1 OK, 1 FAIL" in out and "FAIL" in out.splitlines()[3]
    assert main([*argv, "--providers", "brokenrelu,cpu", "--check"]) == 1
    assert main([*argv, "--providers", "cpu", "--check"]) == 0
    assert "1 OK, 0 FAIL" in capsys.readouterr().out


def test_demo_keeps_library_output_off_stdout(register_provider, capfd):
    register_provider(NoisyProvider)
    argv = ["demo", "--models", "squeezenet", "--repeat", "1", "--no-onnxruntime"]
    assert main([*argv, "--providers", "noisy", "--check"]) == 0
    out, err = capfd.readouterr()
    assert "noise from a runtime library" in err and "noise" not in out
    assert out.splitlines()[3].startswith("squeezenet")


def test_demo_rejects_unknown_models_and_unavailable_providers(register_provider):
    with pytest.raises(SystemExit, match="unknown light models"):
        main(["demo", "--models", "squeezenet,nosuchnet"])
    with pytest.raises(SystemExit, match="unknown provider 'nosuch'"):
        main(["demo", "--providers", "cpu,nosuch"])
    register_provider(UnavailableProvider)
    with pytest.raises(SystemExit, match="Never device is not present"):
        main(["demo", "--providers", "never"])
