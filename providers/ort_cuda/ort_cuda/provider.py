"""CUDAExecutionProvider: ONNX nodes on an NVIDIA GPU through cupy.

What runs where:
- tensors live in the GPU's memory as cupy arrays, allocated from one memory pool per device and
  memory settings (``device.py``);
- kernels: the provider's own (``kernels/``: cuBLAS GEMMs, cuDNN or im2col convolutions, CUDA C
  modules for TopK, NonMaxSuppression, Resize, scatter/gather, one-pass softmax and
  normalizations, attention), chains of elementwise ops fused into one generated kernel
  (``fusion.py``), and the shared array-API kernels of ``ort_array`` run on cupy for the rest;
- Shape and Size return host arrays, and the shape arithmetic computed from them stays on the
  CPU provider (as onnxruntime places it), so Reshape/Expand/Slice read their shape inputs
  without a device round trip;
- each run has its own stream (or the user's ``user_compute_stream``, or one stream for the
  provider with ``use_ep_level_unified_stream=1``), taken in ``on_run_start`` and kept in the run
  context; every kernel runs inside that stream, device and pool;
- ``enable_cuda_graph=1`` claims the whole graph as one compiled node that captures a CUDA graph
  after a warm-up run and replays it (``graphs.py``).

Options are onnxruntime's (``options.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ort_core.device import OrtDevice, OrtDeviceVendorId
from ort_core.errors import EPFail, InvalidArgument, ProviderNotAvailable
from ort_core.provider import Availability, Claim, KernelProvider, RunContext, current_run

from . import options as _options
from .gemm import GEMM_OPS, tf32
from .kernels import registry
from .kernels._common import NAME

__all__ = ["CUDAExecutionProvider", "RunStreams", "open_device"]


class RunStreams:
    """The streams of one run: ``compute`` (every kernel) and ``copy`` (host copies; the same
    stream unless ``do_copy_in_default_stream=0``), plus what must live until the run ends."""

    __slots__ = ("compute", "copy", "own", "keep")

    def __init__(self, compute: Any, copy: Any, own: bool) -> None:
        self.compute = compute
        self.copy = copy
        self.own = own  # the provider took ``compute`` for this run and gives it back
        self.keep: list[Any] = []


def open_device(opts: _options.CudaOptions) -> Any:
    """The :class:`~ort_cuda.device.CudaDevice` for these options (tests without a GPU replace
    this function to run the provider's host logic on a stand-in device)."""
    from .device import MemorySettings, get_device

    return get_device(opts.device_id, MemorySettings(opts.gpu_mem_limit, opts.arena_power_of_two))


@functools.lru_cache(maxsize=1)
def _probe() -> Availability:
    try:
        import cupy
    except ImportError as e:
        return Availability(
            False,
            f"cupy cannot be imported ({e}); install ort-core[cuda] (CUDA 12) or ort-core[cuda13].",
        )
    except Exception as e:  # a broken cupy install raises other errors at import
        return Availability(False, f"cupy fails to import: {type(e).__name__}: {e}")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return Availability(False, f"cupy cannot use CUDA on this machine: {e}.")
    if count == 0:
        return Availability(False, "cupy finds no CUDA device on this machine.")
    return Availability(True)


class CUDAExecutionProvider(KernelProvider):
    """Runs nodes on an NVIDIA GPU with cupy (see the module docstring)."""

    name = NAME
    aliases = ("cuda",)
    device = OrtDevice(kind="gpu", vendor=OrtDeviceVendorId.NVIDIA)
    device_name = "cuda"
    host_memory = False
    registry = registry

    def __init__(self, options: dict[str, str] | None = None, session_options: Any = None):
        super().__init__(options, session_options)
        self.cuda_options = _options.parse(self.options)
        avail = self.availability()
        if not avail:
            raise ProviderNotAvailable(avail.reason)
        opts = self.cuda_options
        self.cuda = open_device(opts)
        self.xp = self.cuda.xp
        self.allocator = self.cuda.pool
        self.device = OrtDevice(kind="gpu", vendor=OrtDeviceVendorId.NVIDIA, id=opts.device_id)
        self._user_stream = (
            self.cuda.external_stream(opts.user_compute_stream)
            if opts.has_user_compute_stream
            else None
        )
        self._unified = (
            self.cuda.take_stream()
            if opts.use_ep_level_unified_stream and self._user_stream is None
            else None
        )

    # -- availability and devices ----------------------------------------------------------
    @classmethod
    def availability(cls) -> Availability:
        """Available when cupy imports and the CUDA runtime finds a device; otherwise cupy's
        own reason (probed once per process)."""
        return _probe()

    @classmethod
    def ep_devices(cls) -> list[dict[str, Any]]:
        import cupy

        out = []
        for i in range(cupy.cuda.runtime.getDeviceCount()):
            p = cupy.cuda.runtime.getDeviceProperties(i)
            name = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
            out.append(
                {
                    "type": "gpu",
                    "vendor": "NVIDIA",
                    "vendor_id": int(OrtDeviceVendorId.NVIDIA),
                    "device_id": i,
                    "metadata": {
                        "name": name,
                        "compute_capability": f"{p['major']}.{p['minor']}",
                        "total_memory": str(p["totalGlobalMem"]),
                    },
                    "ep_options": {"device_id": str(i)},
                }
            )
        return out

    def get_options(self) -> dict[str, str]:
        return _options.as_strings(self.cuda_options)

    # -- capability --------------------------------------------------------------------------
    def get_capability(self, view: Any) -> list[Claim]:
        claims = super().get_capability(view)
        if self.cuda_options.enable_cuda_graph and view.graph is _top(view):
            from .graphs import whole_graph_claim

            return whole_graph_claim(self, view, claims)
        claims = _keep_shape_math_on_host(self, view, claims)
        return _fuse_elementwise(self, view, claims)

    def compile(self, subgraph: Any, opsets: dict[str, int]) -> Callable[..., Any]:
        if subgraph.name.startswith("cuda_graph"):
            from .graphs import CudaGraphRunner

            return CudaGraphRunner(self, subgraph, opsets)
        from .fusion import compile_chain

        return self._in_stream(compile_chain(subgraph, opsets, self.cuda), subgraph.name)

    def create_kernel(self, info: Any) -> Callable[..., Any]:
        fn = self.wrap_kernel(self.registry.create(info), info)
        return self._in_stream(fn, info.node.label())

    def wrap_kernel(self, fn: Callable[..., Any], info: Any) -> Callable[..., Any]:
        """A registry kernel as this provider runs it: GEMMs under the session's TF32 rule,
        bfloat16 outputs kept bfloat16 (also used by the CUDA-graph runner)."""
        node = info.node
        if (node.domain, node.op_type) in GEMM_OPS:
            fn = tf32(fn, self.cuda, self.cuda_options.use_tf32)
        return _keep_bfloat16(fn, info)

    def _in_stream(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        """``fn`` run inside the current run's compute stream, this device and its pool."""
        scope = self.cuda.scope

        def run(*args: Any) -> Any:
            ctx = current_run()
            rs = ctx.streams.get(NAME) if ctx is not None else None
            if rs is None:
                raise EPFail(f"{NAME}: {label} was called outside a run (no stream for it).")
            with scope(rs.compute):
                return fn(*args)

        run.__wrapped__ = fn  # type: ignore[attr-defined]
        return run

    # -- runs and streams --------------------------------------------------------------------
    def on_run_start(self, ctx: RunContext) -> None:
        if self._user_stream is not None:
            compute, own = self._user_stream, False
        elif self._unified is not None:
            compute, own = self._unified, False
        else:
            compute, own = self.cuda.take_stream(), True
        copy = compute if self.cuda_options.do_copy_in_default_stream else self.cuda.take_stream()
        ctx.streams[NAME] = RunStreams(compute, copy, own)

    def on_run_end(self, ctx: RunContext) -> None:
        rs = ctx.streams.pop(NAME, None)
        if rs is None:
            return
        rs.compute.synchronize()
        if rs.copy is not rs.compute:
            rs.copy.synchronize()
            self.cuda.give_stream(rs.copy)
        if rs.own:
            self.cuda.give_stream(rs.compute)
        rs.keep.clear()

    # -- copies ------------------------------------------------------------------------------
    def owns(self, value: Any) -> bool:
        return self.cuda.owns(value)

    def to_device(self, array: Any, ctx: RunContext | None = None) -> Any:
        """Copy a host array to the GPU: on the run's copy stream (the compute stream waits for
        it through an event when the two differ), or, outside runs, on the device's default
        stream, waited for before returning."""
        if self.cuda.owns(array):
            return array
        if isinstance(array, (np.generic, int, float, bool)):
            array = np.asarray(array)
        if not isinstance(array, np.ndarray):
            raise InvalidArgument(
                f"{NAME} copies numpy arrays to the GPU, not {type(array).__name__} (pass a cupy "
                "array, or an OrtValue on 'cuda', to use device memory directly)."
            )
        if array.dtype.kind in "OUS":
            raise InvalidArgument(
                f"{NAME} cannot hold tensors of strings; string tensors stay on the CPU provider."
            )
        rs = ctx.streams.get(NAME) if ctx is not None else None
        if rs is None:
            stream = self.cuda.default_stream
            out = self.cuda.to_device(array, stream)
            stream.synchronize()
            return out
        out = self.cuda.to_device(array, rs.copy)
        if rs.copy is not rs.compute:
            rs.compute.wait_event(rs.copy.record())
        return out

    def to_host(self, value: Any, ctx: RunContext | None = None) -> Any:
        """Copy a GPU array to a complete host array, after the work that produced it."""
        if value is None or isinstance(value, np.ndarray) or not self.cuda.owns(value):
            return value
        rs = ctx.streams.get(NAME) if ctx is not None else None
        if rs is None:
            return self.cuda.to_host(value, self.cuda.default_stream)
        if rs.copy is not rs.compute:
            rs.copy.wait_event(rs.compute.record())
        return self.cuda.to_host(value, rs.copy)

    def from_dlpack(self, producer: Any) -> Any:
        """A device array over a DLPack tensor on this GPU, sharing its memory (cupy's or
        torch's CUDA tensors through ``OrtValue.from_dlpack``)."""
        return self.cuda.xp.from_dlpack(producer)

    def from_data_ptr(self, ptr: int, dtype: np.dtype, dims: tuple[int, ...]) -> Any:
        """A device array over memory the caller owns on this GPU (IOBinding's
        ``bind_input(..., buffer_ptr)``/``bind_output``); the caller keeps it alive."""
        return self.cuda.at_address(ptr, dtype, dims)

    def release_free_memory(self) -> None:
        """Return the pool's free blocks to the driver (run option
        ``memory.enable_memory_arena_shrinkage=gpu:<id>``)."""
        self.cuda.pool.free_all_blocks()


def _keep_bfloat16(fn: Callable[..., Any], info: Any) -> Callable[..., Any]:
    """``fn``, with its bfloat16 outputs kept bfloat16. cupy holds bfloat16 but many of its
    ufuncs (``where``, comparisons' selections, ...) have no bfloat16 loop and return float32;
    onnxruntime's outputs keep the node's declared type, so such an output is cast back. Nodes
    without bfloat16 outputs get ``fn`` unchanged."""
    want = {i: info.output_dtype(i) for i in range(info.num_outputs)}
    want = {i: dt for i, dt in want.items() if dt is not None and dt.name == "bfloat16"}
    if not want:
        return fn

    def run(*args: Any) -> Any:
        out = fn(*args)
        if isinstance(out, tuple):
            return tuple(_as(o, want.get(i)) for i, o in enumerate(out))
        if isinstance(out, list):
            return [_as(o, want.get(i)) for i, o in enumerate(out)]
        return _as(out, want.get(0))

    run.__wrapped__ = fn  # type: ignore[attr-defined]
    return run


def _as(value: Any, dtype: Any) -> Any:
    if dtype is None or value is None or getattr(value, "dtype", dtype) == dtype:
        return value
    return value.astype(dtype)


def _top(view: Any) -> Any:
    """The view's graph when it is a main graph (control-flow bodies have outer types)."""
    return view.graph if not view.outer_types else None


def _keep_shape_math_on_host(ep: CUDAExecutionProvider, view: Any, claims: list[Claim]) -> list:
    """Leave to the next provider (the CPU) the nodes that compute only from host values: the
    outputs of Shape/Size (host outputs here) and of such nodes, with constants, when running
    them here would copy a host value up (a node that reads them as host inputs, such as
    ConstantOfShape, stays). onnxruntime
    places this shape arithmetic on the CPU too, so Reshape, Expand, Slice... read shapes that
    never visit the GPU."""
    single = {id(c.nodes[0]): c for c in claims if not c.fused and len(c.nodes) == 1}
    graph = view.graph
    host_values: set[str] = set()
    keep: list[Claim] = []
    moved: set[int] = set()
    for node in graph.nodes:
        claim = single.get(id(node))
        if claim is None:
            continue
        info = view.kernel_info(node, ep)
        outs_host = ep.host_outputs(info)
        if outs_host:
            host_values.update(node.outputs[k] for k in outs_host if k < len(node.outputs))
            continue
        ins = [x for x in node.inputs if x]
        read_on_host = ep.host_inputs(info)
        if (
            ins
            and not node.subgraphs
            # on the device, some host value would have to be copied up (not a host input)
            and any(x in host_values and k not in read_on_host for k, x in enumerate(node.inputs))
            and all(x in host_values or view.constant(x) is not None for x in ins)
        ):
            host_values.update(o for o in node.outputs if o)
            moved.add(id(node))
            view.reject(node, NAME, "shape arithmetic on host values stays on the CPU")
    for c in claims:
        if not (len(c.nodes) == 1 and id(c.nodes[0]) in moved):
            keep.append(c)
    return keep


def _fuse_elementwise(ep: CUDAExecutionProvider, view: Any, claims: list[Claim]) -> list[Claim]:
    """Chains of claimed elementwise nodes become one fused claim (one generated kernel)."""
    from .fusion import find_chains

    claimed = {id(c.nodes[0]) for c in claims if not c.fused and len(c.nodes) == 1}
    chains = find_chains(view, lambda n: id(n) in claimed)
    if not chains:
        return claims
    in_chain = {id(n) for chain in chains for n in chain}
    out = [c for c in claims if c.fused or id(c.nodes[0]) not in in_chain]
    out.extend(
        Claim.fused_group(chain, f"cuda_fused_{view.graph.name}_{k}")
        for k, chain in enumerate(chains)
    )
    return out
