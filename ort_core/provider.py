"""The execution-provider contract, the kernel registry and the helpers providers share.

A provider is a class deriving from :class:`ExecutionProvider`. Kernel providers (CPU, CUDA, OpenCL)
derive from :class:`KernelProvider` and get ``get_capability``/``create_kernel`` from a
:class:`KernelRegistry`; compiling providers (OpenVINO, CoreML) override ``get_capability`` to return
fused :class:`Claim` objects (grouped with :func:`convex_clusters`) and implement ``compile``.

Kernel calling convention: a kernel is a callable taking the node's inputs positionally (``None`` for
an omitted optional input), followed by the values of the node's implicit inputs (outer-scope names
read by its subgraphs, see :attr:`KernelInfo.implicit_inputs`). It returns one value when the op's
schema declares a single, non-variadic output, and a sequence of values otherwise (extra trailing
values are ignored). Values are numpy arrays on the host (strings as object arrays; bfloat16, float8
and int4 as ml_dtypes), lists for sequences, ``None`` for empty optionals, dicts for ONNX-ML maps.
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import ml_dtypes
import numpy as np
import onnx

from .errors import EPFail, PluginError
from .ir import Graph, Node, tensor_dtype, tensor_shape

if TYPE_CHECKING:
    from .session import SessionOptions

__all__ = [
    "Availability",
    "Claim",
    "Decline",
    "ExecutionProvider",
    "GraphView",
    "KernelInfo",
    "KernelProvider",
    "KernelRegistry",
    "KernelUnsupported",
    "convex_clusters",
    "schema_for",
    "is_multi_output",
    "FLOAT_TYPES",
    "INT_TYPES",
    "UINT_TYPES",
    "SIGNED_TYPES",
    "NUMERIC_TYPES",
    "ALL_TYPES",
]

# -- element-type sets kernels declare ---------------------------------------------------------
FLOAT_TYPES = frozenset(map(np.dtype, (np.float16, np.float32, np.float64, ml_dtypes.bfloat16)))
SIGNED_INT_TYPES = frozenset(map(np.dtype, (np.int8, np.int16, np.int32, np.int64)))
UINT_TYPES = frozenset(map(np.dtype, (np.uint8, np.uint16, np.uint32, np.uint64)))
INT_TYPES = SIGNED_INT_TYPES | UINT_TYPES
SIGNED_TYPES = FLOAT_TYPES | SIGNED_INT_TYPES
NUMERIC_TYPES = FLOAT_TYPES | INT_TYPES
ALL_TYPES = None  # no restriction


class KernelUnsupported(Exception):
    """Raised by a kernel builder at session creation when it cannot handle a node's attributes or
    types; the message says what is supported. The core turns it into a typed error or a fallback."""


@dataclass(frozen=True)
class Decline:
    """A provider's answer when it will not run a node (see :meth:`ExecutionProvider.decline`).

    ``kind`` says whose fault it is: ``"limit"`` (this provider cannot: unsupported element type,
    rank, attribute value it does not implement, missing kernel; the node goes to the next provider
    or, when nobody runs it, to its function body) or ``"invalid"`` (the node breaks the ONNX spec:
    an error naming node, op and opset, never a fallback)."""

    reason: str
    kind: str = "limit"

    @property
    def invalid(self) -> bool:
        return self.kind == "invalid"


@dataclass(frozen=True)
class Availability:
    """Whether a provider can run here, and if not, why (one sentence)."""

    available: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.available


@dataclass
class Claim:
    """A provider's proposal: run ``nodes`` itself, one kernel per node (``fused=False``, exactly one
    node) or as one compiled subgraph (``fused=True``)."""

    nodes: list[Node]
    fused: bool = False
    name: str = ""

    @classmethod
    def single(cls, node: Node) -> Claim:
        return cls([node], False)

    @classmethod
    def fused_group(cls, nodes: Iterable[Node], name: str = "") -> Claim:
        return cls(list(nodes), True, name)


def schema_for(op_type: str, domain: str, opset: int) -> onnx.defs.OpSchema | None:
    """The ONNX schema in force for an op at an opset, or None when onnx does not know the op."""
    try:
        return onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain=domain)
    except onnx.defs.SchemaError:
        return None


def is_multi_output(node: Node, opset: int) -> bool:
    """True when the kernel of ``node`` returns a sequence of outputs (see module docstring)."""
    schema = schema_for(node.op_type, node.domain, opset)
    if schema is None:
        return len(node.outputs) != 1
    outs = schema.outputs
    return len(outs) != 1 or outs[0].option == onnx.defs.OpSchema.FormalParameterOption.Variadic


class GraphView:
    """What a provider sees during partitioning: the graph, the opsets, value types, constants, and
    which nodes are still unassigned. Providers call :meth:`reject` to say why they leave a node."""

    def __init__(
        self, graph: Graph, opsets: dict[str, int], outer_types: dict[str, Any] | None = None
    ):
        self.graph = graph
        self.opsets = opsets
        self.outer_types = outer_types or {}
        self.reasons: dict[int, list[str]] = {}
        self.invalid: set[int] = set()

    @property
    def nodes(self) -> list[Node]:
        """Unassigned nodes, in topological order."""
        return [n for n in self.graph.nodes if n.provider is None]

    def opset(self, domain: str) -> int:
        domain = "" if domain == "ai.onnx" else domain
        return self.opsets.get(domain, 1 if domain else 0)

    def type_of(self, name: str):
        tp = self.graph.type_of(name)
        return tp if tp is not None else self.outer_types.get(name)

    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer that is not a graph input (so cannot be overridden)."""
        if name in self.graph.initializers and name not in self.graph.inputs:
            return self.graph.initializers[name]
        return None

    def kernel_info(self, node: Node, provider: ExecutionProvider | None = None) -> KernelInfo:
        return KernelInfo(
            node,
            self.opset(node.domain),
            [self.type_of(i) if i else None for i in node.inputs],
            [self.type_of(o) if o else None for o in node.outputs],
            {
                i: c
                for i, name in enumerate(node.inputs)
                if name and (c := self.constant(name)) is not None
            },
            provider=provider,
        )

    def reject(self, node: Node, provider: str, reason: str, expandable: bool = True) -> None:
        """Record why ``provider`` does not take ``node`` (shown in errors and assignment info).

        ``expandable=False`` says the node itself is at fault (an attribute value the op does not
        allow, say): the core then reports it rather than expanding the op's function body."""
        self.reasons.setdefault(id(node), []).append(f"{provider}: {reason}")
        if not expandable:
            self.invalid.add(id(node))


class KernelInfo:
    """Everything a kernel builder may read about its node at session creation."""

    __slots__ = (
        "node",
        "opset",
        "input_types",
        "output_types",
        "constants",
        "provider",
        "implicit_inputs",
        "subgraph_runners",
        "session_options",
    )

    def __init__(
        self,
        node: Node,
        opset: int,
        input_types: list,
        output_types: list,
        constants: dict[int, np.ndarray],
        *,
        provider: ExecutionProvider | None = None,
        implicit_inputs: Sequence[str] = (),
        subgraph_runners: dict[str, Any] | None = None,
        session_options: Any = None,
    ) -> None:
        self.node = node
        self.opset = opset
        self.input_types = input_types
        self.output_types = output_types
        self.constants = constants
        self.provider = provider
        self.implicit_inputs = list(implicit_inputs)
        self.subgraph_runners = subgraph_runners or {}
        self.session_options = session_options

    @property
    def attrs(self) -> dict[str, Any]:
        """Non-graph attributes as Python values."""
        return self.node.attr_values()

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attr(name, default)

    @property
    def num_inputs(self) -> int:
        return len(self.node.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.node.outputs)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def input_dtype(self, i: int) -> np.dtype | None:
        return tensor_dtype(self.input_types[i]) if i < len(self.input_types) else None

    def input_shape(self, i: int):
        return tensor_shape(self.input_types[i]) if i < len(self.input_types) else None

    def output_dtype(self, i: int) -> np.dtype | None:
        return tensor_dtype(self.output_types[i]) if i < len(self.output_types) else None

    def constant(self, i: int) -> np.ndarray | None:
        """The value of input ``i`` when it is known at session creation (a constant initializer)."""
        return self.constants.get(i)

    def subgraph(self, name: str):
        """The runner of a GRAPH attribute; call ``runner.bind(outer)(*inputs)`` per run."""
        return self.subgraph_runners[name]

    def split_implicit(self, args: Sequence[Any]) -> tuple[Sequence[Any], dict[str, Any]]:
        """Split a kernel's call arguments into explicit inputs and bound subgraphs."""
        n = len(self.node.inputs)
        outer = dict(zip(self.implicit_inputs, args[n:]))
        bound = {name: r.bind(outer) for name, r in self.subgraph_runners.items()}
        return args[:n], bound


# -- providers -------------------------------------------------------------------------------
class ExecutionProvider:
    """Base class of every execution provider. See the module docstring and docs/providers.md."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    device_type: ClassVar[str] = "cpu"
    #: True when the provider's tensors are host numpy arrays (no copies needed around it).
    host_memory: ClassVar[bool] = True
    #: The distribution that registered the provider (set by the plugin manager).
    distribution: ClassVar[str] = ""
    preferred_layout: ClassVar[str] = "NCHW"
    allocator: Any = None

    def __init__(
        self, options: dict[str, str] | None = None, session_options: SessionOptions | None = None
    ):
        self.options = {str(k): str(v) for k, v in (options or {}).items()}
        self.session_options = session_options

    @classmethod
    def availability(cls) -> Availability:
        """Whether the provider can run on this machine; override to probe the device."""
        return Availability(True)

    @classmethod
    def for_device(cls, device_id: int = 0) -> ExecutionProvider:
        """An instance bound to device ``device_id``; ``OrtValue.ortvalue_from_numpy(arr,
        device_type, device_id)`` uses it to place values. Device instances must share memory with
        sessions' instances of the same device (one context per device per process)."""
        return cls({"device_id": str(device_id)})

    def owns(self, value: Any) -> bool:
        """Whether ``value`` lives in this provider's memory (IOBinding asks before copying)."""
        return False

    def get_options(self) -> dict[str, str]:
        """The options in force, as onnxruntime's ``get_provider_options()`` reports them."""
        return dict(self.options)

    def get_capability(self, view: GraphView) -> list[Claim]:
        """Propose claims on ``view.nodes`` (the unassigned nodes). Default: none."""
        return []

    def create_kernel(self, info: KernelInfo) -> Callable[..., Any]:
        """Build the callable that runs one claimed node."""
        raise EPFail(f"{self.name} claimed {info.node.label()} but cannot create a kernel for it.")

    def compile(self, subgraph: Graph, opsets: dict[str, int]) -> Callable[..., Any]:
        """Compile a fused claim. The callable takes ``subgraph.inputs`` positionally and returns
        a sequence with one value per ``subgraph.outputs``."""
        raise EPFail(f"{self.name} made a fused claim but does not implement compile().")

    def supports_op(self, domain: str, op_type: str, since: int) -> bool:
        """Whether this provider has any implementation of ``op_type`` (a cheap first question
        fusion passes ask before they build a fused node; :meth:`decline` decides)."""
        return False

    def decline(self, info: KernelInfo) -> Decline | None:
        """THE check: why this provider would not run ``info.node`` (a :class:`Decline` with its
        kind), or None when it would. The partitioner, every provider-scoped fusion (before it
        rewrites) and kernel creation ask it. Default: decline (limit) unless :meth:`supports_op`."""
        node = info.node
        if self.supports_op(node.domain, node.op_type, info.opset):
            return None
        return Decline(f"{self.name} does not run {node.domain or 'ai.onnx'}::{node.op_type}")

    def host_inputs(self, info: KernelInfo) -> frozenset[int]:
        """Indices of a node's inputs its kernel wants in host memory (shapes, axes...) even
        though the provider's tensors live on a device. Only asked of non-host providers."""
        return frozenset()

    def to_device(self, array: Any) -> Any:
        """Copy a host numpy array to this provider's memory."""
        return array

    def to_host(self, value: Any) -> Any:
        """Copy a value in this provider's memory to a host numpy array."""
        return value

    def on_run_start(self) -> None:
        """Called before each run."""

    def on_run_end(self) -> None:
        """Called after each run."""


@dataclass
class KernelDef:
    """One registered kernel: its key and how to build it."""

    domain: str
    op_type: str
    since: int
    build: Callable[[KernelInfo], Callable[..., Any]]
    dtypes: dict[int, frozenset[np.dtype]] = field(default_factory=dict)
    attributes: frozenset[str] | None = None  # accepted attribute names (None: any)
    check: Callable[[KernelInfo], str | None] | None = None  # the node is invalid: why
    limit: Callable[[KernelInfo], str | None] | None = None  # this kernel cannot: why
    source: str = ""
    host_inputs: frozenset[int] = frozenset()

    def unsupported_reason(self, info: KernelInfo) -> str | None:
        """Why this kernel cannot run the node, or None when it can."""
        d = self.decline(info)
        return d.reason if d is not None else None

    def decline(self, info: KernelInfo) -> Decline | None:
        """Element types, attribute names and ``limit`` are this kernel's limits; ``check`` finds
        the node itself invalid."""
        reason = self.dtype_reason(info) or self.attribute_reason(info)
        if reason is None and self.limit is not None:
            reason = self.limit(info)
        if reason is not None:
            return Decline(reason, "limit")
        reason = self.check_reason(info)
        return Decline(reason, "invalid") if reason is not None else None

    def dtype_reason(self, info: KernelInfo) -> str | None:
        """Why the node's input element types are not supported, or None."""
        for i, allowed in self.dtypes.items():
            dt = info.input_dtype(i) if i < info.num_inputs and info.node.inputs[i] else None
            if dt is not None and dt not in allowed:
                names = ", ".join(sorted(str(d) for d in allowed))
                return f"input {i} has element type {dt}; the kernel supports {names}"
        return None

    def attribute_reason(self, info: KernelInfo) -> str | None:
        """Why the kernel does not accept the node's attributes (an attribute it does not know)."""
        if self.attributes is not None:
            extra = set(info.node.attributes) - self.attributes - set(info.node.subgraphs)
            if extra:
                return f"attribute(s) {sorted(extra)} not supported (supported: {sorted(self.attributes)})"
        return None

    def check_reason(self, info: KernelInfo) -> str | None:
        """What the kernel's ``check`` finds wrong with the node (attribute values...), or None."""
        return self.check(info) if self.check is not None else None


def _normalize_dtypes(dtypes: Any) -> dict[int, frozenset[np.dtype]]:
    if dtypes is None:
        return {}
    if isinstance(dtypes, dict):
        return {int(k): frozenset(np.dtype(d) for d in v) for k, v in dtypes.items()}
    return {0: frozenset(np.dtype(d) for d in dtypes)}


class KernelRegistry:
    """Kernels keyed by (domain, op_type, since-version), with the input element types they accept.

    The highest since-version not above the node's opset wins. Two styles of registration:

    ``@registry.kernel("HardSigmoid", since=6, dtypes=FLOAT_TYPES)`` on a function taking the inputs
    positionally and the attributes as keyword arguments with ONNX's defaults in the signature;
    GRAPH attributes arrive as bound subgraphs callable as ``body(*inputs) -> list``.

    ``@registry.builder("Conv", since=11)`` on ``build(info: KernelInfo) -> callable(*inputs)`` for
    kernels that do work once at session creation (parse attributes, prepack weights).
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._defs: dict[tuple[str, str], list[KernelDef]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._defs.values())

    def keys(self) -> list[tuple[str, str, int]]:
        return sorted((d.domain, d.op_type, d.since) for v in self._defs.values() for d in v)

    def ops(self) -> set[tuple[str, str]]:
        return set(self._defs)

    def add(self, kdef: KernelDef) -> None:
        key = (kdef.domain, kdef.op_type)
        defs = self._defs.setdefault(key, [])
        for d in defs:
            if d.since == kdef.since:
                raise PluginError(
                    f"kernel registry {self.name!r}: {kdef.domain or 'ai.onnx'}::{kdef.op_type} "
                    f"since {kdef.since} registered twice ({d.source} and {kdef.source}). Remove one "
                    "or give it another since-version."
                )
        defs.append(kdef)
        defs.sort(key=lambda d: d.since)

    def kernel(
        self,
        op_type: str,
        since: int | Iterable[int] = 1,
        *,
        domain: str = "",
        dtypes: Any = None,
        check: Callable[[KernelInfo], str | None] | None = None,
        limit: Callable[[KernelInfo], str | None] | None = None,
        host_inputs: Collection[int] = (),
    ) -> Callable[[Callable], Callable]:
        """Register a plain kernel function (inputs positional, attributes as keywords).

        ``check(info)`` says why a node is invalid (an error); ``limit(info)`` why this kernel
        cannot run a valid node (rank, sizes, device features: the node falls back).
        ``host_inputs`` lists inputs a device provider's kernel wants as host numpy arrays."""

        def deco(fn: Callable) -> Callable:
            accepted, var_kw = _keyword_params(fn)
            for s in _as_versions(since):
                self.add(
                    KernelDef(
                        domain,
                        op_type,
                        s,
                        _function_builder(fn, accepted),
                        _normalize_dtypes(dtypes),
                        None if var_kw else frozenset(accepted),
                        check,
                        limit,
                        f"{fn.__module__}.{fn.__qualname__}",
                        frozenset(host_inputs),
                    )
                )
            return fn

        return deco

    def builder(
        self,
        op_type: str,
        since: int | Iterable[int] = 1,
        *,
        domain: str = "",
        dtypes: Any = None,
        attributes: Collection[str] | None = None,
        check: Callable[[KernelInfo], str | None] | None = None,
        limit: Callable[[KernelInfo], str | None] | None = None,
        host_inputs: Collection[int] = (),
    ) -> Callable[[Callable], Callable]:
        """Register a kernel builder ``build(info) -> callable`` (``check``/``limit`` as in
        :meth:`kernel`)."""

        def deco(fn: Callable) -> Callable:
            for s in _as_versions(since):
                self.add(
                    KernelDef(
                        domain,
                        op_type,
                        s,
                        fn,
                        _normalize_dtypes(dtypes),
                        frozenset(attributes) if attributes is not None else None,
                        check,
                        limit,
                        f"{fn.__module__}.{fn.__qualname__}",
                        frozenset(host_inputs),
                    )
                )
            return fn

        return deco

    def lookup(self, domain: str, op_type: str, opset: int) -> KernelDef | None:
        """The kernel with the highest since-version not above ``opset``, or None."""
        defs = self._defs.get(("" if domain == "ai.onnx" else domain, op_type))
        if not defs:
            return None
        best = None
        for d in defs:
            if d.since <= opset:
                best = d
        return best

    def unsupported_reason(self, info: KernelInfo) -> str | None:
        """Why no kernel of this registry runs the node, or None when one does."""
        d = self.decline(info)
        return d.reason if d is not None else None

    def decline(self, info: KernelInfo) -> Decline | None:
        """Why no kernel of this registry runs the node (no kernel is a limit), or None."""
        node = info.node
        kdef = self.lookup(node.domain, node.op_type, info.opset)
        if kdef is None:
            defs = self._defs.get((node.domain, node.op_type))
            if not defs:
                return Decline(f"no kernel for {node.domain or 'ai.onnx'}::{node.op_type}")
            return Decline(
                f"no kernel for {node.op_type} at opset {info.opset} (kernels exist since "
                f"{', '.join(str(d.since) for d in defs)})"
            )
        return kdef.decline(info)

    def create(self, info: KernelInfo) -> Callable[..., Any]:
        """Build the kernel for a node (raises KernelUnsupported when it cannot)."""
        kdef = self.lookup(info.node.domain, info.node.op_type, info.opset)
        if kdef is None:
            raise KernelUnsupported(self.unsupported_reason(info) or "no kernel")
        return kdef.build(info)


def _as_versions(since: int | Iterable[int]) -> list[int]:
    return [since] if isinstance(since, int) else list(since)


def _keyword_params(fn: Callable) -> tuple[list[str], bool]:
    """Attribute names a kernel function accepts (keyword parameters), and whether it takes **kw."""
    names: list[str] = []
    var_kw = False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is p.KEYWORD_ONLY or (
            p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty
        ):
            names.append(p.name.rstrip("_") if keyword.iskeyword(p.name.rstrip("_")) else p.name)
    return names, var_kw


def _function_builder(fn: Callable, accepted: list[str]) -> Callable[[KernelInfo], Callable]:
    """Make a builder that binds a node's attributes to a plain kernel function."""
    rename = {n: (n + "_" if keyword.iskeyword(n) else n) for n in accepted}

    def build(info: KernelInfo) -> Callable[..., Any]:
        kwargs = {rename.get(k, k): v for k, v in info.attrs.items()}
        if not info.subgraph_runners:
            if not kwargs:
                return fn
            return _bind(fn, kwargs)
        n = len(info.node.inputs)
        implicit = info.implicit_inputs
        runners = info.subgraph_runners

        def run_with_subgraphs(*args: Any) -> Any:
            outer = dict(zip(implicit, args[n:]))
            bound = {name: r.bind(outer) for name, r in runners.items()}
            return fn(*args[:n], **kwargs, **bound)

        return run_with_subgraphs

    return build


def _bind(fn: Callable, kwargs: dict[str, Any]) -> Callable[..., Any]:
    def bound(*args: Any) -> Any:
        return fn(*args, **kwargs)

    return bound


class KernelProvider(ExecutionProvider):
    """A provider whose capability is its :class:`KernelRegistry`: one claim per node it has a
    kernel for, given the node's opset, input element types and attributes."""

    registry: ClassVar[KernelRegistry]

    def get_capability(self, view: GraphView) -> list[Claim]:
        claims = []
        for node in view.nodes:
            d = self.decline(view.kernel_info(node, self))
            if d is not None:  # a limit falls back (next provider, function body); invalid: error
                view.reject(node, self.name, d.reason, expandable=not d.invalid)
                continue
            claims.append(Claim.single(node))
        return claims

    def decline(self, info: KernelInfo) -> Decline | None:
        return self.registry.decline(info)

    def create_kernel(self, info: KernelInfo) -> Callable[..., Any]:
        return self.registry.create(info)

    def host_inputs(self, info: KernelInfo) -> frozenset[int]:
        kdef = self.registry.lookup(info.node.domain, info.node.op_type, info.opset)
        return kdef.host_inputs if kdef is not None else frozenset()

    def supports_op(self, domain: str, op_type: str, since: int) -> bool:
        return self.registry.lookup(domain, op_type, since) is not None


# -- helpers for compiling providers -------------------------------------------------------------
def convex_clusters(graph: Graph, supported: Iterable[Node]) -> list[list[Node]]:
    """Group ``supported`` nodes into maximal clusters that can each be fused without a cycle.

    Nodes are visited in topological order. A supported node joins the cluster of a supported
    producer unless some other path reaches it from that cluster through a node outside the
    cluster (fusing would then make the cluster depend on itself); clusters that a node connects are
    merged under the same rule. Each cluster is returned in topological order.
    """
    from .ir import node_reads

    order = {id(n): i for i, n in enumerate(graph.nodes)}
    sup = {id(n) for n in supported}
    producers = graph.producers()
    parent: dict[int, int] = {}

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    cluster_of: dict[int, int] = {}  # node id -> cluster id (pre-find)
    anc: dict[int, set[int]] = {}  # node id -> clusters it depends on (itself included)
    reach: dict[int, set[int]] = {}  # cluster -> clusters it depends on through outside nodes
    members: dict[int, list[Node]] = {}

    def roots(s: set[int]) -> set[int]:
        return {find(c) for c in s}

    for n in graph.nodes:
        preds = [producers[x] for x in dict.fromkeys(node_reads(n)) if x in producers]
        ancestors: set[int] = set()
        for p in preds:
            ancestors |= anc[id(p)]
        if id(n) in sup:
            cands = []
            for p in preds:
                if id(p) in cluster_of:
                    c = find(cluster_of[id(p)])
                    if c in cands:
                        continue
                    ok = all(
                        c not in roots(anc[id(q)])
                        for q in preds
                        if id(q) not in cluster_of or find(cluster_of[id(q)]) != c
                    )
                    if ok:
                        cands.append(c)
            if cands:
                target = cands[0]
                for c in cands[1:]:
                    if target in roots(reach[c]) or c in roots(reach[target]):
                        continue
                    parent[c] = target
                    members[target].extend(members.pop(c))
                    reach[target] = roots(reach[target] | reach.pop(c)) - {target}
            else:
                target = len(parent)
                parent[target] = target
                members[target] = []
                reach[target] = set()
            cluster_of[id(n)] = target
            members[target].append(n)
            for q in preds:
                qc = find(cluster_of[id(q)]) if id(q) in cluster_of else None
                if qc != target:
                    reach[target] |= roots(anc[id(q)]) - {qc, target}
            ancestors.add(target)
        anc[id(n)] = ancestors
    result = [sorted(ms, key=lambda m: order[id(m)]) for ms in members.values() if ms]
    result.sort(key=lambda c: order[id(c[0])])
    return result
