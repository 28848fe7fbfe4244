"""Execution plans: a flat list of steps over integer value slots, and the executor that runs them.

A plan is built once per session (and once per control-flow subgraph). Kernels are created while
building; running a plan is a loop of kernel calls. Every per-run value lives in the slot list of that
run, so one plan can run on several threads at once. Each value's slot is cleared after its last use.
"""

from __future__ import annotations

import bisect
import contextvars
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import errors
from .errors import EPFail, RuntimeException
from .ir import Graph, Model, Node
from .partitioner import ModelPartition, Partition, partition_model, scope_types
from .provider import ExecutionProvider, KernelInfo, KernelUnsupported, is_multi_output
from .provider.context import current_run

__all__ = ["Plan", "Prepared", "prepare", "schedule", "build_plan", "GraphRunner", "Step"]

_NONE = 0  # slot 0 always holds None (omitted optional inputs and outputs)


@dataclass
class Step:
    """One kernel call: ``outs <- fn(*[slots[i] for i in ins])``; then ``frees`` are cleared."""

    fn: Callable[..., Any]
    ins: tuple[int, ...]
    outs: tuple[int, ...]
    multi: bool
    frees: tuple[int, ...]
    node: Node
    provider: str
    kind: str = "kernel"  # "kernel", "fused" or "copy"


@dataclass
class Plan:
    """A runnable plan for one graph."""

    graph: Graph
    steps: list[Step]
    n_slots: int
    input_slots: list[int]  # one per graph input (then per outer name, for subgraphs)
    output_slots: list[int]
    base: list[Any]  # slot template: constants filled in, everything else None
    partition: Partition
    copies: int = 0
    subplans: list[Plan] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._fast, self._step_lines = _generate(self.steps)
        #: the same steps as one function ``whole(inputs, run_options) -> outputs`` (the slot
        #: list made, filled and read in generated code: 0.9 -> 0.5 us of a one-node plan's run):
        #: every input given, no profiler or pool; where it raises, raise :meth:`whole_failure`
        self.whole, self._whole_lines = _generate(self.steps, whole=self)
        #: the straight-line code of runs with RunOptions (terminate checked between steps),
        #: generated on the first such run
        self._watched: tuple[Callable[..., Any], list[int]] | None = None

    def whole_failure(self, e: Exception) -> Exception:
        """The error to raise where :attr:`whole` raised ``e`` (naming the node that failed)."""
        return self._fail(self._failed_step(e, self._whole_lines), e)

    def run(
        self,
        inputs: Sequence[Any],
        run_options: Any = None,
        profiler: Any = None,
        pool: Any = None,
    ) -> list[Any]:
        """Run with values for ``input_slots`` in order; return the values of ``output_slots``.
        With ``pool`` (a ``concurrent.futures`` executor), independent steps run concurrently
        (``ExecutionMode.ORT_PARALLEL``)."""
        if (
            pool is None
            and profiler is None
            and (run_options is None or not getattr(run_options, "_watch", False))
        ):
            if len(inputs) != len(self.input_slots):  # as zip() pairs them below
                given = list(inputs[: len(self.input_slots)])
                inputs = given + [self.base[i] for i in self.input_slots[len(given) :]]
            try:
                return self.whole(inputs, run_options)
            except Exception as e:
                raise self.whole_failure(e) from e
        slots = self.base.copy()
        for i, v in zip(self.input_slots, inputs):
            slots[i] = v
        if pool is not None and len(self.steps) > 1:
            self._run_parallel(slots, run_options, profiler, pool)
        elif profiler is not None:
            self._run_profiled(slots, profiler)
        else:
            if run_options is None or not getattr(run_options, "_watch", False):
                code, lines = self._fast, self._step_lines
            else:  # the same code with RunOptions.terminate read before each step
                code, lines = self._watched or self._generate_watched()
            try:
                stopped = code(slots, run_options)
            except Exception as e:
                raise self._fail(self._failed_step(e, lines), e) from e
            if stopped:
                raise RuntimeException(
                    "Exiting due to terminate flag being set to true (RunOptions.terminate)."
                )
        slots[_NONE] = None
        return [slots[o] for o in self.output_slots]

    def _generate_watched(self) -> tuple[Callable[..., Any], list[int]]:
        watched = self._watched = _generate(self.steps, watch=True)
        return watched

    def _run_profiled(self, slots: list[Any], profiler: Any) -> None:
        for step_no, step in enumerate(self.steps):
            args = [slots[i] for i in step.ins]
            t0 = time.perf_counter()
            try:
                res = step.fn(*args)
            except Exception as e:
                raise self._fail(step_no, e) from e
            t1 = time.perf_counter()
            self._store(slots, step.outs, step.multi, res, ())
            profiler.node_event(step, t0, t1, args, [slots[o] for o in step.outs])
            for f in step.frees:
                slots[f] = None

    def _dependencies(self) -> tuple[list[list[int]], list[int], dict[int, int]]:
        """(the steps waiting on each step, how many steps each waits on, readers per slot)."""
        cached = getattr(self, "_deps", None)
        if cached is not None:
            return cached
        producer: dict[int, int] = {}
        for k, st in enumerate(self.steps):
            for o in st.outs:
                producer[o] = k
        waiting: list[list[int]] = [[] for _ in self.steps]
        count = [0] * len(self.steps)
        readers: dict[int, int] = {}
        for k, st in enumerate(self.steps):
            deps = {producer[i] for i in st.ins if i in producer and producer[i] != k}
            for d in deps:
                waiting[d].append(k)
            count[k] = len(deps)
            for i in set(st.ins):
                readers[i] = readers.get(i, 0) + 1
        self._deps = (waiting, count, readers)
        return self._deps

    def _run_parallel(self, slots: list[Any], run_options: Any, profiler: Any, pool: Any) -> None:
        """Run steps as soon as their inputs exist, several at a time on ``pool``'s threads.
        Intermediate values are freed when their last reader has run (reader counts, since the
        sequential last reader may now run before the others)."""
        from concurrent.futures import FIRST_COMPLETED, wait

        waiting, count, readers = self._dependencies()
        count = list(count)
        left = dict(readers)
        keep = (
            set(self.input_slots)
            | set(self.output_slots)
            | {i for i, v in enumerate(self.base) if v is not None}
        )
        steps = self.steps

        def call(k: int) -> Any:
            st = steps[k]
            args = [slots[i] for i in st.ins]
            if profiler is None:
                return st.fn(*args)
            t0 = time.perf_counter()
            res = st.fn(*args)
            t1 = time.perf_counter()
            outs = res if st.multi else [res]
            profiler.node_event(st, t0, t1, args, list(outs))
            return res

        running: dict[Any, int] = {}
        ready = [k for k, c in enumerate(count) if c == 0]
        error: tuple[int, Exception] | None = None
        while ready or running:
            while ready and error is None:
                if run_options is not None and run_options.terminate:
                    error = (ready[0], RuntimeException(
                        "Exiting due to terminate flag being set to true (RunOptions.terminate)."
                    ))  # fmt: skip
                    break
                k = ready.pop()
                # the step sees its run's context (current_run()) on the pool's thread too
                running[pool.submit(contextvars.copy_context().run, call, k)] = k
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                k = running.pop(fut)
                try:
                    res = fut.result()
                except Exception as e:  # the first failure is reported; running steps finish
                    if error is None:
                        error = (k, e)
                    continue
                st = steps[k]
                self._store(slots, st.outs, st.multi, res, ())
                for i in set(st.ins):
                    left[i] -= 1
                    if left[i] == 0 and i not in keep:
                        slots[i] = None
                if error is None:
                    for w in waiting[k]:
                        count[w] -= 1
                        if count[w] == 0:
                            ready.append(w)
            if error is not None and not running:
                break
        if error is not None:
            k, e = error
            raise self._fail(k, e) from e

    @staticmethod
    def _store(slots, outs, multi, res, frees) -> None:
        if multi:
            for o, r in zip(outs, res):
                slots[o] = r
        else:
            slots[outs[0]] = res
        for f in frees:
            slots[f] = None

    def _failed_step(self, e: BaseException, starts: list[int] | None = None) -> int:
        """The step whose line of the generated run function raised ``e`` (``starts``: the first
        line of each step in that function)."""
        tb = e.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == _GENERATED:
                line = tb.tb_lineno
            tb = tb.tb_next
        if line is None:
            return 0
        return max(0, bisect.bisect_right(starts or self._step_lines, line) - 1)

    def _fail(self, step_no: int, e: Exception) -> Exception:
        if isinstance(e, RuntimeException) and getattr(e, "node_reported", False):
            return e
        step = self.steps[min(step_no, len(self.steps) - 1)]
        err = RuntimeException(
            f"{step.provider} failed running {step.node.label()} of graph '{self.graph.name}': "
            f"{type(e).__name__}: {e}"
        )
        err.node_reported = True  # type: ignore[attr-defined]
        return err


_GENERATED = "<ort_core plan>"


def _generate(
    steps: list[Step], watch: bool = False, whole: Plan | None = None
) -> tuple[Callable[[list[Any], Any], Any], list[int]]:
    """Compile the steps into one straight-line Python function over the slot list.

    Each step becomes one or a few lines (``s[5] = f3(s[1], s[2])``, then ``s[1] = None`` for
    values past their last use), so a run pays for the kernel calls and little else. The function
    takes the slot list and the run's RunOptions; with ``watch`` it reads ``RunOptions.terminate``
    before each step and returns True when it is set (the caller raises). Returns the function
    and the first line number of each step (to name the failing node on an error).
    """
    env: dict[str, Any] = {}
    lines = ["def run(s, ro):"]
    if whole is not None:  # run(inputs, ro) -> outputs: the slot list made and read here
        env["base"] = whole.base
        fill = "; ".join(f"s[{slot}] = inp[{k}]" for k, slot in enumerate(whole.input_slots))
        lines = ["def run(inp, ro):", "    s = base.copy()"] + ([f"    {fill}"] if fill else [])
    starts = []
    for k, st in enumerate(steps):
        starts.append(len(lines) + 1)
        if watch:
            lines.append("    if ro.terminate: return True")
        fn = f"f{k}"
        env[fn] = st.fn
        args = ", ".join(f"s[{i}]" for i in st.ins)
        if st.multi:
            lines.append(f"    r = {fn}({args}); n = len(r)")
            for j, o in enumerate(st.outs):
                lines.append(f"    s[{o}] = r[{j}] if n > {j} else None")
        else:
            lines.append(f"    s[{st.outs[0]}] = {fn}({args})")
        if st.frees:
            lines.append("    " + "; ".join(f"s[{f}] = None" for f in st.frees))
    if whole is not None:
        outs = ", ".join(f"s[{o}]" for o in whole.output_slots)
        lines += [f"    s[{_NONE}] = None", f"    return [{outs}]"]
    else:
        lines.append("    return False")
    exec(compile("\n".join(lines), _GENERATED, "exec"), env)  # noqa: S102 - our own code
    return env["run"], starts


class BoundGraph:
    """A subgraph bound to the outer-scope values of one run: ``bound(*inputs) -> list``."""

    __slots__ = ("plan", "outer")

    def __init__(self, plan: Plan, outer: list[Any]) -> None:
        self.plan = plan
        self.outer = outer

    def __call__(self, *inputs: Any) -> list[Any]:
        return self.plan.run([*inputs, *self.outer])


class GraphRunner:
    """A control-flow subgraph compiled to a plan; ``bind(outer)`` per run (see KernelInfo)."""

    def __init__(self, plan: Plan, outer_names: list[str]) -> None:
        self.plan = plan
        self.outer_names = outer_names
        self.inputs = list(plan.graph.inputs)
        self.outputs = list(plan.graph.outputs)

    def bind(self, outer: dict[str, Any]) -> BoundGraph:
        return BoundGraph(self.plan, [outer.get(n) for n in self.outer_names])


#: one prepared node: (node, provider, callable, multi-output, kind, implicit inputs, host inputs)
#: node, provider, kernel, multi-output, kind, implicit inputs, host inputs, host outputs
PreparedNode = tuple[
    Node, ExecutionProvider, Callable[..., Any], bool, str, list[str], frozenset[int],
    frozenset[int],
]  # fmt: skip


@dataclass
class Prepared:
    """A partitioned graph with its kernels built, before scheduling (copies and slots)."""

    model: Model
    graph: Graph
    providers: list[ExecutionProvider]
    partition: Partition
    extra_inputs: list[str]
    nodes: list[PreparedNode]
    subplans: list[Plan]
    #: constants already copied to a device, shared by every schedule of this graph
    device_constants: dict[str, Any] = field(default_factory=dict)


def prepare(
    model: Model,
    graph: Graph,
    providers: list[ExecutionProvider],
    parts: ModelPartition,
    *,
    extra_inputs: Sequence[str] = (),
    session_options: Any = None,
) -> Prepared:
    """Build every kernel and compiled subgraph of ``graph`` once, from its partition in
    ``parts`` (see :func:`ort_core.partitioner.partition_model`); control-flow bodies become
    plans of their own. Nothing is partitioned or optimized here."""
    part = parts.of(graph)
    by_name = {ep.name: ep for ep in providers}
    scope = scope_types(graph, parts.outer_types(graph))
    nodes: list[PreparedNode] = []
    subplans: list[Plan] = []
    for node in graph.nodes:
        ep = by_name[node.provider]
        fused = part.fused.get(id(node))
        if fused is not None:
            fn = _compile_fused(ep, fused[1], model)
            nodes.append((node, ep, fn, True, "fused", [], frozenset(), frozenset()))
            continue
        runners, implicit = _subgraph_runners(
            model, node, providers, parts, session_options, subplans
        )
        info = _kernel_info(model, graph, node, ep, scope, implicit, runners, session_options)
        fn = _create_kernel(ep, info)
        on_host = frozenset() if ep.host_memory else ep.host_inputs(info)
        out_host = frozenset() if ep.host_memory else ep.host_outputs(info)
        multi = is_multi_output(node, info.opset)
        nodes.append((node, ep, fn, multi, "kernel", implicit, on_host, out_host))
    return Prepared(model, graph, providers, part, list(extra_inputs), nodes, subplans)


def _compile_fused(ep: ExecutionProvider, sub: Graph, model: Model) -> Callable[..., Any]:
    try:
        return ep.compile(sub, model.opset_imports)
    except Exception as e:
        raise EPFail(f"{ep.name} failed to compile {sub.name}: {e}") from e


def _subgraph_runners(
    model: Model,
    node: Node,
    providers: list[ExecutionProvider],
    parts: ModelPartition,
    session_options: Any,
    subplans: list[Plan],
) -> tuple[dict[str, GraphRunner], list[str]]:
    """A plan for each control-flow body of ``node`` and the outer values they read."""
    runners: dict[str, GraphRunner] = {}
    implicit: list[str] = []
    for attr_name, sub in node.subgraphs.items():
        outer = sub.outer_names()
        prep = prepare(
            model, sub, providers, parts, extra_inputs=outer, session_options=session_options
        )
        subplan = schedule(prep)
        subplans.append(subplan)
        runners[attr_name] = GraphRunner(subplan, outer)
        implicit.extend(x for x in outer if x not in implicit)
    return runners, implicit


def _kernel_info(
    model: Model,
    graph: Graph,
    node: Node,
    ep: ExecutionProvider,
    scope: dict,
    implicit: list[str],
    runners: dict[str, GraphRunner],
    session_options: Any,
) -> KernelInfo:
    return KernelInfo(
        node,
        model.opset(node.domain),
        [scope.get(i) if i else None for i in node.inputs],
        [scope.get(o) if o else None for o in node.outputs],
        {
            i: graph.initializers[n]
            for i, n in enumerate(node.inputs)
            if n in graph.initializers and n not in graph.inputs
        },
        provider=ep,
        implicit_inputs=implicit,
        subgraph_runners=runners,
        session_options=session_options,
    )


def _create_kernel(ep: ExecutionProvider, info: KernelInfo) -> Callable[..., Any]:
    """The provider's kernel for ``info``, after asking it once more whether it runs the node
    (a node a pass changed after partitioning must still be one its provider accepts)."""
    node, opset = info.node, info.opset
    declined = ep.decline(info)
    if declined is not None:
        cls = errors.InvalidGraph if declined.invalid else errors.EPFail
        raise cls(
            f"{ep.name} was given {node.label()} at opset {opset} but declines it: "
            f"{declined.reason}. (A node created after partitioning must be one its "
            "provider runs: this is a bug of the pass that made it.)"
        )
    try:
        return ep.create_kernel(info)
    except KernelUnsupported as e:
        raise errors.NotImplemented(
            f"{ep.name} cannot run {node.label()} at opset {opset}: {e}. Change the node's "
            "attributes or types, or use a provider that supports them."
        ) from None


class _Layout:
    """Slots of one schedule: names to integer slots, which memory holds each value, and the
    copy steps placed so far."""

    def __init__(self, prep: Prepared, input_locations: dict[str, str] | None) -> None:
        self.prep = prep
        self.by_name = {ep.name: ep for ep in prep.providers}
        self.slot_of: dict[str, int] = {"": _NONE}
        #: value name -> provider name holding it off-host
        self.location: dict[str, str] = dict(input_locations or {})
        self.constants = {
            n: a for n, a in prep.graph.initializers.items() if n not in prep.graph.inputs
        }
        self.steps: list[Step] = []
        self.copies = 0

    def slot(self, name: str) -> int:
        if name not in self.slot_of:
            self.slot_of[name] = len(self.slot_of)
        return self.slot_of[name]

    def place(self, name: str, target: str | None, node: Node | None, output: bool = False) -> str:
        """The name of ``name``'s value in ``target``'s memory (None: the host), adding a copy
        step when it lives elsewhere. Constants read by nodes are copied once, here, not on every
        run; a graph ``output`` is copied on every run (the caller owns what it gets)."""
        have = self.location.get(name)
        if not name or have == target:
            return name
        copy_name = f"{name}@{target or 'host'}"
        if copy_name not in self.slot_of:
            src = self.by_name[have] if have else None
            dst = self.by_name[target] if target else None
            step = _copy_step(src, dst, self.slot(name), self.slot(copy_name), node)
            graph = self.prep.graph
            if name in self.constants and not output:
                cached = self.prep.device_constants.get(copy_name)
                if cached is None:
                    cached = self.prep.device_constants[copy_name] = step.fn(self.constants[name])
                self.constants[copy_name] = cached
            else:
                if name in graph.initializers and not output:  # an overridable default
                    step.fn = _reuse_default(step.fn, graph.initializers[name])
                self.steps.append(step)
                self.copies += 1
            self.location[copy_name] = target  # type: ignore[assignment]
        return copy_name

    def add_node(self, prepared: PreparedNode) -> None:
        node, ep, fn, multi, kind, implicit, on_host, out_host = prepared
        want = None if ep.host_memory else ep.name
        resolved = [
            self.place(name, None if k in on_host else want, node)
            for k, name in enumerate([*node.inputs, *implicit])
        ]
        ins = tuple(self.slot(n) for n in resolved)
        # an omitted output gets a slot of its own that nobody reads (slot 0 must stay None)
        outs = tuple(
            self.slot(o or f"{node.name}#{id(node)}:{k}") for k, o in enumerate(node.outputs)
        )
        for k, o in enumerate(node.outputs):
            if o and want is not None and k not in out_host:
                self.location[o] = want
        self.steps.append(Step(fn, ins, outs, multi, (), node, ep.name, kind))

    def base(self) -> list[Any]:
        """The slot template: initializers and (device copies of) constants filled in."""
        base: list[Any] = [None] * len(self.slot_of)
        for name, arr in self.prep.graph.initializers.items():
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False
            base[self.slot_of[name]] = arr
        for name, value in self.constants.items():
            base[self.slot_of[name]] = value
        return base


def schedule(
    prep: Prepared,
    input_locations: dict[str, str] | None = None,
    output_locations: dict[str, str] | None = None,
    *,
    fetches: Sequence[str] | None = None,
    reuse: bool = True,
) -> Plan:
    """Lay out slots and steps, with a copy wherever a value crosses from one memory to another.

    ``input_locations``/``output_locations`` name the provider whose memory holds a graph input or
    should receive a graph output (absent: host memory); IOBinding uses them to keep values on a
    device between runs. With ``fetches`` (graph output names) only the steps those outputs need
    are kept (``RunOptions.only_execute_path_to_fetches``); the other outputs come back as None.
    ``reuse=False`` (``SessionOptions.enable_mem_reuse = False``) keeps every intermediate value
    until the run ends instead of freeing it after its last use.
    """
    graph = prep.graph
    lay = _Layout(prep, input_locations)
    input_slots = [lay.slot(n) for n in [*graph.inputs, *prep.extra_inputs]]
    for name in graph.initializers:
        lay.slot(name)
    for prepared in prep.nodes:
        lay.add_node(prepared)
    # graph outputs go to the host unless bound to a device
    targets = output_locations or {}
    output_slots = [
        lay.slot(lay.place(n, targets.get(n), None, output=True)) for n in graph.outputs
    ]
    base = lay.base()
    _check_defined(graph, lay.steps, lay.slot_of, input_slots, output_slots, base)
    steps = lay.steps
    if fetches is not None:
        wanted = {output_slots[graph.outputs.index(n)] for n in fetches}
        steps = _prune(steps, wanted)
    if reuse:
        keep = set(input_slots) | set(output_slots)
        keep |= {lay.slot_of[n] for n in graph.initializers} | {
            lay.slot_of[n] for n in lay.constants
        }
        _assign_frees(steps, keep)
    return Plan(
        graph,
        steps,
        len(lay.slot_of),
        input_slots,
        output_slots,
        base,
        prep.partition,
        lay.copies,
        prep.subplans,
    )


def _prune(steps: list[Step], wanted: set[int]) -> list[Step]:
    """The steps the slots in ``wanted`` depend on, in their order (control-flow steps keep
    everything their subgraphs read: those are among their inputs)."""
    needed = set(wanted)
    kept: list[Step] = []
    for step in reversed(steps):
        if needed.intersection(step.outs):
            kept.append(step)
            needed.update(step.ins)
    kept.reverse()
    return kept


def build_plan(
    model: Model,
    graph: Graph,
    providers: list[ExecutionProvider],
    *,
    extra_inputs: Sequence[str] = (),
    outer_types: dict | None = None,
    session_options: Any = None,
) -> Plan:
    """Partition ``graph`` and its control-flow bodies, build their kernels and schedule it with
    every value on the host at the boundaries (no optimizer passes: a session runs those between
    partitioning and :func:`prepare`). ``extra_inputs`` are outer-scope names a subgraph reads
    (trailing plan inputs)."""
    parts = partition_model(model, providers, graph, outer_types=outer_types)
    prep = prepare(
        model, graph, providers, parts, extra_inputs=extra_inputs, session_options=session_options
    )
    return schedule(prep)


def _check_defined(graph, steps, slot_of, input_slots, output_slots, base) -> None:
    from .errors import InvalidGraph

    name_of = {v: k for k, v in slot_of.items()}
    defined = set(input_slots) | {slot_of[n] for n in graph.initializers} | {_NONE}
    defined |= {i for i, _ in enumerate(base) if base[i] is not None}
    for s in steps:
        for i in s.ins:
            if i not in defined:
                raise InvalidGraph(
                    f"{s.node.label()} reads '{name_of[i]}', which no node, graph input or "
                    f"initializer of graph '{graph.name}' (or an enclosing graph) defines. Fix the "
                    "model so that every input of a node is defined before the node."
                )
        defined.update(s.outs)
    for o in output_slots:
        if o not in defined:
            raise InvalidGraph(
                f"graph '{graph.name}' output '{name_of[o]}' is not produced by any node, input or "
                "initializer. Fix the model's outputs."
            )


def _copy_step(src: ExecutionProvider | None, dst: ExecutionProvider | None, i: int, o: int, node):
    """A step copying slot ``i`` from ``src``'s memory to ``dst``'s (None: the host) into slot
    ``o``, in the context of the run that executes it."""
    if src is not None and dst is not None:

        def fn(v):
            ctx = current_run()
            return dst.to_device(src.to_host(v, ctx), ctx)
    elif src is not None:

        def fn(v):
            return src.to_host(v, current_run())
    else:
        to_device = dst.to_device  # type: ignore[union-attr]

        def fn(v):
            return to_device(v, current_run())

    label_node = node or Node("Copy", [], [])
    who = (src.name if src else "host") + "->" + (dst.name if dst else "host")
    return Step(_copy_value(fn), (i,), (o,), False, (), label_node, who, "copy")


def _reuse_default(fn, default):
    """A copy that remembers its result for the initializer's own default value, so an overridable
    initializer nobody overrides is copied to the device once, not on every run."""
    memo: list = []

    def copy(v):
        if v is default:
            if not memo:
                memo.append(fn(v))
            return memo[0]
        return fn(v)

    return copy


def _copy_value(fn):
    def copy(v):
        if isinstance(v, list):
            return [fn(x) for x in v]
        return None if v is None else fn(v)

    return copy


def _assign_frees(steps: list[Step], keep: set[int]) -> None:
    """Clear each value's slot after the step that reads it last."""
    last_use: dict[int, int] = {}
    for k, s in enumerate(steps):
        for i in s.ins:
            last_use[i] = k
        for o in s.outs:
            last_use.setdefault(o, k)
    frees: dict[int, list[int]] = {}
    for slot_id, k in last_use.items():
        if slot_id in keep or slot_id == _NONE:
            continue
        frees.setdefault(k, []).append(slot_id)
    for k, s in enumerate(steps):
        s.frees = tuple(frees.get(k, ()))
