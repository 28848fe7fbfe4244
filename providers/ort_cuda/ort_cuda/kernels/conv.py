"""Convolutions: cuDNN through its Python frontend where it is installed, im2col + cuBLAS (the
shared array-API kernel run on cupy) everywhere else.

cuDNN path (``pip install ort-cuda[cudnn12]``): one cuDNN graph per (node, input shape): the
convolution, the bias and, for com.microsoft FusedConv, the activation fused into it; execution
plans chosen per ``cudnn_conv_algo_search``:

- ``EXHAUSTIVE`` (onnxruntime's default): every plan cuDNN's heuristics offer is built and timed
  once on the first run of that shape, and the fastest kept;
- ``HEURISTIC``: the heuristics' first plan (cuDNN's mode A);
- ``DEFAULT``: the fallback heuristics' first plan (what needs no tuning).

The chosen plan and its workspace are cached per shape for the session. ``cudnn_conv_use_max_
workspace=0`` limits plans to 32 MiB of workspace, ``cudnn_conv1d_pad_to_nc1d`` chooses how
1-D convolutions become 2-D ones ([N, C, 1, D] when set, [N, C, D, 1] otherwise),
``fuse_conv_bias=1`` adds the bias inside the cuDNN graph (else a separate add), and
``use_tf32=0`` deselects plans that compute float32 on tensor cores, as in onnxruntime. What cuDNN's path does not take (groups other than 1 or depthwise, float64,
activations it has no pointwise op for, missing cuDNN) runs as im2col + GEMM instead.

The cuDNN path needs a GPU and has not run on one in this repository's CI; the GPU check
(``providers/ort_cuda/gpu_check``) compares it with the CPU provider.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np
import ort_array

from ort_core.ops._window import Window
from ort_core.provider import KernelRegistry

from ._common import F16, F32, registry

#: the shared (array-API) kernels, asked for what the cuDNN path does not take
_shared = KernelRegistry("shared-for-cuda")
ort_array.register(_shared)

#: FusedConv activations cuDNN's frontend has as pointwise ops, and how to add each
_ACTIVATIONS = ("Relu", "Sigmoid", "Tanh", "LeakyRelu")
_SMALL_WORKSPACE = 32 << 20


@functools.lru_cache(maxsize=1)
def cudnn_module() -> Any:
    """cuDNN's Python frontend, or None when it is not installed (or cannot load)."""
    try:
        import cudnn
    except Exception:
        return None
    return cudnn


def cudnn_reason(info: Any) -> str | None:
    """Why the cuDNN path does not take this node (None: it does)."""
    dev = getattr(info.provider, "cuda", None)
    if dev is None or not dev.native:
        return "the device is a stand-in (no cuDNN)"
    if cudnn_module() is None:
        return "cuDNN's Python frontend is not installed (pip install ort-cuda[cudnn12])"
    dt = info.input_dtype(0)
    if dt not in (F16, F32):
        return f"cuDNN's path takes float16/float32, not {dt}"
    shape = info.input_shape(0)
    if shape is None or len(shape) not in (3, 4, 5):
        return "cuDNN's path takes 1-D, 2-D and 3-D convolutions of known rank"
    w = info.constant(1)
    group = int(info.attr("group", 1))
    if group != 1 and (w is None or w.shape[1] != 1):
        return "cuDNN's path takes group 1 and depthwise convolutions"
    if info.node.op_type == "FusedConv":
        act = info.attr("activation")
        act = act.decode() if isinstance(act, bytes) else act
        if act and act not in _ACTIVATIONS:
            return f"cuDNN's path has no pointwise {act}"
        if info.has_input(3):
            return "cuDNN's path does not add FusedConv's Z input"
    return None


def _delegating(op: str):
    """``limit``/``check`` that defer to the shared kernel when cuDNN does not take the node."""

    def limit(info: Any) -> str | None:
        if cudnn_reason(info) is None:
            return None
        kdef = _shared.lookup(info.node.domain, op, info.opset)
        if kdef is None:
            return f"no kernel for {op} at opset {info.opset}"
        d = kdef.decline(info)
        return None if d is None or d.invalid else d.reason

    def check(info: Any) -> str | None:
        kdef = _shared.lookup(info.node.domain, op, info.opset)
        return kdef.check_reason(info) if kdef is not None else None

    return limit, check


def _build(info: Any) -> Any:
    if cudnn_reason(info) is not None:
        return _shared.create(info)
    return CudnnConv(info)


for _op, _domain, _versions in (
    ("Conv", "", (1, 11, 22)),
    ("FusedConv", "com.microsoft", (1,)),
):
    _limit, _check = _delegating(_op)
    registry.builder(_op, _versions, domain=_domain, limit=_limit, check=_check)(_build)


class CudnnConv:
    """One Conv/FusedConv node on cuDNN: a built graph and plan per input shape."""

    def __init__(self, info: Any) -> None:
        self.dev = info.provider.cuda
        self.opts = info.provider.cuda_options
        attrs = info.attrs
        self.group = int(attrs.get("group", 1))
        self.attrs = attrs
        act = attrs.get("activation")
        self.activation = act.decode() if isinstance(act, bytes) else act
        self.act_params = list(attrs.get("activation_params", []) or [])
        self.has_bias = info.has_input(2)
        # an activation follows the bias, so with one the bias is always in the cuDNN graph
        self.bias_in_graph = self.has_bias and (self.opts.fuse_conv_bias or bool(self.activation))
        self._plans: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._handles: dict[int, Any] = {}

    def __call__(self, x: Any, w: Any, b: Any = None, *_: Any) -> Any:
        cp = self.dev.cp
        x1d = x.ndim == 3
        if x1d:  # 1-D as 2-D, as onnxruntime's cudnn_conv1d_pad_to_nc1d chooses
            axis = 2 if self.opts.cudnn_conv1d_pad_to_nc1d else 3
            x = cp.expand_dims(x, axis)
            w = cp.expand_dims(w, axis)
        key = (tuple(x.shape), tuple(w.shape), str(x.dtype))
        plan = self._plans.get(key)
        if plan is None:
            with self._lock:
                plan = self._plans.get(key) or self._plan(key, x, w, b)
                self._plans[key] = plan
        y = plan.run(self._handle(), x, w, b if self.bias_in_graph else None)
        if self.has_bias and not self.bias_in_graph:
            y += b.reshape((1, -1) + (1,) * (y.ndim - 2))
        return cp.squeeze(y, 2 if self.opts.cudnn_conv1d_pad_to_nc1d else 3) if x1d else y

    def _handle(self) -> Any:
        cudnn = cudnn_module()
        stream = self.dev.cp.cuda.get_current_stream()
        h = self._handles.get(self.dev.id)
        if h is None:
            h = self._handles[self.dev.id] = cudnn.create_handle()
        cudnn.set_stream(handle=h, stream=stream.ptr)
        return h

    def _plan(self, key: tuple, x: Any, w: Any, b: Any) -> _Plan:
        cudnn = cudnn_module()
        spatial = x.ndim - 2
        win = Window.from_attrs(self.attrs, tuple(x.shape[2:]), tuple(w.shape[2:]))
        io = cudnn.data_type.HALF if x.dtype == np.float16 else cudnn.data_type.FLOAT
        g = cudnn.pygraph(
            io_data_type=io,
            intermediate_data_type=cudnn.data_type.FLOAT,
            compute_data_type=cudnn.data_type.FLOAT,
            handle=self._handle(),
        )
        tx = g.tensor(name="X", dim=list(x.shape), stride=_strides(x), data_type=io)
        tw = g.tensor(name="W", dim=list(w.shape), stride=_strides(w), data_type=io)
        y = g.conv_fprop(
            image=tx,
            weight=tw,
            pre_padding=list(win.pads[:spatial]),
            post_padding=list(win.pads[spatial:]),
            stride=list(win.strides),
            dilation=list(win.dilations),
            compute_data_type=cudnn.data_type.FLOAT,
        )
        tb = None
        if self.bias_in_graph:
            bshape = [1, int(w.shape[0])] + [1] * spatial
            tb = g.tensor(name="B", dim=bshape, stride=_contiguous(bshape), data_type=io)
            y = g.bias(input=y, bias=tb)
        y = self._activation(g, y)
        y.set_output(True).set_data_type(io)
        g.validate()
        g.build_operation_graph()
        if io == cudnn.data_type.FLOAT and not self.opts.use_tf32:
            # use_tf32=0: no plan may round float32 inputs to TF32 on tensor cores
            g.deselect_numeric_notes([cudnn.numerical_note.TENSOR_CORE])
        search = self.opts.cudnn_conv_algo_search
        modes = [cudnn.heur_mode.FALLBACK] if search == "DEFAULT" else [cudnn.heur_mode.A]
        g.create_execution_plans(modes)
        g.check_support()
        out_shape = (int(x.shape[0]), int(w.shape[0]), *win.output_shape)
        return _Plan(self.dev, g, tx, tw, tb, y, out_shape, x.dtype, search, self.opts)

    def _activation(self, g: Any, y: Any) -> Any:
        act, p = self.activation, self.act_params
        if not act:
            return y
        if act == "Relu":
            return g.relu(input=y)
        if act == "Sigmoid":
            return g.sigmoid(input=y)
        if act == "Tanh":
            return g.tanh(input=y)
        return g.leaky_relu(input=y, negative_slope=float(p[0]) if p else 0.01)


class _Plan:
    """A built cuDNN graph for one shape, with the plan index the algorithm search chose."""

    def __init__(self, dev, g, tx, tw, tb, ty, out_shape, dtype, search, opts) -> None:
        cudnn = cudnn_module()
        self.dev, self.g, self.tx, self.tw, self.tb, self.ty = dev, g, tx, tw, tb, ty
        self.out_shape, self.dtype = out_shape, dtype
        limit = None if opts.cudnn_conv_use_max_workspace else _SMALL_WORKSPACE
        if search == "EXHAUSTIVE":
            g.build_plans(cudnn.build_plan_policy.ALL)
        else:
            g.build_plans(cudnn.build_plan_policy.HEURISTICS_CHOICE)
        count = int(g.get_execution_plan_count())
        sizes = [int(g.get_workspace_size_plan_at_index(i)) for i in range(count)]
        self.candidates = [i for i in range(count) if limit is None or sizes[i] <= limit]
        if not self.candidates:
            raise RuntimeError(
                "cuDNN has no convolution plan within 32 MiB of workspace for this shape; set "
                "cudnn_conv_use_max_workspace=1."
            )
        self.index = self.candidates[0] if search != "EXHAUSTIVE" else None
        self.sizes = sizes

    def run(self, handle: Any, x: Any, w: Any, b: Any) -> Any:
        cp = self.dev.cp
        y = cp.empty(self.out_shape, self.dtype)
        pack = {self.tx: x.data.ptr, self.tw: cp.ascontiguousarray(w).data.ptr, self.ty: y.data.ptr}
        if self.tb is not None:
            pack[self.tb] = cp.ascontiguousarray(b).data.ptr
        if self.index is None:
            self.index = self._fastest(handle, pack)
        ws = cp.empty(max(self.sizes[self.index], 1), cp.uint8)
        self.g.execute_plan_at_index(pack, ws.data.ptr, self.index, handle=handle)
        return y

    def _fastest(self, handle: Any, pack: dict) -> int:
        """EXHAUSTIVE: time each candidate plan once (after one untimed call) on this stream."""
        cp = self.dev.cp
        stream = cp.cuda.get_current_stream()
        ws = cp.empty(max(max(self.sizes[i] for i in self.candidates), 1), cp.uint8)
        best, best_ms = self.candidates[0], float("inf")
        for i in self.candidates:
            try:
                self.g.execute_plan_at_index(pack, ws.data.ptr, i, handle=handle)
                start, end = stream.record(), None
                self.g.execute_plan_at_index(pack, ws.data.ptr, i, handle=handle)
                end = stream.record()
                end.synchronize()
                ms = cp.cuda.get_elapsed_time(start, end)
            except Exception:
                continue
            if ms < best_ms:
                best, best_ms = i, ms
        return best


def _contiguous(shape: list[int]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= int(d)
    return out[::-1]


def _strides(a: Any) -> list[int]:
    return [int(s) // a.itemsize for s in a.strides]
