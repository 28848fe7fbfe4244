"""Host logic (no GPU): how the CUDA provider is packaged, and the GPU check's own logic.

- Wheels of ort-core, ort-array, ort-cpu and ort-cuda built from this checkout (``pip wheel
  --no-deps --no-build-isolation``, offline): ``ort-core[cuda]``/``[cuda13]`` select
  ``ort-cuda[cuda12]``/``[cuda13]``, each of which pulls exactly one cupy wheel (two cupy wheels in
  one environment break each other), the plugin's entry point, and the CUDA C sources inside the
  ort-cuda wheel. Resolving cupy itself needs PyPI, which CI may not reach, so the metadata is
  checked instead of a resolver run.
- ``providers/ort_cuda/gpu_check``: its arguments, its parsing of pytest results, its report, and
  that on a machine without a usable GPU it stops with ``no usable GPU: <reason>`` (status 3).
"""

from __future__ import annotations

import email.parser
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[3]
GPU_CHECK = REPO / "providers" / "ort_cuda" / "gpu_check"
PROJECTS = {
    "ort-core": ".",
    "ort-array": "providers/ort_array",
    "ort-cpu": "providers/ort_cpu",
    "ort-cuda": "providers/ort_cuda",
}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".venv*", "*.pyc")


# -- the wheels ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """name -> path of the wheel, built from a copy of the sources (nothing is written into the
    checkout, which other builds may be using)."""
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("wheelhouse")
    shutil.copy(REPO / "pyproject.toml", src / "pyproject.toml")
    shutil.copy(REPO / "README.md", src / "README.md")
    shutil.copytree(REPO / "ort_core", src / "ort_core", ignore=_IGNORE)
    dirs = [str(src)]
    for rel in list(PROJECTS.values())[1:]:
        shutil.copytree(REPO / rel, src / rel, ignore=_IGNORE)
        dirs.append(str(src / rel))
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), *dirs],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    wheels = {}
    for whl in out.glob("*.whl"):
        wheels[canonicalize_name(whl.name.split("-")[0])] = whl
    assert set(wheels) == set(PROJECTS), sorted(wheels)
    return {"wheels": wheels, "src": src}


def _metadata(whl: Path):
    with zipfile.ZipFile(whl) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(z.read(name).decode())


def _requires(whl: Path, extra: str | None = None) -> list[Requirement]:
    """The requirements of the wheel's base (``extra=None``) or those one extra adds."""
    out = []
    for line in _metadata(whl).get_all("Requires-Dist") or []:
        req = Requirement(line)
        marker = req.marker
        if extra is None:
            if marker is None or marker.evaluate({"extra": ""}):
                out.append(req)
        elif marker is not None and "extra" in str(marker) and marker.evaluate({"extra": extra}):
            out.append(req)
    return out


def _closure(wheels: dict, name: str, extras: set[str]) -> set[str]:
    """Every distribution name ``name[extras]`` pulls in, following this repository's wheels
    (the others' own requirements, such as cupy's, are not followed)."""
    seen: set[str] = set()
    todo = [(canonicalize_name(name), frozenset(extras))]
    done: set[tuple] = set()
    while todo:
        dist, ext = todo.pop()
        if (dist, ext) in done:
            continue
        done.add((dist, ext))
        seen.add(dist)
        whl = wheels.get(dist)
        if whl is None:
            continue
        reqs = _requires(whl) + [r for e in ext for r in _requires(whl, e)]
        for r in reqs:
            todo.append((canonicalize_name(r.name), frozenset(r.extras)))
    return seen


def _cupys(names) -> set[str]:
    return {n for n in names if n.startswith("cupy")}


@pytest.mark.slow
def test_ort_core_extras_select_one_cuda_major(wheelhouse):
    whl = wheelhouse["wheels"]["ort-core"]
    extras = set(_metadata(whl).get_all("Provides-Extra"))
    assert {"cuda", "cuda13"} <= extras
    for extra, want in (("cuda", "cuda12"), ("cuda13", "cuda13")):
        reqs = {canonicalize_name(r.name): r for r in _requires(whl, extra)}
        assert set(reqs) == {"ort-cpu", "ort-cuda"}, (extra, sorted(reqs))
        assert reqs["ort-cuda"].extras == {want}, (extra, reqs["ort-cuda"])
    # followed through ort-cuda's extras: exactly one cupy wheel each
    assert _cupys(_closure(wheelhouse["wheels"], "ort-core", {"cuda"})) == {"cupy-cuda12x"}
    assert _cupys(_closure(wheelhouse["wheels"], "ort-core", {"cuda13"})) == {"cupy-cuda13x"}
    # the base install pulls no provider and no cupy
    assert _closure(wheelhouse["wheels"], "ort-core", set()) & {"ort-cuda", "cupy-cuda12x"} == set()


@pytest.mark.slow
def test_ort_cuda_extras_require_one_cupy_with_its_toolkit(wheelhouse):
    whl = wheelhouse["wheels"]["ort-cuda"]
    meta = _metadata(whl)
    extras = set(meta.get_all("Provides-Extra"))
    assert {"cuda12", "cuda13"} <= extras
    assert not _cupys(canonicalize_name(r.name) for r in _requires(whl)), "cupy in the base"
    for extra in extras:
        cupys = [r for r in _requires(whl, extra) if r.name.startswith("cupy")]
        assert len({canonicalize_name(r.name) for r in cupys}) <= 1, (extra, cupys)
    for extra, want in (("cuda12", "cupy-cuda12x"), ("cuda13", "cupy-cuda13x")):
        (req,) = [r for r in _requires(whl, extra) if r.name.startswith("cupy")]
        assert canonicalize_name(req.name) == want and req.extras == {"ctk"}, (extra, req)


@pytest.mark.slow
def test_ort_cuda_wheel_has_the_entry_point_and_the_cuda_sources(wheelhouse):
    whl = wheelhouse["wheels"]["ort-cuda"]
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        ep = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = z.read(ep).decode()
    section = entry_points.split("[ort_core]", 1)[1].split("[", 1)[0]
    assert "cuda = ort_cuda.plugin" in [ln.strip() for ln in section.splitlines()]
    src = wheelhouse["src"] / "providers" / "ort_cuda" / "ort_cuda" / "cuda"
    sources = {f"ort_cuda/cuda/{p.name}" for p in src.iterdir() if p.suffix in (".cu", ".cuh")}
    assert any(s.endswith(".cuh") for s in sources) and any(s.endswith(".cu") for s in sources)
    assert sources <= names, sorted(sources - names)
    assert "ort_cuda/kernels/__init__.py" in names and "ort_cuda/plugin.py" in names
    # ort-core's wheel holds the core only (no providers, no tests)
    with zipfile.ZipFile(wheelhouse["wheels"]["ort-core"]) as z:
        tops = {n.split("/", 1)[0] for n in z.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"ort_core"}, tops


# -- the GPU check --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("ort_cuda_gpu_check", GPU_CHECK / "check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_check_arguments(check, monkeypatch):
    monkeypatch.delenv("OUT", raising=False)
    a = check.parse_args([])
    assert a.out is None and a.steps == list(check.STEPS) and 1 <= a.workers <= 8
    monkeypatch.setenv("OUT", "results")
    a = check.parse_args(["--steps", "tests,models", "--workers", "3", "--models", "squeezenet"])
    assert a.out == "results" and a.steps == ["tests", "models"] and a.workers == 3
    assert check.parse_args(["--out", "elsewhere"]).out == "elsewhere"
    with pytest.raises(SystemExit) as e:
        check.parse_args(["--steps", "tests,bogus"])
    assert e.value.code == 2
    assert check.REPO == REPO  # the check finds the checkout from its own path


def test_gpu_check_reads_outcomes_and_compares_runs(check, tmp_path):
    def lines(*recs):
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
        return check.read_outcomes(path)

    def rec(test, when, outcome, message=""):
        return {"nodeid": f"suite.py::OnnxBackendNodeModelTest::{test}", "when": when,
                "outcome": outcome, "message": message}  # fmt: skip

    cpu = lines(
        rec("test_a_cpu", "setup", "passed"), rec("test_a_cpu", "call", "passed"),
        rec("test_b_cpu", "setup", "passed"), rec("test_b_cpu", "call", "failed", "boom"),
        rec("test_c_cpu", "setup", "passed"), rec("test_c_cpu", "call", "passed"),
        rec("test_d_cpu", "setup", "skipped", "no"),
    )  # fmt: skip
    cuda = lines(
        rec("test_a_cpu", "setup", "passed"), rec("test_a_cpu", "call", "failed", "mismatch"),
        rec("test_b_cpu", "setup", "passed"), rec("test_b_cpu", "call", "passed"),
        rec("test_c_cpu", "setup", "passed"), rec("test_c_cpu", "call", "passed"),
        rec("test_c_cpu", "teardown", "failed", "leak"),
        rec("test_e_cpu", "setup", "passed"),  # stopped by the time cap
    )  # fmt: skip
    assert cpu["test_a_cpu"]["outcome"] == "passed" and cpu["test_d_cpu"]["outcome"] == "skipped"
    assert cuda["test_c_cpu"] == {"outcome": "failed", "message": "leak"}
    assert cuda["test_e_cpu"]["outcome"] == "incomplete"
    diff = check.compare_outcomes(cpu, cuda)
    assert [r["test"] for r in diff["fail_only_with_cuda"]] == ["test_a_cpu", "test_c_cpu"]
    assert diff["fail_only_with_cuda"][0]["message"] == "mismatch"
    assert [r["test"] for r in diff["pass_only_with_cuda"]] == ["test_b_cpu"]
    assert {r["test"]: (r["cpu"], r["cuda"]) for r in diff["other"]} == {
        "test_d_cpu": ("skipped", "not run"),
        "test_e_cpu": ("not run", "incomplete"),
    }


def test_gpu_check_reads_junit_and_formats_a_full_report(check, tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="t" name="ok"/>'
        '<testcase classname="t" name="bad"><failure message="assert 1 == 2"/></testcase>'
        '<testcase classname="t" name="err"><error message="setup"/></testcase>'
        '<testcase classname="t" name="skip"><skipped message="no torch"/></testcase>'
        "</testsuite></testsuites>"
    )
    junit = check.parse_junit(xml)
    assert (junit["passed"], junit["failed"], junit["errors"], junit["skipped"]) == (1, 1, 1, 1)
    assert junit["failures"][0] == {"test": "t::bad", "message": "assert 1 == 2"}
    assert check.parse_junit(tmp_path / "missing.xml") == {}
    run = {"providers": ["CPUExecutionProvider"], "exit_status": 0, "timed_out": False,
           "total": 3, "passed": 2, "failed": 1, "skipped": 0}  # fmt: skip
    result = {
        "status": "failed", "out": "o", "seconds": 300.0,
        "gpu": {"name": "NVIDIA H200", "compute_capability": "9.0", "total_memory_gib": 139.8,
                "devices": 1},
        "environment": {"python": "3.11", "cupy": "14.2.0"},
        "tests": {**junit, "seconds": 40.0, "timed_out": False},
        "suite": {"seconds": 100.0, "workers": 8, "runs": {"cuda": run, "cpu": run},
                  "differences": {"fail_only_with_cuda": [{"test": "test_x_cpu", "cpu": "passed",
                                                           "cuda": "failed", "message": "m"}],
                                  "pass_only_with_cuda": [], "other": []}},
        "models": {"seconds": 60.0, "baseline": "ort-core CPUExecutionProvider",
                   "baseline_note": "no onnxruntime-gpu", "reference": "CPU",
                   "rows": [{"model": "resnet50", "nodes": {"CUDAExecutionProvider": 120,
                                                           "CPUExecutionProvider": 2},
                             "ok": True, "rel_err": 1e-6, "cuda_ms": 3.0, "baseline_ms": 30.0},
                            {"model": "vgg19", "ok": False, "error": "not run"}]},
    }  # fmt: skip
    text = check.format_summary(result)
    assert "cuda_gpu tests: 1 passed, 1 failed, 1 errors, 1 skipped" in text
    assert "fail only with CUDA: 1" in text and "test_x_cpu" in text
    assert "resnet50" in text and "120/122" in text and "0.10x" in text
    assert "vgg19: not run" in text


def test_gpu_check_without_a_gpu_says_why_and_exits_3(tmp_path):
    from ort_cuda.provider import CUDAExecutionProvider

    avail = CUDAExecutionProvider.availability()
    if avail:
        pytest.skip("a CUDA GPU is usable here; the GPU check would run for real")
    env = dict(os.environ, ORT_GPU_CHECK_NO_INSTALL="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("OUT", None)
    out = tmp_path / "out"
    res = subprocess.run(
        ["bash", str(GPU_CHECK / "run.sh"), str(out), "--steps", "tests"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 3, res.stdout + res.stderr
    assert f"no usable GPU: {avail.reason}" in res.stderr
    result = json.loads((out / "gpu_check.json").read_text())
    assert result["status"] == "no-gpu" and result["reason"] == avail.reason
    assert "no usable GPU" in (out / "summary.txt").read_text()
