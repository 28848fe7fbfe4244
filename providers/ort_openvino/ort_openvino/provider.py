"""OpenVINOExecutionProvider: claims what OpenVINO supports, compiles each cluster with OpenVINO.

Options (onnxruntime's OpenVINO provider names them the same way):

``device_type``
    ``CPU`` (default), ``GPU``, ``GPU.1``, ``NPU``, or a virtual device such as ``AUTO``,
    ``AUTO:GPU,CPU``, ``HETERO:GPU,CPU``, ``MULTI:GPU,CPU``. Every device named must be present.
``precision``
    ``FP32`` (default on CPU), ``FP16`` (default elsewhere) or ``ACCURACY`` (keep the model's own
    precision): OpenVINO's inference precision hint.
``num_of_threads``
    Inference threads; defaults to the session's ``intra_op_num_threads`` when that is > 0.
``num_streams``
    Parallel execution streams (default 1).
``cache_dir``
    A folder where OpenVINO stores compiled models; later sessions load them instead of compiling.
``disable_dynamic_shapes``
    ``"false"`` (default): inputs with symbolic or unknown dims are compiled once with OpenVINO's
    dynamic shapes. ``"true"``: each distinct set of input shapes is compiled on first use, keeping
    the most recent :data:`~ort_openvino.kernel.SHAPE_CACHE_SIZE` compilations.
``min_cpu_work``
    ort-core's own (onnxruntime's provider has no such option): on the CPU device, a cluster of
    nodes OpenVINO supports (the whole model, or a part) whose work, known from static shapes,
    is below this many multiply-adds is left to the next provider (see
    :attr:`OpenVINOExecutionProvider.min_cpu_work`); a cluster with symbolic dims is claimed, and
    each run whose input shapes make it that small runs on the CPU provider instead
    (:class:`~ort_openvino.kernel.CompiledSubgraph`); a recurrent node whose every step is under
    :attr:`~OpenVINOExecutionProvider.min_cpu_step_work` is left to the next provider too.
    ``0`` claims every cluster and runs every run on OpenVINO. A session that sets
    ``session.disable_cpu_ep_fallback`` (no CPU provider unless listed) gets ``0`` unless it gives
    this option, and OpenVINO also claims the lone non-float nodes and small partial clusters it
    would otherwise leave to the next provider.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ort_core.device import OrtDevice, OrtDeviceVendorId
from ort_core.errors import InvalidArgument, ProviderNotAvailable
from ort_core.ir import Graph, Node, tensor_dtype, tensor_shape
from ort_core.provider import Availability, Claim, ExecutionProvider, GraphView, convex_clusters

VALID_OPTIONS = (
    "device_type",
    "precision",
    "num_of_threads",
    "num_streams",
    "cache_dir",
    "disable_dynamic_shapes",
    "min_cpu_work",
)
PRECISIONS = ("FP32", "FP16", "ACCURACY")
VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")
_MAX_CLUSTER_ROUNDS = 8
#: the default of :attr:`OpenVINOExecutionProvider.min_cpu_work` (multiply-adds)
MIN_CPU_WORK = 4_000_000

_core_lock = threading.Lock()
_core: Any = None
_probes: dict[str, Any] = {}


def get_core() -> Any:
    """The process-wide ``openvino.Core`` (created on first use; thread-safe)."""
    global _core
    with _core_lock:
        if _core is None:
            import openvino as ov

            _core = ov.Core()
        return _core


def _probe_for(device: str, query_device: str) -> Any:
    from .capability import CapabilityProbe

    with _core_lock:
        probe = _probes.get(query_device)
        if probe is None:
            probe = _probes[query_device] = CapabilityProbe(_core, device, query_device)
        return probe


def _parse_bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise InvalidArgument(
        f"OpenVINOExecutionProvider option {name}={value!r} is not a boolean: use true or false."
    )


def _parse_int(name: str, value: str, least: int = 1) -> int:
    """An integer option of at least ``least`` (1: positive, 0: non-negative)."""
    try:
        n = int(value)
    except ValueError:
        n = least - 1
    if n < least:
        kind = "positive" if least == 1 else "non-negative"
        raise InvalidArgument(
            f"OpenVINOExecutionProvider option {name}={value!r} must be a {kind} integer."
        )
    return n


class OpenVINOExecutionProvider(ExecutionProvider):
    """Runs the clusters of nodes that OpenVINO supports on an OpenVINO device (see module doc)."""

    name = "OpenVINOExecutionProvider"
    aliases = ("openvino",)

    #: Single-node clusters that produce no floating-point value (a lone Shape, Equal, ArgMax)
    #: cost more in OpenVINO call overhead (~50 us) than they compute; they are left to the next
    #: provider. Set to False to claim them anyway (the conformance tests of integer ops do).
    skip_trivial_clusters = True
    #: A cluster that is not the whole graph (other providers run the rest anyway) is left to the
    #: next provider when its estimated work (:func:`estimated_work`: multiply-adds of the
    #: matrix products and convolutions, one per element elsewhere) is below this: an OpenVINO call
    #: costs ~30 us, which a few cheap nodes (a Normalizer, a Scaler's Sub and MatMul on one row)
    #: do not repay. 0 claims every cluster.
    min_partial_work = 1_000_000
    #: On the CPU device, a cluster OpenVINO supports (the whole model or a part) is left to
    #: the next provider, on the same cores, when :func:`static_work` proves it smaller than
    #: this: on graphs this small OpenVINO's call and its per-node costs outweigh the work.
    #: Measured on a Zen 4, [OpenVINO, CPU] against the CPU provider alone, one and two threads,
    #: us: a 16-step GRU of 64 units (0.34M) 75 / 100 against 42 / 52, a bidirectional 64-unit
    #: LSTM over 32 steps (1.8M) 143 / 184 against 113 / 143; an LSTM of 128 units over 64 steps
    #: (15.5M) was even (727 / 697 against 696 / 766). Models whose batch or length is symbolic
    #: (most exported ones) are not proved small and are claimed; their compiled cluster then
    #: runs each run whose input shapes make it smaller than this on the CPU provider
    #: (``CompiledSubgraph._watch_small``): an OCR direction classifier of batch 1 (2.4M),
    #: 1.62x onnxruntime at two threads on OpenVINO, 0.77x on the CPU provider. The
    #: ``min_cpu_work`` option overrides it per session; 0 claims every cluster and keeps every
    #: run on OpenVINO. Other devices (GPU, NPU) claim them regardless.
    min_cpu_work = MIN_CPU_WORK
    #: On the CPU device (and while ``min_cpu_work`` is not 0), a recurrent node (LSTM, GRU,
    #: RNN) whose every step, known from static shapes, is under this many multiply-adds
    #: (:func:`step_work`) is left to the next provider whatever the steps add up to: OpenVINO
    #: pays about 1-2.5 us more per step than the CPU provider. Measured on a Zen 4, one
    #: recurrent node alone, CPU provider against [OpenVINO, CPU] at one thread, us: GRU of 128
    #: units over 64 steps of 80 inputs (80K a step) 301 against 422, LSTM of the same shape
    #: (106K) 262 against 300, LSTM of 256 units over 64 steps of 256 (524K) 1126 against 1285;
    #: from a batch of 8 OpenVINO's products win (an LSTM of 256 units, 128 inputs, 3.1M a
    #: step: 4423 against 2155).
    min_cpu_step_work = 1_000_000

    def __init__(self, options: dict[str, str] | None = None, session_options: Any = None) -> None:
        super().__init__(options, session_options)
        unknown = sorted(set(self.options) - set(VALID_OPTIONS))
        if unknown:
            raise InvalidArgument(
                f"Unknown OpenVINOExecutionProvider option(s) {unknown}. Valid options: "
                f"{', '.join(VALID_OPTIONS)}."
            )
        core = get_core()
        #: OpenVINO's name of the device (CPU, GPU.1, AUTO:GPU,CPU...)
        self.ov_device = self.options.get("device_type", "CPU").strip() or "CPU"
        present = list(core.available_devices)
        self.query_device = self._check_device(self.ov_device, present)
        self.device = _ort_device(self.query_device, present)
        base = self.query_device.split(":")[0].split(".")[0]
        default_precision = "FP32" if base == "CPU" else "FP16"
        precision = self.options.get("precision", default_precision).strip().upper()
        if precision not in PRECISIONS:
            raise InvalidArgument(
                f"OpenVINOExecutionProvider option precision={precision!r} is not one of "
                f"{', '.join(PRECISIONS)}."
            )
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if precision == "ACCURACY":
            config["EXECUTION_MODE_HINT"] = "ACCURACY"
        else:
            config["INFERENCE_PRECISION_HINT"] = {"FP32": "f32", "FP16": "f16"}[precision]
        threads = self.options.get("num_of_threads")
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = _parse_int("num_of_threads", threads)
        else:
            intra = int(getattr(session_options, "intra_op_num_threads", 0) or 0)
            if intra > 0:
                config["INFERENCE_NUM_THREADS"] = intra
        streams = self.options.get("num_streams", "1")
        config["NUM_STREAMS"] = _parse_int("num_streams", streams)
        cache_dir = self.options.get("cache_dir", "").strip()
        if cache_dir:
            config["CACHE_DIR"] = cache_dir
        self.config = config
        self.precision = precision
        self.dynamic_shapes = not _parse_bool(
            "disable_dynamic_shapes", self.options.get("disable_dynamic_shapes", "false")
        )
        least = self.options.get("min_cpu_work")
        if least is not None:
            self.min_cpu_work = _parse_int("min_cpu_work", least, least=0)
        flag = getattr(session_options, "_flag", None)
        if flag is not None and flag("session.disable_cpu_ep_fallback"):
            # no CPU provider after this one unless the session lists it: what this provider
            # leaves to "the next provider" for speed it claims (an explicit min_cpu_work stays)
            self.skip_trivial_clusters = False
            self.min_partial_work = 0
            if least is None:
                self.min_cpu_work = 0
        #: whether the device is the host's CPU, where the next provider runs on the same cores
        self.on_cpu = base == "CPU"
        self.probe = _probe_for(self.ov_device, self.query_device)
        #: overridable initializers seen while partitioning: name -> default value. A cluster
        #: compiles them as constants, used while a run passes these very objects.
        self.defaults: dict[str, Any] = {}

    @staticmethod
    def _check_device(device: str, present: list[str]) -> str:
        """The device name to query (virtual devices with an explicit list); raises
        ProviderNotAvailable naming the devices present when a requested one is missing."""

        def has(d: str) -> bool:
            d = d.strip().upper()
            return any(p.upper() == d or p.upper().startswith(d + ".") for p in present)

        listed = ", ".join(present) or "none"
        head, _, rest = device.partition(":")
        if head.upper() in VIRTUAL_DEVICES:
            targets = [t.strip() for t in rest.split(",") if t.strip()]
            missing = [t for t in targets if not has(t)]
            if missing or not present:
                raise ProviderNotAvailable(
                    f"OpenVINO has no {', '.join(missing) or 'device'} for device_type "
                    f"'{device}' (devices present: {listed})."
                )
            return f"{head.upper()}:{','.join(targets or present)}"
        if not has(device):
            raise ProviderNotAvailable(
                f"OpenVINO has no {device} device here (devices present: {listed}). Choose "
                "device_type among them."
            )
        return device.upper()

    @classmethod
    def availability(cls) -> Availability:
        try:
            import openvino  # noqa: F401
        except ImportError as e:
            return Availability(
                False, f"the openvino package cannot be imported ({e}): `pip install openvino`."
            )
        try:
            devices = list(get_core().available_devices)
        except Exception as e:  # OpenVINO's runtime failed to start: say why
            return Availability(False, f"OpenVINO's runtime cannot start: {e}")
        if not devices:
            return Availability(False, "OpenVINO finds no device on this machine.")
        return Availability(True)

    @classmethod
    def ep_devices(cls) -> list[dict[str, Any]]:
        """OpenVINO's devices (CPU, GPU.n, NPU), for ``ort_core.get_ep_devices()``, each with the
        ``device_type`` option that selects it."""
        out = []
        core = get_core()
        for name in core.available_devices:
            kind = name.split(".")[0].lower()
            if kind not in ("cpu", "gpu", "npu"):
                continue
            suffix = name.split(".")[1] if "." in name else "0"
            entry: dict[str, Any] = {
                "type": kind,
                "device_id": int(suffix) if suffix.isdigit() else 0,
                "ep_vendor": "Intel",
                "ep_options": {"device_type": name},
            }
            try:
                entry["metadata"] = {"name": str(core.get_property(name, "FULL_DEVICE_NAME"))}
            except Exception:  # an optional property: the device is listed without it
                entry["metadata"] = {}
            out.append(entry)
        return out

    def get_options(self) -> dict[str, str]:
        opts = {
            "device_type": self.ov_device,
            "precision": self.precision,
            "num_streams": str(self.config["NUM_STREAMS"]),
            "disable_dynamic_shapes": "false" if self.dynamic_shapes else "true",
            "min_cpu_work": str(self.min_cpu_work),
        }
        if "INFERENCE_NUM_THREADS" in self.config:
            opts["num_of_threads"] = str(self.config["INFERENCE_NUM_THREADS"])
        if "CACHE_DIR" in self.config:
            opts["cache_dir"] = self.config["CACHE_DIR"]
        return opts

    # -- partitioning ---------------------------------------------------------------------------
    def get_capability(self, view: GraphView) -> list[Claim]:
        graph = view.graph
        for name in graph.inputs:
            value = graph.initializers.get(name)
            if value is not None:
                self.defaults[name] = value
        nodes = view.nodes
        decisions = self.probe.decide(view, nodes)
        ok = []
        for node in nodes:
            reason = decisions[id(node)]
            if reason is None and self.on_cpu and self.min_cpu_work:
                reason = self._small_steps(node, view)
            if reason is None:
                ok.append(node)
            else:
                view.reject(node, self.name, reason)
        clusters = self._checked_clusters(view, ok)
        claims = []
        for cluster in clusters:
            if self.skip_trivial_clusters and _trivial(cluster, view):
                view.reject(
                    cluster[0],
                    self.name,
                    "a lone node producing no floating-point value costs more in OpenVINO call "
                    "overhead than it computes; left to the next provider",
                )
                continue
            if self.on_cpu and self.min_cpu_work:
                work = static_work(cluster, view)
                if work is not None and work < self.min_cpu_work:
                    for n in cluster:
                        view.reject(
                            n,
                            self.name,
                            f"its cluster of {len(cluster)} node(s) is {work:,.0f} "
                            f"multiply-adds, under {self.min_cpu_work:,} (min_cpu_work): on "
                            "the CPU, OpenVINO's call and per-node costs outweigh so little "
                            "work, so the next provider runs it on the same cores; set the "
                            "provider option min_cpu_work=0 to claim it",
                        )
                    continue
            if (
                self.min_partial_work
                and len(cluster) < len(graph.nodes)
                and estimated_work(cluster, view) < self.min_partial_work
            ):
                for n in cluster:
                    view.reject(
                        n,
                        self.name,
                        f"its cluster of {len(cluster)} node(s) is too little work (under "
                        f"{self.min_partial_work:,} multiply-adds) to repay an OpenVINO call "
                        "(~30 us) in a model other providers run parts of; left to the next "
                        "provider",
                    )
                continue
            claims.append(Claim.fused_group(cluster))
        return claims

    def _small_steps(self, node: Node, view: GraphView) -> str | None:
        """Why a recurrent node is left to the next provider on the CPU device: each of its
        steps, known from static shapes, is under :attr:`min_cpu_step_work`; else None."""
        work = step_work(node, view)
        if work is None or work >= self.min_cpu_step_work:
            return None
        return (
            f"each of its steps is {work:,.0f} multiply-adds, under {self.min_cpu_step_work:,} "
            "(min_cpu_step_work): OpenVINO's recurrent sequence costs more per step than the "
            "next provider's on the same cores; set the provider option min_cpu_work=0 to "
            "claim it"
        )

    def _checked_clusters(self, view: GraphView, ok: list[Node]) -> list[list[Node]]:
        """Convex clusters of ``ok`` that OpenVINO takes as wholes (see cluster_problem)."""
        from .capability import cluster_problem

        core = get_core()
        for _ in range(_MAX_CLUSTER_ROUNDS):
            dropped = False
            clusters = convex_clusters(view.graph, ok)
            for cluster in clusters:
                problem = cluster_problem(core, cluster, view)
                if problem is None:
                    continue
                bad, reason = problem
                for n in bad:
                    view.reject(n, self.name, reason)
                drop = {id(n) for n in bad}
                ok = [n for n in ok if id(n) not in drop]
                dropped = True
            if not dropped:
                return clusters
        return []

    def supports_op(self, domain: str, op_type: str, since: int) -> bool:
        return False  # no fusion pass should assume OpenVINO takes a com.microsoft op

    # -- compiling --------------------------------------------------------------------------------
    def compile(self, subgraph: Graph, opsets: dict[str, int]) -> Callable[..., Any]:
        from .kernel import CompiledSubgraph

        return CompiledSubgraph(
            get_core(),
            self.ov_device,
            dict(self.config),
            subgraph,
            opsets,
            self.dynamic_shapes,
            self.defaults,
            small_threads=self.options.get("num_of_threads") is None,
            min_work=self.min_cpu_work if self.on_cpu else 0,
            session_options=self.session_options,
        )


#: ops whose work the shapes of a cluster do not bound (loops over time, control flow)
_UNBOUNDED_WORK = frozenset(
    {"LSTM", "GRU", "RNN", "Loop", "Scan", "If", "Attention", "MultiHeadAttention"}
)
#: ops whose work is (output elements) x (the reduced length of their first input's last axis)
_MATMULS = frozenset({"MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "FusedMatMul"})
_CONVS = frozenset({"Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "FusedConv"})


def _elements(shape: tuple | None) -> int:
    """Elements of a shape, unknown or symbolic dims counted as 1 (a lower bound)."""
    if shape is None:
        return 1
    return int(np.prod([d if isinstance(d, int) and d > 0 else 1 for d in shape]))


def estimated_work(cluster: list[Node], view: GraphView) -> float:
    """A lower bound of a cluster's work: multiply-adds of matrix products and convolutions,
    one per output element for other ops, infinite for recurrent and control-flow ops."""
    total = 0
    for n in cluster:
        if n.op_type in _UNBOUNDED_WORK or n.subgraphs:
            return float("inf")
        out = _elements(tensor_shape(view.type_of(n.outputs[0]))) if n.outputs[0] else 1
        if n.op_type in _MATMULS and n.inputs:
            a = tensor_shape(view.type_of(n.inputs[0])) or ()
            axis = -2 if n.op_type == "Gemm" and n.attr("transA", 0) else -1
            total += out * _elements(a[axis:][:1] if len(a) >= -axis else None)
        elif n.op_type in _CONVS and len(n.inputs) > 1:
            w = tensor_shape(view.type_of(n.inputs[1 if n.op_type != "QLinearConv" else 3]))
            total += out * _elements(tuple(w[1:]) if w else None)
        else:
            total += out
    return total


#: recurrent ops and their gates per hidden unit
_RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _static(shape: tuple | None) -> tuple | None:
    """``shape`` where every dim is a known positive size, else None."""
    if shape is None or not all(isinstance(d, int) and d > 0 for d in shape):
        return None
    return tuple(shape)


def static_work(nodes: list[Node], view: GraphView) -> float | None:
    """The multiply-adds of a cluster's ``nodes`` as :func:`estimated_work` counts them, with a
    recurrent op's counted too (steps x entries x directions x gates x hidden units x (input
    width + hidden units)); None where a node's input or output shape is not static (the work
    could be any size) or a node loops (Loop, Scan, If, attention ops: their work is not bounded by shapes)."""
    total = 0.0
    for n in nodes:
        if n.subgraphs or (n.op_type in _UNBOUNDED_WORK and n.op_type not in _RECURRENT_GATES):
            return None
        if n.op_type in _RECURRENT_GATES:
            x = _static(tensor_shape(view.type_of(n.inputs[0])))
            each = step_work(n, view)
            if x is None or len(x) != 3 or each is None:
                return None
            total += (x[1] if n.attr("layout", 0) else x[0]) * each
            continue
        for v in (*n.inputs, *n.outputs):  # (a product's reduced length is an input's dim)
            if v and _static(tensor_shape(view.type_of(v))) is None:
                return None
        total += estimated_work([n], view)
    return total


def step_work(node: Node, view: GraphView) -> float | None:
    """The multiply-adds of one step of a recurrent node (entries x directions x gates x hidden
    units x (input width + hidden units)); None for another op or where its input's entries or
    width are not static."""
    gates = _RECURRENT_GATES.get(node.op_type)
    hidden = node.attr("hidden_size", 0) if gates else 0
    if not hidden or not node.inputs:
        return None
    x = tensor_shape(view.type_of(node.inputs[0]))
    if x is None or len(x) != 3:
        return None
    entries, width = (x[0] if node.attr("layout", 0) else x[1]), x[2]
    if not (isinstance(entries, int) and entries > 0 and isinstance(width, int) and width > 0):
        return None
    directions = 2 if node.attr("direction", "forward") == "bidirectional" else 1
    return entries * directions * gates * hidden * (width + hidden)


def _trivial(cluster: list[Node], view: GraphView) -> bool:
    if len(cluster) != 1:
        return False
    for o in cluster[0].outputs:
        dt = tensor_dtype(view.type_of(o)) if o else None
        if dt is not None and dt.kind == "f":
            return False
    return True


def _ort_device(query_device: str, present: list[str]) -> OrtDevice:
    """The OrtDevice OpenVINO computes on: the device named (the first of a virtual device's
    list; for a bare AUTO, the one AUTO prefers among those present: GPU, then NPU, then CPU).
    GPUs and NPUs are Intel's; the CPU is the host."""
    name = query_device.upper()
    if ":" in name:
        name = name.split(":", 1)[1].split(",")[0]
    elif name in ("AUTO", "MULTI", "HETERO"):
        order = [p.upper() for p in present]
        name = next(
            (p for k in ("GPU", "NPU", "CPU") for p in order if p.split(".")[0] == k), "CPU"
        )
    base, _, index = name.strip().partition(".")
    kind = {"GPU": "gpu", "NPU": "npu"}.get(base, "cpu")
    vendor = OrtDeviceVendorId.INTEL if kind != "cpu" else OrtDeviceVendorId.NONE
    return OrtDevice(kind=kind, vendor=vendor, id=int(index) if index.isdigit() else 0)
