"""The execution-provider contract: the base class, a provider's answers (:class:`Claim`,
:class:`Decline`, :class:`Availability`) and the error a kernel builder raises."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import EPFail
from ..ir import Graph, Node
from .view import GraphView, KernelInfo

if TYPE_CHECKING:
    from ..options import SessionOptions


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


class ExecutionProvider:
    """Base class of every execution provider. See the package docstring and docs/provider-authors.md."""

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
