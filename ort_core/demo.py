"""The light models that ship inside the onnx wheel, and a demo that runs them on every provider.

Their weights are constants, so a match with the expected output proves coverage, not numerics
(the numerical tests build random-weight models and compare with onnx's ReferenceEvaluator).

Constant weights also make most of their logits huge and all equal (squeezenet's are about 9.5e9),
and a Softmax of such logits is ill-conditioned: one float32 step in some logits (1024 at 9.5e9)
turns the expected 0.001 on every class into 0.125 on eight. So the demo exposes the input of each
final Softmax (or LogSoftmax) as an extra output and checks, for every run:

- the logits against the reference's (onnxruntime's when it is importable, else the CPU
  provider's), relative to their magnitude;
- the logits against those the expected output determines (up to the shift per row the Softmax
  discards);
- the output against the Softmax of the run's own logits (so a broken Softmax kernel still fails);
- the output against the expected one, but only where that comparison is well-conditioned: the
  condition number of the Softmax, measured at the reference logits, times :data:`ROUNDING` is
  within :data:`TOLERANCE`. A model without a final Softmax is judged on its outputs.

A run passes when the largest of these relative errors is within :data:`TOLERANCE`.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = [
    "LIGHT_MODELS",
    "ROUNDING",
    "TOLERANCE",
    "DemoCase",
    "DemoReport",
    "DemoRow",
    "Probe",
    "Run",
    "Verdict",
    "augment",
    "condition_number",
    "decide",
    "demo_case",
    "format_report",
    "judge",
    "light_model_case",
    "light_model_dir",
    "run_demo",
]

LIGHT_MODELS = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)

TOLERANCE = 1e-3
"""Largest relative error ``max|a - b| / max|b|`` a run may have on the value it is judged on."""

ROUNDING = 1e-4
"""Relative error a correct float32 run may carry in its logits (correct providers differ from
onnxruntime by up to 8e-5 in the logits of these constant-weight networks). The output is compared
with the expected one when its condition number times this stays within :data:`TOLERANCE`: no
perturbation of the logits by this much can then move it past the tolerance."""

REFERENCE_CPU = "CPUExecutionProvider"


def light_model_dir() -> str:
    """The folder of the light models inside the installed onnx package."""
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def light_model_case(name: str) -> tuple[str, dict[str, np.ndarray], list[np.ndarray]]:
    """(model path, feed, expected outputs) of a light model.

    The feed is the one onnx's backend test uses for these models: ``arange(n) / n`` in the input's
    shape, float32, with unknown dims set to 1.
    """
    path = os.path.join(light_model_dir(), f"light_{name}.onnx")
    model = onnx.load(path, load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    feed = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim
        )
        n = int(np.prod(shape))
        feed[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    expected = []
    for i in range(len(model.graph.output)):
        t = onnx.TensorProto()
        with open(os.path.join(light_model_dir(), f"light_{name}_output_{i}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        expected.append(numpy_helper.to_array(t))
    return path, feed, expected


# -- the normalizing ops a final output may come from ------------------------------------------------


def _rows(x: np.ndarray, axis: int | None, opset: int) -> np.ndarray:
    """``x`` as a 2-D float64 array whose rows are what the op normalizes (opset < 13 coerces the
    input to 2-D at ``axis``, default 1; opset 13 and later normalize along ``axis``, default -1)."""
    x = np.asarray(x, np.float64)
    if x.ndim == 0:
        return x.reshape(1, 1)
    if opset < 13:
        a = (1 if axis is None else axis) % x.ndim
        return x.reshape(int(np.prod(x.shape[:a], dtype=np.int64)), -1)
    a = (-1 if axis is None else axis) % x.ndim
    return np.moveaxis(x, a, -1).reshape(-1, x.shape[a])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    s = z - z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class _Normalizer:
    """A row-normalizing op: its float64 forward, whether it returns log-probabilities, and the
    logits an output of it determines (up to the per-row shift the op discards)."""

    forward: Callable[[np.ndarray], np.ndarray]
    log: bool
    implied_logits: Callable[[np.ndarray], np.ndarray]


def _log_or_nan(y: np.ndarray) -> np.ndarray:
    """log(y) where y is a normal float32 (so its log is exact to float32 rounding), else NaN."""
    out = np.full(y.shape, np.nan)
    np.log(y, out=out, where=y >= np.finfo(np.float32).tiny)
    return out


NORMALIZERS = {
    "Softmax": _Normalizer(_softmax, False, _log_or_nan),
    "LogSoftmax": _Normalizer(_log_softmax, True, lambda y: y),
}


def condition_number(
    op_type: str,
    logits: np.ndarray,
    axis: int | None = None,
    opset: int = 13,
    rel: float = ROUNDING,
) -> float:
    """How much ``op_type`` (Softmax or LogSoftmax) amplifies a relative error in its input,
    measured at ``logits``: the largest change ``max|dy| / max|y|`` any perturbation of each
    logit by up to ``rel`` of its magnitude can make, divided by ``rel``.

    Computed exactly, not linearized: output ``i`` is largest with logit ``i`` at the top of its
    interval and every other logit at the bottom, and smallest the other way round (evaluated in
    the log domain). For small ``rel`` this is the usual condition number (about ``2M`` for
    logits all equal to ``M``); for finite ``rel`` it also sees ties a rounding can break (logits
    1e9 and 1e9 + 20 in float32).
    """
    norm = NORMALIZERS[op_type]
    z = _rows(logits, axis, opset)
    if z.size == 0:
        return 0.0
    if not np.isfinite(z).all():
        return float("inf")
    e = rel * np.abs(z)
    c = z - z.max(axis=1, keepdims=True)  # the ops ignore a shift per row; this keeps precision
    top, bottom = c + e, c - e
    # log of output i at its largest and at its smallest, in the log domain (nothing underflows)
    hi = top - np.logaddexp(top, _logsumexp_others(bottom))
    lo = bottom - np.logaddexp(bottom, _logsumexp_others(top))
    if not norm.log:
        hi, lo = np.exp(hi), np.exp(lo)
    y = norm.forward(z)
    scale = float(np.abs(y).max())
    change = float(np.maximum(np.abs(hi - y), np.abs(lo - y)).max())
    if not (np.isfinite(change) and scale > 0):
        return float("inf")
    return change / scale / rel


def _logsumexp_others(c: np.ndarray) -> np.ndarray:
    """``log(sum_{j != i} exp(c_j))`` for each entry of each row of a finite 2-D array."""
    rows = np.arange(c.shape[0])
    if c.shape[1] == 1:
        return np.full(c.shape, -np.inf)
    k = c.argmax(axis=1)
    m1 = c[rows, k][:, None]
    total = np.exp(c - m1).sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        # for i != k the row's maximum stays in the sum, which is then at least 1: no cancellation
        out = m1 + np.log(total - np.exp(c - m1))
    others = c.copy()
    others[rows, k] = -np.inf
    m2 = others.max(axis=1)
    out[rows, k] = m2 + np.log(np.exp(others - m2[:, None]).sum(axis=1))
    return out


def _rel_err(actual: np.ndarray, reference: np.ndarray) -> float:
    """``max|a - b| / max|b|`` in float64; inf for a shape mismatch, NaN for non-finite values."""
    a, b = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    scale = float(np.max(np.abs(b)))
    diff = float(np.max(np.abs(a - b)))
    if not (np.isfinite(diff) and np.isfinite(scale)):
        return float("nan")
    return diff / scale if scale > 0 else diff


def _shift_err(logits: np.ndarray, implied: np.ndarray) -> float:
    """How far ``logits`` are from ``implied`` up to one shift per row, relative to their
    magnitude (entries where ``implied`` is not finite constrain nothing)."""
    r = logits - implied
    known = np.isfinite(implied)
    if not known.any():
        return 0.0
    if not np.isfinite(logits).all():
        return float("nan")
    hi = np.where(known, r, -np.inf).max(axis=1)
    lo = np.where(known, r, np.inf).min(axis=1)
    spread = np.where(np.isfinite(hi), (hi - lo) / 2, 0.0)
    scale = float(np.abs(logits).max())
    return float(spread.max()) / scale if scale > 0 else float(spread.max())


# -- one model, prepared once -----------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A final output made by a normalizing op, and where the op's input (the logits) is exposed."""

    output: int  # index of the final output
    op_type: str
    axis: int | None
    opset: int
    logits: int  # index of the logits among the augmented model's outputs


@dataclass
class DemoCase:
    """A light model with its feed, expected outputs and the logits it exposes as extra outputs."""

    name: str
    model: onnx.ModelProto
    feed: dict[str, np.ndarray]
    expected: list[np.ndarray]
    probes: list[Probe]


def demo_case(name: str) -> DemoCase:
    """Load a light model and add the input of each final Softmax/LogSoftmax as a graph output."""
    path, feed, expected = light_model_case(name)
    return augment(name, onnx.load(path), feed, expected)


def augment(
    name: str, model: onnx.ModelProto, feed: dict[str, np.ndarray], expected: list[np.ndarray]
) -> DemoCase:
    """A :class:`DemoCase` for any model (its graph outputs are extended in place)."""
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    producer = {o: n for n in g.node for o in n.output}
    not_computed = {t.name for t in g.initializer} | {i.name for i in g.input}
    # the extra outputs carry the inferred shapes: a compiling provider may need a static rank
    inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    probes = []
    for i, out in enumerate(list(g.output)):
        node = producer.get(out.name)
        if node is None or node.op_type not in NORMALIZERS or node.domain not in ("", "ai.onnx"):
            continue
        z = node.input[0]
        if z in not_computed:
            continue
        names = [o.name for o in g.output]
        if z not in names:
            vi = inferred.get(z)
            if vi is None:
                vi = helper.make_tensor_value_info(z, out.type.tensor_type.elem_type, None)
            g.output.append(vi)
            names.append(z)
        axis = next((a.i for a in node.attribute if a.name == "axis"), None)
        probes.append(Probe(i, node.op_type, axis, opset, names.index(z)))
    return DemoCase(name, model, feed, expected, probes)


# -- running ----------------------------------------------------------------------------------------


@dataclass
class Run:
    """One model on one provider (or on onnxruntime): its outputs, placement and latency."""

    provider: str
    outputs: list[np.ndarray] | None = None
    nodes: dict[str, int] = field(default_factory=dict)
    latency_ms: float = float("nan")
    runs: int = 0
    error: str = ""


def _timed(run: Callable[[], list], repeat: int, budget_s: float) -> tuple[list, float, int]:
    """One warm-up run (whose outputs are judged), then up to ``repeat`` timed runs, fewer once
    they have taken ``budget_s`` (at least one). Returns (outputs, median ms, timed runs)."""
    outs = run()
    times: list[float] = []
    while len(times) < max(1, repeat) and (not times or sum(times) < budget_s):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return outs, 1000 * float(np.median(times)), len(times)


def run_on_provider(case: DemoCase, provider: str, repeat: int, budget_s: float) -> Run:
    """Run ``case`` with ``providers=[provider]`` (the CPU provider is the session's fallback)."""
    from .options import SessionOptions
    from .session import InferenceSession

    so = SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    try:
        sess = InferenceSession(case.model, so, providers=[provider])
        outs, ms, n = _timed(lambda: sess.run(None, case.feed), repeat, budget_s)
        nodes: dict[str, int] = {}
        for sub in sess.get_provider_graph_assignment_info():
            nodes[sub.ep_name] = nodes.get(sub.ep_name, 0) + len(sub.get_nodes())
    except Exception as e:  # the demo reports every failure in its row
        return Run(provider, error=f"{type(e).__name__}: {e}")
    return Run(provider, [np.asarray(o) for o in outs], nodes, ms, n)


def _import_onnxruntime():
    """onnxruntime when it is importable, else None (the demo then has no latency baseline)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def run_on_onnxruntime(case: DemoCase, ort, repeat: int, budget_s: float) -> Run:
    """Run ``case`` on onnxruntime's CPU provider: the reference logits and the latency baseline."""
    try:
        so = ort.SessionOptions()
        so.log_severity_level = 3  # errors only: its warnings about unused initializers are noise
        sess = ort.InferenceSession(
            case.model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        outs, ms, n = _timed(lambda: sess.run(None, case.feed), repeat, budget_s)
    except Exception as e:  # reported under the table; the rows are then judged without it
        return Run("onnxruntime", error=f"{type(e).__name__}: {e}")
    return Run("onnxruntime", [np.asarray(o) for o in outs], {}, ms, n)


# -- judging ----------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What a run was judged on ("output" or "logits"), its relative error, and the outcome."""

    compared: str
    rel_err: float
    ok: bool
    error: str = ""


def decide(case: DemoCase, reference: list[np.ndarray] | None, runs: Sequence[Run]) -> float:
    """The model's condition number: the largest over its probes, measured at the reference
    logits (or, without a reference, at the largest any run produced). 0 when it has no probe."""
    kappa = 0.0
    sources = [reference] if reference is not None else [r.outputs for r in runs if r.outputs]
    for p in case.probes:
        for outs in sources:
            if outs is not None and p.logits < len(outs):
                kappa = max(kappa, condition_number(p.op_type, outs[p.logits], p.axis, p.opset))
    return kappa


def judge(case: DemoCase, run: Run, kappa: float, reference: list[np.ndarray] | None) -> Verdict:
    """Judge ``run``: the largest relative error of the checks below must be within TOLERANCE.

    - each final output against the expected one, unless it comes from a normalizing op that is
      ill-conditioned at this model's logits (``kappa * ROUNDING > TOLERANCE``);
    - for each output of a normalizing op: its logits against the reference's (when there is a
      reference) and against those the expected output determines (up to a shift per row), and
      the output against the op applied to the run's own logits in float64.
    """
    compare_output = kappa * ROUNDING <= TOLERANCE or not case.probes
    compared = ("output, logits" if case.probes else "output") if compare_output else "logits"
    if run.outputs is None:
        return Verdict(compared, float("nan"), False, run.error or "no outputs")
    outs = run.outputs
    if len(outs) < len(case.expected) + len(case.probes):
        return Verdict(compared, float("nan"), False, f"{len(outs)} outputs")
    errors = []
    probes = {p.output: p for p in case.probes}
    for i, expected in enumerate(case.expected):
        y = outs[i]
        if y.shape != expected.shape:
            why = f"output {i} has shape {y.shape}, expected {expected.shape}"
            return Verdict(compared, float("inf"), False, why)
        p = probes.get(i)
        if compare_output or p is None:
            errors.append(_rel_err(y, expected))
        if p is None:
            continue
        norm = NORMALIZERS[p.op_type]
        z = outs[p.logits]
        if z.size != y.size:
            why = f"the logits of output {i} have shape {z.shape}, the output {y.shape}"
            return Verdict(compared, float("inf"), False, why)
        if reference is not None:
            errors.append(_rel_err(z, reference[p.logits]))
        z2 = _rows(z, p.axis, p.opset)
        errors.append(_shift_err(z2, norm.implied_logits(_rows(expected, p.axis, p.opset))))
        errors.append(_rel_err(_rows(y, p.axis, p.opset), norm.forward(z2)))
    err = max(errors, key=lambda e: np.inf if np.isnan(e) else e) if errors else 0.0
    return Verdict(compared, err, bool(err <= TOLERANCE))


# -- the demo ---------------------------------------------------------------------------------------


@dataclass
class DemoRow:
    """One model: its runs per provider, their verdicts, and onnxruntime's run when it ran."""

    model: str
    kappa: float
    compared: str
    runs: dict[str, Run]
    verdicts: dict[str, Verdict]
    onnxruntime: Run | None = None
    reference: str = ""  # what gave the reference logits: "onnxruntime X.Y.Z", "the CPU provider"


@dataclass
class DemoReport:
    providers: list[str]
    rows: list[DemoRow]
    onnxruntime: bool  # whether onnxruntime ran (its latency is shown)
    seconds: float = 0.0

    @property
    def reference(self) -> str:
        """What gave the reference logits ("" when nothing did)."""
        names = dict.fromkeys(r.reference for r in self.rows if r.reference)
        return " or ".join(names)

    @property
    def failures(self) -> int:
        return sum(not v.ok for r in self.rows for v in r.verdicts.values())

    @property
    def checks(self) -> int:
        return sum(len(r.verdicts) for r in self.rows)


def run_demo(
    models: Sequence[str],
    providers: Sequence[str],
    repeat: int = 3,
    budget_s: float = 1.0,
    onnxruntime: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
) -> DemoReport:
    """Run each light model on each provider (one session per provider, with the CPU provider as
    fallback) and on onnxruntime when ``onnxruntime`` is set and it is importable; judge each run.

    Args:
        models: light model names (see :data:`LIGHT_MODELS`).
        providers: provider names or aliases; each runs every model in its own session.
        repeat: timed runs after one warm-up, fewer once they take ``budget_s`` seconds.
        budget_s: time after which a model stops being timed on a provider (one run at least).
        onnxruntime: compare with onnxruntime when it is importable.
        progress: called with (step, steps, what) before each session.
    """
    from .plugins import get_plugin_manager

    t0 = time.perf_counter()
    ort = _import_onnxruntime() if onnxruntime else None
    pm = get_plugin_manager()
    providers = [e.name if (e := pm.resolve(p)) is not None else p for p in providers]
    steps = len(models) * (len(providers) + (ort is not None))
    step = 0
    rows = []
    for name in models:
        case = demo_case(name)
        ort_run = None
        if ort is not None:
            if progress:
                progress(step, steps, f"{name} on onnxruntime")
            step += 1
            ort_run = run_on_onnxruntime(case, ort, repeat, budget_s)
        runs = {}
        for provider in providers:
            if progress:
                progress(step, steps, f"{name} on {_short(provider)}")
            step += 1
            runs[provider] = run_on_provider(case, provider, repeat, budget_s)
        reference, reference_name = _reference(ort, ort_run, runs)
        kappa = decide(case, reference, list(runs.values()))
        verdicts = {p: judge(case, r, kappa, reference) for p, r in runs.items()}
        compared = next(iter(verdicts.values())).compared if verdicts else "output"
        rows.append(DemoRow(name, kappa, compared, runs, verdicts, ort_run, reference_name))
    if progress:
        progress(steps, steps, "done")
    return DemoReport(providers, rows, ort is not None, time.perf_counter() - t0)


def _reference(ort, ort_run: Run | None, runs: dict[str, Run]):
    """The reference outputs of a model: onnxruntime's, else the CPU provider's run."""
    if ort_run is not None and ort_run.outputs is not None:
        return ort_run.outputs, f"onnxruntime {ort.__version__}"
    cpu = runs.get(REFERENCE_CPU)
    if cpu is not None and cpu.outputs is not None:
        return cpu.outputs, "the CPU provider"
    return None, ""


# -- the table --------------------------------------------------------------------------------------


def _short(provider: str) -> str:
    return provider.removesuffix("ExecutionProvider") or provider


def _nodes_cell(run: Run) -> str:
    own = run.nodes.get(run.provider, 0)
    others = sorted((n, p) for p, n in run.nodes.items() if p != run.provider and n)
    return " ".join([str(own), *(f"+{n} {_short(p)}" for n, p in others)])


def _ms(value: float) -> str:
    if not np.isfinite(value):
        return "-"
    return f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _ratio(value: float) -> str:
    if not np.isfinite(value):
        return "-"
    return f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("s" if n != 1 else "")


def _geomean(values: list[float]) -> float:
    v = [x for x in values if np.isfinite(x) and x > 0]
    return float(np.exp(np.mean(np.log(v)))) if v else float("nan")


def format_report(report: DemoReport) -> str:
    """The demo's table: one row per model, the providers side by side, a legend and a summary."""
    sub = ["nodes", "ms", "vs ort", "result"] if report.onnxruntime else ["nodes", "ms", "result"]
    header = ["model", "compared"] + [c for _ in report.providers for c in sub]
    if report.onnxruntime:
        header.append("ort ms")
    rows, notes = [], []
    ratios: dict[str, list[float]] = {p: [] for p in report.providers}
    for r in report.rows:
        compared = f"logits, cond {r.kappa:.0e}" if r.compared == "logits" else r.compared
        cells = [r.model, compared]
        ort_ms = r.onnxruntime.latency_ms if r.onnxruntime is not None else float("nan")
        for p in report.providers:
            run, v = r.runs[p], r.verdicts[p]
            result = "OK" if v.ok else "FAIL"
            if run.outputs is not None:
                result += f" {v.rel_err:.0e}"
            cells += [_nodes_cell(run) if run.outputs is not None else "-", _ms(run.latency_ms)]
            if report.onnxruntime:
                ratio = run.latency_ms / ort_ms if ort_ms > 0 else float("nan")
                ratios[p].append(ratio)
                cells.append(_ratio(ratio))
            cells.append(result)
            if v.error:
                notes.append(f"{r.model} on {_short(p)}: {v.error}"[:300])
        if report.onnxruntime:
            cells.append(_ms(ort_ms))
            if r.onnxruntime is not None and r.onnxruntime.error:
                notes.append(f"{r.model} on onnxruntime: {r.onnxruntime.error}"[:300])
        rows.append(cells)
    groups = [("", 2)] + [(_short(p), len(sub)) for p in report.providers]
    if report.onnxruntime:
        groups.append(("onnxruntime", 1))
    text = _render(groups, header, rows)
    text.append("")
    text += notes
    text += _legend(report)
    summary = f"{report.checks - report.failures} OK, {report.failures} FAIL"
    summary += (
        f" ({_count(len(report.rows), 'model')} x {_count(len(report.providers), 'provider')}"
        f" in {report.seconds:.0f} s)"
    )
    if report.onnxruntime:
        speed = ", ".join(f"{_short(p)} {_ratio(_geomean(v))}" for p, v in ratios.items())
        summary += f"; latency vs onnxruntime (geometric mean): {speed}"
    text.append(summary)
    return "\n".join(text)


def _render(groups: list[tuple[str, int]], header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, under a line of group titles (each spanning its
    columns, which widen when a title is longer)."""
    widths = [max(len(c[i]) for c in [header, *rows]) for i in range(len(header))]
    first = 0
    for title, n in groups:
        span = sum(widths[first : first + n]) + 2 * (n - 1)
        widths[first + n - 1] += max(0, len(title) - span)
        first += n

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    titles, first = [], 0
    for title, n in groups:
        titles.append(title.ljust(sum(widths[first : first + n]) + 2 * (n - 1)))
        first += n
    return [
        "  ".join(titles).rstrip(),
        line(header),
        line(["-" * w for w in widths]),
        *(line(c) for c in rows),
    ]


def _legend(report: DemoReport) -> list[str]:
    against = f" against {report.reference}'s and" if report.reference else ""
    parts = [
        "compared: output = each output against the one shipped with onnx. logits = the input of"
        f" the final Softmax{against} against what the shipped output implies (up to a shift),"
        " and the output against the Softmax of the run's own logits.",
    ]
    if any(r.compared == "logits" for r in report.rows):
        parts.append(
            '"logits" alone: the Softmax is ill-conditioned at these logits (cond x'
            f" {ROUNDING:.0e} > {TOLERANCE:.0e}: float32 rounding of the logits could move the"
            " output past the tolerance), so the output is not compared with the shipped one."
        )
    text = [textwrap.fill(" ".join(parts), 100, subsequent_indent="  ", break_on_hyphens=False)]
    result = (
        f"result: max|a-b|/max|b| over what was compared, OK up to {TOLERANCE:g}. nodes: run by"
        " the provider (+N CPU: left to the CPU fallback). ms: median latency after one warm-up."
    )
    if report.onnxruntime:
        result += " vs ort: ms / onnxruntime's ms (on its CPU provider)."
    text.append(textwrap.fill(result, 100, subsequent_indent="  ", break_on_hyphens=False))
    return text
