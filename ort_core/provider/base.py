"""The execution-provider contract: the base class, a provider's answers (:class:`Claim`,
:class:`Decline`, :class:`Availability`) and the error a kernel builder raises."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..device import OrtDevice, OrtDeviceMemoryType
from ..errors import EPFail, PluginError
from ..ir import Graph, Node
from .context import RunContext
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


_HOST = OrtDevice(kind="cpu")


class ExecutionProvider:
    """Base class of every execution provider. See the package docstring and docs/provider-authors.md.

    Devices are typed: ``device`` is the :class:`~ort_core.device.OrtDevice` the provider computes
    on (kind cpu/gpu/npu, PCI vendor, index, memory type). The class value says what the provider
    targets before it is configured; an instance sets ``self.device`` to the device it opened (the
    OpenCL provider on a GPU is ``OrtDevice(kind="gpu", vendor=..., id=...)``, OpenVINO with
    ``device_type=GPU`` too). ``host_memory`` says where its tensors live: True, numpy arrays on the
    host (OpenVINO, whatever its device); False, the provider's own arrays in ``device``'s memory,
    which the core copies with :meth:`to_device`/:meth:`to_host`. ``device_name`` is the name users
    give that memory in ``OrtValue.ortvalue_from_numpy(array, device_name, device_id)`` and
    ``IOBinding.bind_output(name, device_name)`` ("cuda", "opencl"; onnxruntime's spelling where it
    has one).
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: the device the provider computes on (instances replace it with the device they opened)
    device: OrtDevice = _HOST
    #: the name of the provider's memory in OrtValue and IOBinding calls ("cpu": host memory)
    device_name: ClassVar[str] = "cpu"
    #: True when the provider's tensors are host numpy arrays (no copies needed around it).
    host_memory: ClassVar[bool] = True
    #: the array-API namespace of the provider's tensors (e.g. cupy's), where shared kernels
    #: (``ort_array``) create arrays that no input determines; None: numpy on the host
    xp: Any = None
    #: The distribution that registered the provider (set by the plugin manager).
    distribution: ClassVar[str] = ""
    preferred_layout: ClassVar[str] = "NCHW"
    allocator: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "device_type" in cls.__dict__:
            raise PluginError(
                f"{cls.__name__} declares device_type, which the provider contract replaced: "
                "declare device = OrtDevice(kind=..., vendor=..., id=...) for the hardware and "
                "device_name for the name users give its memory (see docs/provider-authors.md)."
            )
        if not isinstance(cls.__dict__.get("device", _HOST), OrtDevice):
            raise PluginError(
                f"{cls.__name__}.device must be an ort_core.OrtDevice, got "
                f"{type(cls.__dict__['device']).__name__}."
            )

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
    def devices(cls) -> list[OrtDevice]:
        """The devices this provider can run on here (``get_device()`` asks): those its
        ``ep_devices()`` lists (``type``, ``vendor_id``, ``device_id`` of each) when it has that
        classmethod, else its class ``device``; none when it is unavailable."""
        if not cls.availability():
            return []
        described = getattr(cls, "ep_devices", None)
        if not callable(described):
            return [cls.device]
        out = []
        for e in described():
            kind = str(e.get("type", "cpu")).lower()
            out.append(
                OrtDevice(
                    kind=kind if kind in ("cpu", "gpu", "npu", "fpga") else "gpu",
                    vendor=int(e.get("vendor_id", 0)),
                    id=int(e.get("device_id", 0)),
                )
            )
        return out

    @property
    def memory_device(self) -> OrtDevice:
        """Where this provider's tensors live: the host for host-memory providers, else
        ``device`` with its default memory type."""
        if self.host_memory:
            return _HOST
        d = self.device
        if d.device_mem_type() == OrtDeviceMemoryType.DEFAULT:
            return d
        return OrtDevice(
            d.device_type(), OrtDeviceMemoryType.DEFAULT, d.device_vendor_id(), d.device_id()
        )

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

    def host_outputs(self, info: KernelInfo) -> frozenset[int]:
        """Indices of a node's outputs its kernel returns as host numpy arrays although the
        provider's tensors live on a device: Shape and Size, whose values only the host needs
        (onnxruntime's CPU output memory type). The planner then places no copy for consumers
        that read them on the host. Only asked of non-host providers."""
        return frozenset()

    def to_device(self, array: Any, ctx: RunContext | None = None) -> Any:
        """Copy a host numpy array to this provider's memory (on ``ctx``'s stream when the copy
        belongs to a run; None for copies outside runs: OrtValue creation, constants at session
        creation)."""
        return array

    def to_host(self, value: Any, ctx: RunContext | None = None) -> Any:
        """Copy a value in this provider's memory to a host numpy array (see :meth:`to_device`);
        the host array must be complete when this returns."""
        return value

    def on_run_start(self, ctx: RunContext) -> None:
        """Called before each run, on the thread that runs it: take per-run resources (a stream)
        and keep them in ``ctx.streams[self.name]``; never on ``self`` (runs may overlap)."""

    def wants_run_hooks(self) -> bool:
        """Whether this session's runs need :meth:`on_run_start` and :meth:`on_run_end`, asked
        once when the session is created (its kernels made); a provider whose hooks have
        nothing to do for this session returns False and its runs skip the calls."""
        return True

    def on_run_end(self, ctx: RunContext) -> None:
        """Called after each run (also a failed one): wait for ``ctx``'s work, release what
        :meth:`on_run_start` took."""
