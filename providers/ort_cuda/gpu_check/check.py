"""The CUDA provider's GPU check: everything that needs a real NVIDIA GPU, in one command.

Run from anywhere, with the Python environment that has ort-core, ort-array, ort-cpu and
ort-cuda installed (``run.sh`` next to this file makes one):

    python providers/ort_cuda/gpu_check/check.py --out results/

Steps, each under its own time cap (150 + 180 + 120 s: the check takes about 3 to 5 minutes on an
H100/H200 and at most about 8):

1. probe: the CUDA provider must be available and run a tiny model on the GPU; otherwise the
   check prints ``no usable GPU: <reason>`` and exits with status 3 before anything else;
2. tests: ``ORT_CUDA_REQUIRE_GPU=1 python -m pytest tests/providers/cuda -m cuda_gpu``;
3. suite: onnx's backend node tests with providers [CUDA, CPU] and with [CPU] alone (both at
   once, each on its share of the cores), their pass counts and every test whose outcome differs;
4. models: the light models shipped in the onnx wheel (judged as ``ort-core demo`` judges them)
   and the transformer fixtures of ``tests/models`` on [CUDA, CPU] with ``use_tf32=0`` against the
   CPU provider, and a latency table: median ms of the CUDA provider with its default options
   against onnxruntime's CUDAExecutionProvider when ``import onnxruntime`` has a working one,
   else against the CPU provider.

Everything goes to the output folder (``--out``, else ``$OUT``, else a new temporary folder):
``gpu_check.json`` (all results), ``summary.txt`` (what is printed at the end) and the raw logs
of the pytest runs. Exit status: 0 when everything passed, 1 when something failed (a cuda_gpu
test, a model mismatch, a backend test that passes on the CPU provider alone but not with the
CUDA provider, or a step stopped by its time cap), 3 when there is no usable GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
STEPS = ("tests", "suite", "models")
NO_GPU_STATUS = 3
#: relative error (max|a-b| / max|b|) allowed on the transformer fixtures with use_tf32=0
TRANSFORMER_TOL = 1e-4
#: the same with TF32 (the provider's default), reported for information
TRANSFORMER_TOL_TF32 = 1e-2


# -- arguments ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cores = os.cpu_count() or 2
    p = argparse.ArgumentParser(
        prog="check.py",
        description="Check the CUDA execution provider of ort-core on this machine's NVIDIA GPU.",
    )
    p.add_argument(
        "--out",
        default=os.environ.get("OUT") or None,
        help="folder for gpu_check.json, summary.txt and logs (default: $OUT, else a new "
        "temporary folder)",
    )
    p.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated steps to run after the GPU probe (default: {','.join(STEPS)})",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=max(1, min(8, cores // 2)),
        help="pytest-xdist workers for each of the two backend-suite runs, which run at once "
        "(default: half the cores, at most 8)",
    )
    p.add_argument(
        "--tests-timeout", type=float, default=150, help="seconds for the cuda_gpu tests"
    )
    p.add_argument(
        "--suite-timeout", type=float, default=180, help="seconds for the two backend-suite runs"
    )
    p.add_argument(
        "--models-timeout", type=float, default=120, help="seconds for the models and latencies"
    )
    p.add_argument(
        "--models",
        default="",
        help="comma-separated subset of the models (light model names, bert_tiny, gpt2_tiny, "
        "vit_tiny); default all",
    )
    p.add_argument("--repeat", type=int, default=20, help="timed runs per model and runtime")
    p.add_argument(
        "--model-budget",
        type=float,
        default=2.0,
        help="seconds after which a model stops being timed on a runtime (one run at least)",
    )
    args = p.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        p.error(f"unknown step(s) {unknown}; choose from {list(STEPS)}")
    args.steps = steps
    if args.workers < 1:
        p.error("--workers must be at least 1")
    return args


def output_dir(arg: str | None) -> Path:
    out = Path(arg) if arg else Path(tempfile.mkdtemp(prefix="ort-cuda-gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


# -- environment and the GPU probe ----------------------------------------------------------------
def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        import ort_core

        info["ort_core"] = ort_core.get_version_string()
        info["providers"] = {
            k: {"available": a, "reason": r}
            for k, (a, r) in ort_core.get_provider_availability().items()
        }
    except Exception as e:
        info["ort_core"] = f"cannot import: {type(e).__name__}: {e}"
    try:
        import cupy

        info["cupy"] = cupy.__version__
        rt = cupy.cuda.runtime
        info["cuda_runtime"] = rt.runtimeGetVersion()
        info["cuda_driver"] = rt.driverGetVersion()
    except Exception as e:
        info.setdefault("cupy", f"{type(e).__name__}: {e}")
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except Exception:
        info["onnxruntime"] = None
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            res = subprocess.run(
                [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            info["nvidia_smi"] = (res.stdout or res.stderr).strip()
        except Exception as e:
            info["nvidia_smi"] = f"{type(e).__name__}: {e}"
    return info


def probe_gpu() -> tuple[bool, str, dict[str, Any]]:
    """(usable, reason when not, the GPU's properties): the provider is available and runs a
    tiny model on the GPU, not on the CPU fallback."""
    try:
        from ort_cuda.provider import CUDAExecutionProvider
    except Exception as e:
        return False, f"ort_cuda cannot be imported: {type(e).__name__}: {e}", {}
    avail = CUDAExecutionProvider.availability()
    if not avail:
        return False, avail.reason, {}
    try:
        import cupy
        import numpy as np
        from onnx import TensorProto, helper

        import ort_core

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        gpu = {
            "name": name,
            "compute_capability": f"{props['major']}.{props['minor']}",
            "total_memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
            "devices": cupy.cuda.runtime.getDeviceCount(),
        }
        vi = helper.make_tensor_value_info
        model = helper.make_model(
            helper.make_graph(
                [helper.make_node("Relu", ["x"], ["y"])],
                "probe",
                [vi("x", TensorProto.FLOAT, [4])],
                [vi("y", TensorProto.FLOAT, [4])],
            ),
            opset_imports=[helper.make_opsetid("", 17)],
        )
        model.ir_version = 8
        sess = ort_core.InferenceSession(model.SerializeToString(), providers=[CUDA])
        if sess.get_providers()[0] != CUDA:
            return False, f"a session asking for {CUDA} got {sess.get_providers()}", gpu
        x = np.array([-1, 0, 1, 2], np.float32)
        y = sess.run(None, {"x": x})[0]
        if not np.array_equal(y, np.maximum(x, 0)):
            return False, f"Relu on the GPU gave {y.tolist()}", gpu
        return True, "", gpu
    except Exception as e:
        return False, f"{type(e).__name__}: {e}", {}


# -- subprocesses with time caps ------------------------------------------------------------------
def _start(cmd: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen, Any]:
    fh = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed by _finish
    fh.write("$ " + " ".join(cmd) + "\n")
    fh.flush()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
    )
    return proc, fh


def _finish(proc: subprocess.Popen, fh: Any, deadline: float) -> tuple[int | None, bool]:
    """Wait for ``proc`` until ``deadline``; kill its process group past it. Returns (exit
    status or None, timed out)."""
    try:
        rc = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        rc = None
    fh.close()
    return rc, timed_out


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    paths = [str(HERE), str(REPO)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- step 2: the cuda_gpu tests -----------------------------------------------------------------
def run_gpu_tests(out: Path, timeout: float) -> dict[str, Any]:
    xml = out / "cuda_gpu_junit.xml"
    log = out / "cuda_gpu_pytest.txt"
    cmd = [
        sys.executable, "-m", "pytest", "tests/providers/cuda", "-m", "cuda_gpu",
        "-p", "no:cacheprovider", "-q", "-rfEs", f"--junitxml={xml}",
    ]  # fmt: skip
    t0 = time.monotonic()
    proc, fh = _start(cmd, _env(ORT_CUDA_REQUIRE_GPU="1"), log)
    rc, timed_out = _finish(proc, fh, t0 + timeout)
    res: dict[str, Any] = {
        "command": "ORT_CUDA_REQUIRE_GPU=1 python -m pytest tests/providers/cuda -m cuda_gpu",
        "exit_status": rc,
        "timed_out": timed_out,
        "seconds": round(time.monotonic() - t0, 1),
        "log": log.name,
    }
    res.update(parse_junit(xml))
    if timed_out or not xml.exists():
        res["tail"] = _tail(log)
    res["ok"] = (
        rc == 0 and not timed_out and res.get("failed", 0) == 0 and res.get("errors", 0) == 0
    )
    return res


def parse_junit(path: Path) -> dict[str, Any]:
    """Counts and failures of a junit XML report (empty when it does not exist)."""
    if not path.exists():
        return {}
    root = ET.parse(path).getroot()
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures: list[dict[str, str]] = []
    skips: dict[str, int] = {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None or error is not None:
            el = failure if failure is not None else error
            counts["failed" if failure is not None else "errors"] += 1
            failures.append({"test": name, "message": (el.get("message") or "")[:400]})
        elif skipped is not None:
            counts["skipped"] += 1
            reason = (skipped.get("message") or "")[:200]
            skips[reason] = skips.get(reason, 0) + 1
        else:
            counts["passed"] += 1
    return {**counts, "failures": failures, "skip_reasons": skips}


# -- step 3: the backend suite -----------------------------------------------------------------
SUITE_RUNS = {"cuda": f"{CUDA},{CPU}", "cpu": CPU}


def run_backend_suites(out: Path, workers: int, timeout: float) -> dict[str, Any]:
    """The node tests on [CUDA, CPU] and on [CPU], at once, each with ``workers`` workers."""
    t0 = time.monotonic()
    running = {}
    for key, providers in SUITE_RUNS.items():
        outcomes = out / f"suite_{key}.jsonl"
        outcomes.write_text("")
        cmd = [
            sys.executable, "-m", "pytest", str(HERE / "backend_suite.py"),
            "-p", "no:cacheprovider", "-p", "gpu_check_outcomes", "-q", "-n", str(workers),
        ]  # fmt: skip
        env = _env(ORT_GPU_CHECK_PROVIDERS=providers, ORT_GPU_CHECK_OUTCOMES=str(outcomes))
        running[key] = (*_start(cmd, env, out / f"suite_{key}_pytest.txt"), outcomes)
    runs: dict[str, Any] = {}
    for key, (proc, fh, outcomes) in running.items():
        rc, timed_out = _finish(proc, fh, t0 + timeout)
        tests = read_outcomes(outcomes)
        counts: dict[str, int] = {}
        for o in tests.values():
            counts[o["outcome"]] = counts.get(o["outcome"], 0) + 1
        runs[key] = {
            "providers": SUITE_RUNS[key].split(","),
            "exit_status": rc,
            "timed_out": timed_out,
            "total": len(tests),
            **{k: counts.get(k, 0) for k in ("passed", "failed", "skipped")},
            "log": f"suite_{key}_pytest.txt",
            "outcomes": outcomes.name,
            "_tests": tests,
        }
        if not tests:
            runs[key]["tail"] = _tail(out / f"suite_{key}_pytest.txt")
    diff = compare_outcomes(runs["cpu"].pop("_tests"), runs["cuda"].pop("_tests"))
    timed_out = any(r["timed_out"] for r in runs.values())
    empty = any(r["total"] == 0 for r in runs.values())
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "workers": workers,
        "runs": runs,
        "differences": diff,
        "ok": not diff["fail_only_with_cuda"] and not timed_out and not empty,
    }


def read_outcomes(path: Path) -> dict[str, dict[str, str]]:
    """Test name -> {"outcome": passed/failed/skipped, "message"} from the plugin's JSON lines."""
    tests: dict[str, dict[str, str]] = {}
    if not path.exists():
        return tests
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        name = rec["nodeid"].rsplit("::", 1)[-1]
        cur = tests.setdefault(name, {"outcome": "passed", "message": ""})
        outcome, when = rec["outcome"], rec["when"]
        if outcome == "failed":
            if cur["outcome"] != "failed":
                cur.update(outcome="failed", message=rec.get("message", ""))
        elif outcome == "skipped" and cur["outcome"] == "passed":
            cur.update(outcome="skipped", message=rec.get("message", ""))
        elif when == "call" and outcome == "passed" and cur["outcome"] == "passed":
            cur["called"] = "1"
    # a test with no call report (setup only, e.g. stopped mid-run) did not pass
    for cur in tests.values():
        called = cur.pop("called", None)
        if cur["outcome"] == "passed" and not called:
            cur["outcome"] = "incomplete"
    return tests


def compare_outcomes(cpu: dict[str, dict], cuda: dict[str, dict]) -> dict[str, Any]:
    """Tests whose outcome differs between the CPU-only run and the run with the CUDA provider."""
    fail_only_cuda, pass_only_cuda, other = [], [], []
    for name in sorted(set(cpu) | set(cuda)):
        a = cpu.get(name, {}).get("outcome", "not run")
        b = cuda.get(name, {}).get("outcome", "not run")
        if a == b:
            continue
        row = {"test": name, "cpu": a, "cuda": b, "message": cuda.get(name, {}).get("message", "")}
        if a == "passed" and b == "failed":
            fail_only_cuda.append(row)
        elif a == "failed" and b == "passed":
            pass_only_cuda.append(row)
        else:
            other.append(row)
    return {
        "fail_only_with_cuda": fail_only_cuda,
        "pass_only_with_cuda": pass_only_cuda,
        "other": other,
    }


# -- step 4: models and latency -------------------------------------------------------------------
def _rel_err(got: Any, ref: Any) -> float:
    import numpy as np

    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        return float("inf")
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(got - ref))) / max(float(np.max(np.abs(ref))), 1e-30)


def _timed(run: Any, repeat: int, budget_s: float) -> tuple[float, int]:
    """Median ms of up to ``repeat`` runs after one warm-up, fewer once they took ``budget_s``."""
    import numpy as np

    run()
    times: list[float] = []
    while len(times) < max(1, repeat) and (not times or sum(times) < budget_s):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times)), len(times)


def onnxruntime_cuda() -> tuple[Any, str]:
    """onnxruntime when it has a working CUDAExecutionProvider (else None) and why not."""
    try:
        import onnxruntime
    except ImportError:
        return None, "onnxruntime is not installed"
    preload = getattr(onnxruntime, "preload_dlls", None)
    if preload is not None:  # onnxruntime-gpu >= 1.21 loads CUDA/cuDNN from the nvidia-* wheels
        try:
            preload()
        except Exception:
            pass
    version = onnxruntime.__version__
    if CUDA not in onnxruntime.get_available_providers():
        return None, f"onnxruntime {version} has no {CUDA} (the CPU package)"
    try:  # the provider is built in, but its CUDA/cuDNN libraries may not load
        from onnx import TensorProto, helper

        vi = helper.make_tensor_value_info
        graph = helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])],
            "probe",
            [vi("x", TensorProto.FLOAT, [4])],
            [vi("y", TensorProto.FLOAT, [4])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        _OrtRunner(onnxruntime, model.SerializeToString())
    except Exception as e:
        return None, f"onnxruntime {version}'s {CUDA} does not run here: {e}"
    return onnxruntime, ""


class _OrtRunner:
    """A model on onnxruntime's CUDA provider (which must really take the session)."""

    def __init__(self, ort: Any, model_bytes: bytes) -> None:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(model_bytes, so, providers=[CUDA, CPU])
        if self.sess.get_providers()[0] != CUDA:
            raise RuntimeError(f"onnxruntime fell back to {self.sess.get_providers()}")

    def run(self, feed: dict) -> list:
        return self.sess.run(None, feed)


def _nodes(sess: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sub in sess.placements:
        counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    return counts


def _model_cases(selected: set[str]) -> list[tuple[str, str]]:
    from ort_core.demo import LIGHT_MODELS

    # the quick transformers first: a time cap then cuts only light models
    cases = [("transformer", m) for m in ("bert_tiny", "gpt2_tiny", "vit_tiny")] + [
        ("light", m) for m in LIGHT_MODELS
    ]
    return [c for c in cases if not selected or c[1] in selected]


def run_models(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import numpy as np

    import ort_core
    from ort_core.demo import Run, decide, demo_case, judge

    t0 = time.monotonic()
    deadline = t0 + args.models_timeout
    selected = {m.strip() for m in args.models.split(",") if m.strip()}
    ort, why_not = onnxruntime_cuda()
    baseline = f"onnxruntime {ort.__version__} {CUDA}" if ort is not None else f"ort-core {CPU}"
    rows: list[dict[str, Any]] = []

    def session(model: Any, providers: list) -> Any:
        data = model if isinstance(model, (str, bytes)) else model.SerializeToString()
        return ort_core.InferenceSession(data, providers=providers)

    for kind, name in _model_cases(selected):
        row: dict[str, Any] = {"model": name, "kind": kind}
        rows.append(row)
        if time.monotonic() > deadline:
            row.update(ok=False, error="not run: the models step ran out of time")
            continue
        try:
            if kind == "light":
                case = demo_case(name)
                model, feed = case.model, case.feed
            else:
                from tests.models.test_transformers import FEEDS, FIXTURES

                model, feed = str(FIXTURES / f"{name}.onnx"), FEEDS[name]
            model_bytes = (
                Path(model).read_bytes() if isinstance(model, str) else model.SerializeToString()
            )
            cpu = session(model_bytes, [CPU])
            ref = [np.asarray(o) for o in cpu.run(None, feed)]
            exact = session(model_bytes, [(CUDA, {"use_tf32": "0"}), CPU])
            row["nodes"] = _nodes(exact)
            got = [np.asarray(o) for o in exact.run(None, feed)]
            if kind == "light":
                run = Run(CUDA, got, row["nodes"])
                verdict = judge(case, run, decide(case, ref, [run]), ref)
                row.update(compared=verdict.compared, rel_err=verdict.rel_err, ok=verdict.ok)
                if verdict.error:
                    row["error"] = verdict.error
            else:
                err = max(_rel_err(g, r) for g, r in zip(got, ref))
                row.update(compared="outputs", rel_err=err, ok=err <= TRANSFORMER_TOL)
            # latency: the CUDA provider with its defaults (TF32 on, as onnxruntime's)
            fast = session(model_bytes, [CUDA, CPU])
            tf32 = [np.asarray(o) for o in fast.run(None, feed)]
            if kind == "transformer":
                row["rel_err_tf32"] = max(_rel_err(g, r) for g, r in zip(tf32, ref))
                row["ok"] = row["ok"] and row["rel_err_tf32"] <= TRANSFORMER_TOL_TF32
            if not row["nodes"].get(CUDA):  # a session that fell back says nothing of the GPU
                row.update(ok=False, error=f"no node ran on {CUDA}: {exact.get_providers()}")
            row["cuda_ms"], row["cuda_runs"] = _timed(
                lambda s=fast, f=feed: s.run(None, f), args.repeat, args.model_budget
            )
        except Exception as e:
            row.update(ok=False, error=f"{type(e).__name__}: {e}"[:600])
            continue
        try:  # the baseline's own failure is reported but fails nothing
            if ort is not None:
                runner = _OrtRunner(ort, model_bytes)
                row["baseline_ms"], row["baseline_runs"] = _timed(
                    lambda r=runner, f=feed: r.run(f), args.repeat, args.model_budget
                )
            else:
                row["baseline_ms"], row["baseline_runs"] = _timed(
                    lambda s=cpu, f=feed: s.run(None, f), args.repeat, args.model_budget
                )
        except Exception as e:
            row["baseline_error"] = f"{type(e).__name__}: {e}"[:600]
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "baseline": baseline,
        "baseline_note": why_not,
        "reference": f"{CPU} (ort-core)",
        "rows": rows,
        "ok": all(r.get("ok") for r in rows),
    }


# -- the report -----------------------------------------------------------------------------------
def _ms(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, (int, float)) else "-"


def format_summary(result: dict[str, Any]) -> str:
    lines = [f"ort-core CUDA provider GPU check: {result['status'].upper()}"]
    gpu = result.get("gpu") or {}
    if gpu:
        lines.append(
            f"GPU: {gpu.get('name')} (compute capability {gpu.get('compute_capability')}, "
            f"{gpu.get('total_memory_gib')} GiB, {gpu.get('devices')} device(s))"
        )
    env = result.get("environment", {})
    lines.append(
        f"python {env.get('python')}, ort-core {env.get('ort_core')}, cupy {env.get('cupy')}, "
        f"CUDA runtime {env.get('cuda_runtime')}, driver {env.get('cuda_driver')}, "
        f"onnxruntime {env.get('onnxruntime')}"
    )
    if result.get("reason"):
        lines.append(f"no usable GPU: {result['reason']}")
    t = result.get("tests")
    if t:
        lines.append("")
        lines.append(
            f"cuda_gpu tests: {t.get('passed', 0)} passed, {t.get('failed', 0)} failed, "
            f"{t.get('errors', 0)} errors, {t.get('skipped', 0)} skipped in {t['seconds']} s"
            + (" (TIMED OUT)" if t["timed_out"] else "")
        )
        for f in t.get("failures", []):
            lines.append(f"  FAIL {f['test']}: {f['message'][:200]}")
        for reason, n in t.get("skip_reasons", {}).items():
            lines.append(f"  skipped x{n}: {reason}")
        if t.get("tail"):
            lines.append("  " + t["tail"].replace("\n", "\n  "))
    s = result.get("suite")
    if s:
        lines.append("")
        lines.append(f"onnx backend node tests ({s['workers']} workers per run, {s['seconds']} s):")
        for r in s["runs"].values():
            lines.append(
                f"  [{', '.join(r['providers'])}]: {r['passed']} passed of {r['total']} "
                f"({r['failed']} failed, {r['skipped']} skipped)"
                + (" (TIMED OUT)" if r["timed_out"] else "")
            )
            if r.get("tail"):
                lines.append("    " + r["tail"].replace("\n", "\n    "))
        d = s["differences"]
        for label, key in (
            ("fail only with CUDA", "fail_only_with_cuda"),
            ("pass only with CUDA", "pass_only_with_cuda"),
            ("other differences", "other"),
        ):
            lines.append(f"  {label}: {len(d[key])}")
            for row in d[key]:
                msg = f" - {row['message'][:150]}" if row["message"] else ""
                lines.append(f"    {row['test']}: cpu {row['cpu']}, cuda {row['cuda']}{msg}")
    m = result.get("models")
    if m:
        lines.append("")
        lines.append(
            f"models on [CUDA, CPU] against {m['reference']} ({m['seconds']} s); latency: median "
            f"ms, the CUDA provider (defaults) vs {m['baseline']}"
            + (f" ({m['baseline_note']})" if m["baseline_note"] else "")
        )
        header = ["model", "nodes CUDA/all", "check", "rel err", "CUDA ms", "baseline ms", "ratio"]
        table = [header]
        for r in m["rows"]:
            nodes = r.get("nodes") or {}
            total = sum(nodes.values())
            ratio = (
                f"{r['cuda_ms'] / r['baseline_ms']:.2f}x"
                if r.get("cuda_ms") and r.get("baseline_ms")
                else "-"
            )
            err = r.get("rel_err")
            table.append(
                [
                    r["model"],
                    f"{nodes.get(CUDA, 0)}/{total}" if total else "-",
                    "OK" if r.get("ok") else "FAIL",
                    f"{err:.1e}" if isinstance(err, float) else "-",
                    _ms(r.get("cuda_ms")),
                    _ms(r.get("baseline_ms")),
                    ratio,
                ]
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        for r in m["rows"]:
            if r.get("error"):
                lines.append(f"  {r['model']}: {r['error'][:300]}")
            if r.get("baseline_error"):
                lines.append(f"  {r['model']} (baseline): {r['baseline_error'][:300]}")
    lines.append("")
    lines.append(f"total {result.get('seconds')} s; results in {result.get('out')}")
    return "\n".join(lines) + "\n"


def write_results(out: Path, result: dict[str, Any]) -> str:
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = format_summary(result)
    (out / "summary.txt").write_text(text)
    return text


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = output_dir(args.out)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # tests.models and tests.conformance
    t0 = time.monotonic()
    result: dict[str, Any] = {"out": str(out), "steps": args.steps, "environment": environment()}
    print(f"GPU check: results go to {out}", flush=True)
    ok, reason, gpu = probe_gpu()
    result["gpu"] = gpu
    if not ok:
        result.update(status="no-gpu", reason=reason, seconds=round(time.monotonic() - t0, 1))
        write_results(out, result)
        print(f"no usable GPU: {reason}", file=sys.stderr, flush=True)
        return NO_GPU_STATUS
    print(f"GPU: {gpu.get('name')} ({gpu.get('compute_capability')})", flush=True)
    if "tests" in args.steps:
        print(f"[tests] cuda_gpu tests (cap {args.tests_timeout:.0f} s)...", flush=True)
        result["tests"] = run_gpu_tests(out, args.tests_timeout)
    if "suite" in args.steps:
        print(
            f"[suite] backend node tests on [CUDA, CPU] and [CPU], {args.workers} workers each "
            f"(cap {args.suite_timeout:.0f} s)...",
            flush=True,
        )
        result["suite"] = run_backend_suites(out, args.workers, args.suite_timeout)
    if "models" in args.steps:
        print(f"[models] models and latency (cap {args.models_timeout:.0f} s)...", flush=True)
        result["models"] = run_models(args, out)
    passed = all(result[s]["ok"] for s in args.steps)
    result.update(status="passed" if passed else "failed", seconds=round(time.monotonic() - t0, 1))
    print(write_results(out, result), flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
