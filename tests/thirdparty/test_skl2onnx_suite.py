"""skl2onnx's own tests, a sample of several hundred, run with ``import onnxruntime`` resolving to
ort_core (see :mod:`tests.thirdparty.skl2onnx_suite`).

The run fails on any failure not listed in ``skl2onnx_expected_failures.txt`` (each entry says
why), on a listed test that now passes (remove its line), and when the pass rate drops below
:data:`MIN_PASS_RATE`. It needs the network once, to download skl2onnx's source distribution (and
pandas when it is not installed) into pytest's cache; without a package index it skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.thirdparty.skl2onnx_suite import (
    EXPECTED_FAILURES,
    MODULES,
    ORT_API_VERSION,
    Outcome,
    Unavailable,
    failure_lines,
    fetch_requirements,
    fetch_tests,
    read_expected,
    read_junit,
    run_suite,
    summary,
    write_shim,
)

#: passed / (passed + failed) of the sample; 0.93 when this was written (skl2onnx 1.20.0)
MIN_PASS_RATE = 0.9


def _cache(request, tmp_path_factory) -> Path:
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("ort-core-skl2onnx"))
    return tmp_path_factory.mktemp("skl2onnx")


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, Outcome]:
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    cache = _cache(request, tmp_path_factory)
    try:
        tests = fetch_tests(cache)
        extra = fetch_requirements(cache)
    except Unavailable as e:
        pytest.skip(f"no package index reachable: {e}")
    return run_suite(tests, write_shim(cache / "shim"), extra_path=extra)


@pytest.mark.slow
def test_skl2onnx_suite_against_ort_core(outcomes):
    expected = read_expected()
    s = summary(outcomes, expected)
    ran = s["passed"] + s["failed"]
    assert ran >= 500, f"only {ran} tests ran; the sample is meant to run several hundred"
    assert not s["unexpected"], (
        f"{len(s['unexpected'])} skl2onnx tests fail that {EXPECTED_FAILURES.name} does not list "
        "(fix ort-core, or add them with the reason):\n" + failure_lines(outcomes, s["unexpected"])
    )
    assert not s["stale"], (
        f"these tests now pass: remove them from {EXPECTED_FAILURES.name}:\n"
        + "\n".join(s["stale"])
    )
    assert not s["missing"], (
        f"{EXPECTED_FAILURES.name} lists tests the sample did not run (renamed in this skl2onnx "
        "version, or their module left MODULES):\n" + "\n".join(s["missing"])
    )
    rate = s["passed"] / ran
    assert rate >= MIN_PASS_RATE, f"pass rate {rate:.3f} < {MIN_PASS_RATE} ({s})"


# -- the machinery, without the network ------------------------------------------------------------
def test_expected_failures_are_well_formed():
    entries = read_expected()
    assert entries, "the file lists nothing: delete it or the test"
    for node in entries:
        module = node.split("::", 1)[0]
        assert module in MODULES, f"{node}: module not in the sample (MODULES)"
        assert node.count("::") in (1, 2), f"{node}: not a pytest node id"


def test_reader_rejects_duplicates_and_missing_reasons(tmp_path):
    (tmp_path / "x.txt").write_text("m.py::T::a  # why\nm.py::T::a  # again\n")
    with pytest.raises(ValueError, match="duplicate"):
        read_expected(tmp_path / "x.txt")
    (tmp_path / "y.txt").write_text("m.py::T::b\n")
    with pytest.raises(ValueError, match="no reason"):
        read_expected(tmp_path / "y.txt")
    (tmp_path / "z.txt").write_text("# comment\n\nm.py::T::c  # [flaky] random data\n")
    assert read_expected(tmp_path / "z.txt") == {"m.py::T::c": ("[flaky] random data", False)}


def test_summary_sorts_outcomes():
    outcomes = {
        "m.py::T::ok": Outcome("passed"),
        "m.py::T::known": Outcome("failed", "boom"),
        "m.py::T::new": Outcome("error", "crash\nmore"),
        "m.py::T::fixed": Outcome("passed"),
        "m.py::T::skip": Outcome("skipped"),
    }
    expected = {
        "m.py::T::known": ("why", True),
        "m.py::T::fixed": ("why", True),
        "m.py::T::gone": ("why", True),
    }
    s = summary(outcomes, expected)
    assert (s["passed"], s["failed"], s["skipped"]) == (2, 2, 1)
    assert s["unexpected"] == ["m.py::T::new"]
    assert s["stale"] == ["m.py::T::fixed"]
    assert s["missing"] == ["m.py::T::gone"]
    assert failure_lines(outcomes, ["m.py::T::new"]) == "m.py::T::new  # crash"


def test_junit_node_ids(tmp_path):
    report = tmp_path / "r.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="test_a.TestX" name="test_one"/>'
        '<testcase classname="test_a.TestX" name="test_two"><failure message="bad">tb</failure>'
        "</testcase>"
        '<testcase classname="test_b" name="test_three"><skipped message="why"/></testcase>'
        "</testsuite></testsuites>"
    )
    got = read_junit(report)
    assert got == {
        "test_a.py::TestX::test_one": Outcome("passed"),
        "test_a.py::TestX::test_two": Outcome("failed", "bad"),
        "test_b.py::test_three": Outcome("skipped", "why"),
    }


def test_shim_makes_onnxruntime_ort_core(tmp_path):
    shim = write_shim(tmp_path)
    code = (
        "import onnxruntime, ort_core\n"
        "from onnxruntime import InferenceSession, SessionOptions, __version__\n"
        "from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument\n"
        "assert InferenceSession is ort_core.InferenceSession\n"
        "assert SessionOptions is ort_core.SessionOptions\n"
        "assert issubclass(InvalidArgument, ort_core.errors.OrtError)\n"
        "assert onnxruntime.GraphOptimizationLevel is ort_core.GraphOptimizationLevel\n"
        "print(__version__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(shim)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ORT_API_VERSION
