"""A fused cluster compiled with OpenVINO: the callable the core runs for it.

The cluster becomes an ONNX model (its inputs keep their types; symbolic or unknown dims become
OpenVINO dynamic dims), OpenVINO's ONNX frontend reads it and the device compiles it once per
session, so one compilation serves every batch size or sequence length.

Two cases compile on first use instead, once per distinct key, keeping the most recent
:data:`SHAPE_CACHE_SIZE` compilations:

- ``disable_dynamic_shapes``: the key is the input shapes; each compilation is fully static.
- the device cannot compile the dynamic model (for example a convolution whose weights are computed
  from a shape tensor the graph takes as an input, as in old models whose initializers are also
  inputs): the key is the input shapes plus the values of the small integer inputs, which are baked
  into the model as constants, so OpenVINO folds what depends on them.

Inputs with a known default (overridable initializers, which old models use for their weights and
the shapes their weights are computed from) are compiled as constants, so OpenVINO folds and
prepacks them: a run whose inputs are those very default objects (the session passes them when the
feed does not override them) uses that compilation, found by an identity check per input. A run
that overrides one takes the general path above, compiled on first need.

Each thread that runs the session gets its own infer request, so runs never share state. Outputs
come back as numpy arrays with exactly the ONNX element types of the cluster's outputs.

Two kinds of run do not go to OpenVINO but to a session of the cluster on the CPU provider alone,
made on first need with the session's options:

- a run that feeds a tensor with a zero-sized dimension (a LoRA model's empty default adapter
  weights, an empty batch): OpenVINO's kernels leave such results uninitialized;
- on the CPU device, a run whose input shapes make a cluster with dynamic dims smaller than the
  provider's ``min_cpu_work`` (its work decided once per distinct shapes, from OpenVINO's model
  of the cluster for them or, far from the threshold, the last such shapes' work scaled by the
  inputs' elements): on graphs this small OpenVINO's call and per-node costs outweigh the
  work, and the CPU provider runs on the same cores (see ``CompiledSubgraph._watch_small``).
"""

from __future__ import annotations

import math
import operator
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import numpy as np
import onnx
import openvino as ov
from onnx import helper, numpy_helper
from openvino._pyopenvino import InferRequest as _RawRequest  # infer without Python dispatch

from ort_core import logs
from ort_core.errors import EPFail
from ort_core.ir import Graph, graph_to_proto, tensor_dtype

from .capability import short_message

__all__ = ["CompiledSubgraph", "SHAPE_CACHE_SIZE", "subgraph_model"]

#: How many compilations a cluster compiled per input shapes (or baked values) keeps.
SHAPE_CACHE_SIZE = 8
#: Integer inputs up to this many elements are baked as constants when specializing.
MAX_BAKED_ELEMENTS = 64
#: A cluster with dynamic input dims and at most this many bytes of weights is run on the CPU
#: provider for the input shapes that make it smaller than ``min_work`` (see
#: CompiledSubgraph._watch_small); a larger one always runs on OpenVINO (the CPU provider's
#: session would hold its weights a second time).
HOST_WEIGHT_BYTES = 16 << 20
#: times a cluster reads OpenVINO's model of itself for given input shapes to work out their
#: work (CompiledSubgraph._work_of)
WORK_READS = 8


#: multiply-adds (one per element for ops that are not products) under which a compilation runs
#: on one thread where the thread count came from the session: OpenVINO splits every node
#: among its threads, and on graphs this small the hand-offs cost more than they share. At
#: 2 threads against 1 (interleaved runs, onnxruntime in the same process): a bidirectional
#: LSTM of 64 units over 32 steps (1.9M) took 1.45-1.5x the time, a 32-step Loop of a small
#: RNN cell (0.8M) 1.3-1.5x, a GRU of 64 units over 16 steps (0.3M) 1.3-1.4x, an OCR
#: direction classifier (2.4M; its batch is dynamic, so it keeps two) 1.1-1.4x; an LSTM of 128
#: units over 64 steps (16M) was even, larger graphs gain. CPU only (a thread count is the CPU
#: plugin's property).
SMALL_WORK = 4_000_000

#: OpenVINO ops whose work is (output elements) x (the reduced length of the first input)
_OV_MATMULS = frozenset({"MatMul"})
#: convolutions: (output elements) x (weights per output element: the weights' dims from this
#: index on, past the output channels and groups)
_OV_CONVS = {"Convolution": 1, "GroupConvolution": 2, "BinaryConvolution": 1}
#: transposed convolutions: (input elements) x (weights per input element)
_OV_DECONVS = {"ConvolutionBackpropData": 1, "GroupConvolutionBackpropData": 2}
_OV_RECURRENT = frozenset(
    {"LSTMSequence", "GRUSequence", "RNNSequence", "LSTMCell", "GRUCell", "RNNCell"}
)
_OV_FREE = frozenset({"Constant", "Parameter", "Result", "ShapeOf", "Reshape", "Squeeze",
                      "Unsqueeze", "Convert"})  # fmt: skip


def _static(shape: Any, least: bool = False) -> list[int] | None:
    """The dims of a partial shape, or None where one is dynamic; with ``least``, a dynamic dim
    counts as 1 and a dynamic rank as no dims (the smallest the shape can be)."""
    if shape.rank.is_dynamic:
        return [] if least else None
    if shape.is_dynamic:
        if not least:
            return None
        return [int(d.get_length()) if d.is_static else 1 for d in shape]
    return [int(d.get_length()) for d in shape]


def model_work(model: Any, least: bool = False) -> int | None:
    """An OpenVINO model's multiply-adds: matrix products, convolutions and recurrent cells by
    their shapes, one per output element for every other op, a Loop's or TensorIterator's body
    times its trip count, an If's larger branch. None where a shape or a trip count is not
    static (the work is not known before a run). ``least``: a lower bound for any input shapes
    instead (dynamic dims count as 1, an If's smaller branch, a loop whose trip count is not
    static none), never None."""
    total = 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in _OV_FREE:
            continue
        out = _static(op.get_output_partial_shape(0), least) if op.get_output_size() else []
        if out is None:
            return None
        cells = math.prod(out)
        if kind in ("Loop", "TensorIterator", "If"):
            body = _body_work(op, kind, least)
            if body is None:
                return None
            total += body
            continue
        ins = [_static(op.get_input_partial_shape(i), least) for i in range(op.get_input_size())]
        if kind in _OV_MATMULS:
            a = ins[0]
            if a is None:
                return None
            transpose = bool(op.get_attributes().get("transpose_a", False))
            total += cells * (a[-2] if transpose and len(a) > 1 else a[-1] if a else 1)
        elif kind in _OV_CONVS:
            w = ins[1]
            if w is None:
                return None
            total += cells * math.prod(w[_OV_CONVS[kind] :])
        elif kind in _OV_DECONVS:
            x, w = ins[0], ins[1]
            if x is None or w is None:
                return None
            total += math.prod(x) * math.prod(w[_OV_DECONVS[kind] :])
        elif kind in _OV_RECURRENT:
            # X, the states, (lengths,) W, R, B: W and R the two inputs before the bias, each
            # holding every direction's gates
            x, w, r = ins[0], ins[-3], ins[-2]
            if x is None or w is None or r is None:
                return None
            steps = math.prod(x[:-1])  # batch x time (a cell: batch)
            total += steps * (math.prod(w) + math.prod(r))
        else:
            total += cells
    return total


def _body_work(op: Any, kind: str, least: bool = False) -> int | None:
    """The work of a control-flow op's body (times a Loop's or TensorIterator's trip count, the
    larger of an If's branches, the smaller with ``least``); None where it is not static."""
    if kind == "If":
        works = [model_work(op.get_then_body(), least), model_work(op.get_else_body(), least)]
        return None if None in works else min(works) if least else max(works)
    body = model_work(op.get_function(), least)
    if body is None:
        return None
    if kind == "TensorIterator":
        trips = op.get_num_iterations()
    else:  # Loop: its trip count input, when static
        value = _static_value(op.input_value(0))
        if value is None or value.size != 1:
            return 0 if least else None
        trips = int(value.reshape(-1)[0])
    if trips < 0:
        return 0 if least else None
    return body * trips


def _static_value(output: Any) -> np.ndarray | None:
    """The value of an OpenVINO output where the model fixes it before a run (a constant, an
    input's static shape, a gather or conversion of those: a Loop's trip count read from its
    sequence's shape), else None."""
    node = output.get_node()
    kind = node.get_type_name()
    if kind == "Constant":
        return np.asarray(node.get_data())
    if kind == "ShapeOf":
        dims = _static(node.get_input_partial_shape(0))
        return None if dims is None else np.asarray(dims, np.int64)
    if kind == "Convert":
        return _static_value(node.input_value(0))
    if kind == "Gather":
        data, index, axis = (_static_value(node.input_value(i)) for i in range(3))
        if data is None or index is None or axis is None:
            return None
        return np.take(data, index, axis=int(axis.reshape(-1)[0]))
    return None


def subgraph_model(
    subgraph: Graph,
    opsets: dict[str, int],
    skip_initializers: Collection[str] = (),
    native_int8: list[int] | None = None,
) -> onnx.ModelProto:
    """The cluster as a standalone ONNX model (without ``skip_initializers``). Intermediate value
    types are dropped and outputs keep only their element type, so OpenVINO infers shapes itself
    from the inputs. With a ``native_int8`` list, dynamically quantized matrix products are
    handed to OpenVINO's own dynamic quantization (:func:`_native_dynamic_int8`) and the depth of
    each is appended to the list."""
    gp = graph_to_proto(subgraph, skip_initializers=skip_initializers)
    del gp.value_info[:]
    for out in gp.output:
        if out.type.HasField("tensor_type"):
            out.type.tensor_type.ClearField("shape")
    gp.name = subgraph.name or "cluster"
    if native_int8 is not None:
        native_int8 += _native_dynamic_int8(gp, subgraph.initializers)
    if any(n.op_type == "DynamicQuantizeLinear" and not n.domain for n in gp.node):
        _spell_out_dynamic_quantize(gp)
    ops = [helper.make_opsetid(d, v) for d, v in opsets.items()]
    return helper.make_model(gp, opset_imports=ops, producer_name="ort-openvino")


def _native_dynamic_int8(gp: onnx.GraphProto, constants: dict[str, Any]) -> list[int]:
    """Hand ``gp``'s dynamically quantized matrix products to OpenVINO's own dynamic
    quantization; returns their depths (rows of the weights).

    ``quantize_dynamic`` writes y = Cast(MatMulInteger(DynamicQuantizeLinear(x), W, x_zp, W_zp))
    * (x_scale * W_scale) with W, W_zp and W_scale constant. OpenVINO's conversion of that computes
    the integer product in a generic kernel and quantizes x in elementary ops: MiniLM-int8 took
    2.3x onnxruntime's time. Written instead as y = MatMul(x, (float(W) - W_zp) * W_scale), the
    weights stay int8 in OpenVINO's pattern for compressed weights, and its CPU plugin quantizes x
    to uint8 itself per group of ``DYNAMIC_QUANTIZATION_GROUP_SIZE`` values of a row, multiplying
    in int8 (VNNI/AMX): 0.8x onnxruntime. Its result differs from onnxruntime's as two int8
    quantizations of the same float product do (MiniLM's logits: within 0.035 of onnxruntime's,
    which are within 0.061 of the float model's, and OpenVINO's within 0.055)."""
    producer = {o: n for n in gp.node for o in n.output}
    users: dict[str, list[onnx.NodeProto]] = {}
    for n in gp.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    outputs = {o.name for o in gp.output}

    def only_user(name: str, op: str) -> onnx.NodeProto | None:
        found = users.get(name, [])
        if len(found) != 1 or name in outputs or found[0].op_type != op or found[0].domain:
            return None
        return found[0]

    def constant(name: str) -> np.ndarray | None:
        value = constants.get(name)
        return value if isinstance(value, np.ndarray) else None

    replaced: dict[int, list[onnx.NodeProto]] = {}  # id of the final Mul -> its replacement
    dropped: set[int] = set()
    depths: list[int] = []
    for n in gp.node:
        if n.op_type != "MatMulInteger" or n.domain or len(n.input) < 3:
            continue
        quantize = producer.get(n.input[0])
        weights = constant(n.input[1])
        zero = constant(n.input[3]) if len(n.input) > 3 and n.input[3] else None
        if (
            quantize is None
            or quantize.op_type != "DynamicQuantizeLinear"
            or quantize.domain
            or list(quantize.output[::2]) != [n.input[0], n.input[2]]
            or weights is None
            or weights.ndim != 2
            or (len(n.input) > 3 and n.input[3] and zero is None)
        ):
            continue
        cast = only_user(n.output[0], "Cast")
        if cast is None or helper.get_attribute_value(cast.attribute[0]) != onnx.TensorProto.FLOAT:
            continue
        mul = only_user(cast.output[0], "Mul")
        if mul is None:
            continue
        scales = producer.get(next((i for i in mul.input if i != cast.output[0]), ""))
        if scales is None or scales.op_type != "Mul" or quantize.output[1] not in scales.input:
            continue
        w_scale = next((i for i in scales.input if i != quantize.output[1]), quantize.output[1])
        ws = constant(w_scale)
        if ws is None or ws.size not in (1, weights.shape[1]) or ws.ndim > 1:
            continue
        if zero is not None and (zero.size not in (1, weights.shape[1]) or zero.ndim > 1):
            continue
        stem = f"{mul.output[0]}/ov_int8"
        chain = [helper.make_node("Cast", [n.input[1]], [f"{stem}_w"], to=onnx.TensorProto.FLOAT)]
        w = f"{stem}_w"
        if zero is not None and zero.any():
            chain += [
                helper.make_node("Cast", [n.input[3]], [f"{stem}_zp"], to=onnx.TensorProto.FLOAT),
                helper.make_node("Sub", [w, f"{stem}_zp"], [f"{stem}_c"]),
            ]
            w = f"{stem}_c"
        chain += [
            helper.make_node("Mul", [w, w_scale], [f"{stem}_f"]),
            helper.make_node("MatMul", [quantize.input[0], f"{stem}_f"], [mul.output[0]]),
        ]
        replaced[id(mul)] = chain
        dropped |= {id(n), id(cast)}
        depths.append(int(weights.shape[0]))
    if not replaced:
        return depths
    nodes = []
    for node in gp.node:
        if id(node) not in dropped:
            nodes += replaced.get(id(node), [node])
    # the quantizations and scale products no longer used go too
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    del gp.node[:]
    gp.node.extend(reversed(kept))
    return depths


def _spell_out_dynamic_quantize(gp: onnx.GraphProto) -> None:
    """Each DynamicQuantizeLinear of ``gp`` replaced by the ONNX formula in elementary ops, which
    OpenVINO computes exactly as ONNX (with true division, see :func:`_exact_divides`); its own
    conversion of the op rounds the zero point and some outputs differently (a step off in
    about one element of 2,000, measured against onnxruntime's formula on random inputs):

    scale = (max(x_max, 0) - min(x_min, 0)) / 255 (1 where that range is 0, as onnxruntime);
    zero point = round(clamp(-min(x_min, 0) / scale, 0, 255)); y = clamp(round(x / scale) + zero
    point, 0, 255); rounding half to even, outputs cast to uint8."""
    consts = {"zero": 0.0, "one": 1.0, "top": 255.0}
    prefix = "_ort_ov_dql"
    gp.initializer.extend(
        numpy_helper.from_array(np.array(v, np.float32), f"{prefix}_{k}") for k, v in consts.items()
    )
    zero, one, top = (f"{prefix}_{k}" for k in consts)
    nodes = []
    for i, node in enumerate(gp.node):
        if node.op_type != "DynamicQuantizeLinear" or node.domain:
            nodes.append(node)
            continue
        x, (y, scale, zp) = node.input[0], node.output
        t = [f"{prefix}{i}_{k}" for k in range(14)]

        def mk(op, inputs, outputs, **attrs):  # named for _exact_divides
            return helper.make_node(op, inputs, outputs, name=f"{outputs[0]}{_EXACT}", **attrs)

        nodes += [
            mk("ReduceMin", [x], [t[0]], keepdims=0),
            mk("ReduceMax", [x], [t[1]], keepdims=0),
            mk("Min", [t[0], zero], [t[2]]),  # lowest, 0 included
            mk("Max", [t[1], zero], [t[3]]),  # highest, 0 included
            mk("Sub", [t[3], t[2]], [t[4]]),
            mk("Div", [t[4], top], [t[5]]),
            mk("Equal", [t[4], zero], [t[6]]),
            mk("Where", [t[6], one, t[5]], [scale]),
            mk("Div", [t[2], scale], [t[7]]),
            mk("Neg", [t[7]], [t[8]]),
            mk("Min", [t[8], top], [t[9]]),  # -lowest / scale is never below 0
            mk("Round", [t[9]], [t[10]]),
            mk("Cast", [t[10]], [zp], to=onnx.TensorProto.UINT8),
            mk("Div", [x, scale], [t[11]]),
            mk("Round", [t[11]], [t[12]]),
            mk("Add", [t[12], t[10]], [t[13]]),
            mk("Clip", [t[13], zero, top], [f"{t[13]}_c"]),
            mk("Cast", [f"{t[13]}_c"], [y], to=onnx.TensorProto.UINT8),
        ]
    del gp.node[:]
    gp.node.extend(nodes)


#: OpenVINO's run-time attribute that keeps a Divide a division (``ov::disable_divide_conversion``)
_NONCONVERTIBLE_DIVIDE = "nonconvertable_divide_0"
#: the end of the names of the nodes whose divisions :func:`_exact_divides` keeps
_EXACT = "/exact"


def _exact_divides(model: Any) -> None:
    """Mark the Divides of :func:`_spell_out_dynamic_quantize` so that OpenVINO keeps them
    divisions: by default a Divide becomes a multiplication by the reciprocal, which rounds
    differently from ONNX's (and onnxruntime's) division, one unit in the last place in about a
    third of float32 quotients (3 / 255: 0.011764707 instead of 0.011764706), enough to move a
    quantized value by a step. Only those: marked everywhere, the Divides of a LayerNormalization
    no longer fuse and its InvStdDev output came out wrong (OpenVINO 2026.4)."""
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Divide" and op.get_friendly_name().endswith(_EXACT):
            op.get_rt_info()[_NONCONVERTIBLE_DIVIDE] = True


#: OpenVINO's setting of the group size of its dynamic quantization of activations
_GROUP_SIZE = "DYNAMIC_QUANTIZATION_GROUP_SIZE"

#: weights (bytes) above which a cluster reaches OpenVINO as a file it can map (_read_cluster)
EXTERNAL_WEIGHTS_BYTES = 16 << 20


def _external_weights_model(
    subgraph: Graph,
    opsets: dict[str, int],
    big: dict[str, np.ndarray],
    folder: str,
    native_int8: list[int] | None = None,
) -> onnx.ModelProto:
    """:func:`subgraph_model` with the ``big`` initializers written to ``folder``/weights.bin and
    referenced as external data, their bytes never held by the proto."""
    proto = subgraph_model(subgraph, opsets, skip_initializers=big, native_int8=native_int8)
    with open(os.path.join(folder, "weights.bin"), "wb") as f:
        for name, arr in big.items():
            offset = f.tell()
            f.write(memoryview(np.ascontiguousarray(arr, arr.dtype.newbyteorder("<"))).cast("B"))
            t = onnx.TensorProto()
            t.name = name
            t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
            t.dims.extend(arr.shape)
            t.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", "weights.bin"), ("offset", str(offset)),
                               ("length", str(arr.nbytes))):  # fmt: skip
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            proto.graph.initializer.append(t)
            f.write(b"\0" * (-f.tell() % 64))  # keep each tensor 64-byte aligned
    return proto


def _specialized(
    proto: onnx.ModelProto, shapes: dict[str, tuple], baked: dict[str, np.ndarray]
) -> onnx.ModelProto:
    """``proto`` (edited in place: callers pass a fresh one) with the given static input
    shapes, and the ``baked`` inputs made initializers."""
    spec = proto
    keep = []
    for vi in spec.graph.input:
        if vi.name in baked:
            spec.graph.initializer.append(numpy_helper.from_array(baked[vi.name], vi.name))
            continue
        shape = shapes.get(vi.name)
        if shape is not None:
            tt = vi.type.tensor_type
            tt.ClearField("shape")
            tt.shape.SetInParent()
            for d in shape:
                tt.shape.dim.add().dim_value = int(d)
        keep.append(vi)
    del spec.graph.input[:]
    spec.graph.input.extend(keep)
    return spec


def _numpy_type(port: Any) -> np.dtype | None:
    try:
        return np.dtype(port.get_element_type().to_dtype())
    except Exception:  # a type numpy has no exact match for (bf16, strings...)
        return None


def _shared_tensors(feed: list[np.ndarray], dtypes: list[np.dtype | None]) -> dict | None:
    """``{input index: ov.Tensor}`` sharing the arrays' memory (converted or copied first when the
    element type differs, or the array is not contiguous or not writeable); None when an input
    needs OpenVINO's own conversions (scalars, types numpy lacks)."""
    tensors = {}
    for i, (a, dt) in enumerate(zip(feed, dtypes)):
        if dt is None or a.ndim == 0:
            return None
        if a.dtype != dt:
            a = a.astype(dt)
        elif not (a.flags.c_contiguous and a.flags.writeable):
            a = np.array(a, order="C")
        tensors[i] = ov.Tensor(a, shared_memory=True)
    return tensors


class CompiledSubgraph:
    """``fn(*inputs) -> [outputs]`` for one fused cluster (see module docstring)."""

    def __init__(
        self,
        core: Any,
        device: str,
        config: dict[str, Any],
        subgraph: Graph,
        opsets: dict[str, int],
        dynamic: bool,
        defaults: dict[str, np.ndarray] | None = None,
        small_threads: bool = False,
        min_work: int = 0,
        session_options: Any = None,
    ) -> None:
        self.core = core
        self.device = device
        self.config = config
        #: the session's options, for the CPU provider's session of the cluster (see _host)
        self.session_options = session_options
        #: a compilation whose work (:func:`model_work`) is under SMALL_WORK gets one thread
        self.small_threads = small_threads
        self.name = subgraph.name
        # the cluster is rebuilt as an ONNX model whenever a compilation needs it, never kept:
        # a kept copy would hold the weights a second time
        self._subgraph, self._opsets = subgraph, opsets
        model = self._read_cluster()
        # OpenVINO's inputs -> positions in the cluster's inputs. The ONNX frontend creates one
        # Parameter per graph input, in order (names can move: Identity-like nodes hand their
        # output name to the Parameter), so the order decides when the counts agree.
        self.input_positions = self._input_positions(model, subgraph.inputs)
        self.input_names = [subgraph.inputs[p] for p in self.input_positions]
        self.output_names = list(subgraph.outputs)
        self.output_index = self._output_index(model)
        self.output_dtypes = [tensor_dtype(subgraph.type_of(o)) for o in subgraph.outputs]
        self.compiled: Any = None  # the one compilation, when a single one serves every run
        self.baked: list[int] = []  # indices (in OpenVINO's input order) of inputs baked as values
        # key -> (compilation, OpenVINO input -> index in input_names, output indices)
        self._cache: OrderedDict[tuple, tuple[Any, list[int], list[int]]] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()
        #: (compilation, (OpenVINO input, argument position, dtype) per input, output order or
        #: None when outputs need a dtype conversion): see _setup_fast
        self._fast: tuple | None = None
        self.compilations = 0
        self._host_session: Any = None  # the CPU provider's session of the cluster (_host)
        #: input shapes -> whether a run of them goes to _host (too little work), for a cluster
        #: compiled with dynamic shapes that may be small (see _watch_small); None: never
        self._small: dict[tuple, bool] | None = None
        self._reference: tuple[int, int] | None = None  # (input elements, work) last worked out
        self._reads = 0  # OpenVINO models of the cluster read to work out a run's work
        self.min_work = min_work
        self.dynamic_error = ""
        self.dynamic = dynamic
        self._bakeable_inputs = self._bakeable(subgraph)
        #: with defaults compiled as constants: (compilation, positions of the arguments it takes,
        #: output indices, positions of the defaulted arguments, their default objects)
        self.preset: tuple[Any, list[int], list[int], list[int], list[Any]] | None = None
        fixed = {
            k: defaults[n] for k, n in enumerate(self.input_names) if defaults and n in defaults
        }
        if fixed:
            try:
                self.preset = self._compile_preset(model, fixed)
            except EPFail:
                self.preset = None
            if self.preset is not None:
                self._general = False  # compiled on first need: a run overriding a default
                return
            model = self._read_cluster()  # the attempt edited the model
        self._setup_general(model)
        self._setup_fast()
        self._watch_small(model)

    def _watch_small(self, model: Any) -> None:
        """Decide per input shapes whether a run goes to the CPU provider (:meth:`_host`), where
        ``min_work`` is set (the provider's ``min_cpu_work`` on the CPU device) and the cluster
        has dynamic input dims (the partitioner could not prove it small) yet may be small for
        some shapes (:func:`model_work`'s lower bound is under ``min_work``) and its weights are
        at most :data:`HOST_WEIGHT_BYTES` (the CPU provider's session holds them too)."""
        if not self.min_work or self.preset is not None:
            return
        if not any(p.get_partial_shape().is_dynamic for p in model.inputs):
            return  # static: the partitioner decided
        from ort_core.plugins import get_plugin_manager

        if get_plugin_manager().resolve("CPUExecutionProvider") is None:
            return  # (not installed: every run on OpenVINO)
        weights = sum(
            v.nbytes for v in self._subgraph.initializers.values() if isinstance(v, np.ndarray)
        )
        if weights > HOST_WEIGHT_BYTES or model_work(model, least=True) >= self.min_work:
            return
        self._small = {}

    def _is_small(self, args: tuple) -> bool:
        """Whether a run of these inputs' shapes goes to :meth:`_host`: OpenVINO's model of the
        cluster for these shapes does fewer than ``min_work`` multiply-adds (decided once per
        distinct shapes, :meth:`_work_of`)."""
        key = tuple([getattr(a, "shape", None) for a in args])
        small = self._small.get(key)
        if small is None:
            work, how = self._work_of(key)
            small = work is not None and work < self.min_work
            if len(self._small) >= 4 * SHAPE_CACHE_SIZE:
                self._small.clear()
            self._small[key] = small
            if small:
                logs.log(
                    logs.Severity.INFO,
                    f"OpenVINO cluster '{self.name}' runs on the CPU provider for input shapes "
                    f"{[list(k) for k in key if k is not None]}: {how} {work:,.0f} "
                    f"multiply-adds, under min_cpu_work {self.min_work:,}",
                    logid=getattr(self.session_options, "logid", ""),
                    level=getattr(self.session_options, "log_severity_level", None),
                )
        return small

    def _work_of(self, key: tuple) -> tuple[float | None, str]:
        """(multiply-adds of a run of input shapes ``key``, how they were found). Worked out from
        OpenVINO's model of the cluster for those shapes (milliseconds: an image model whose
        every image has its own size would pay it each run), unless the last shapes worked out
        scaled by the inputs' elements put them past half or twice ``min_work`` (convolutions,
        products and recurrent steps grow with the batch, the pixels and the steps); at most
        :data:`WORK_READS` times per cluster, then shapes that scaling does not decide run on
        OpenVINO."""
        size = sum(math.prod(k) for k in key if k is not None)
        ref = self._reference
        if ref is not None and ref[0] and size:
            guess = ref[1] * size / ref[0]
            if guess >= 2 * self.min_work or guess <= self.min_work / 2:
                return guess, "about"
        if self._reads >= WORK_READS:
            return None, ""
        self._reads += 1
        shapes = {n: k for n, k in zip(self._subgraph.inputs, key) if k is not None}
        try:
            work = model_work(self._read(_specialized(self._proto(), shapes, {})))
        except EPFail:
            work = None
        if work is not None:
            self._reference = (size, work)
        return work, "its"

    def _setup_fast(self) -> None:
        """Prepare the fast path of :meth:`__call__`: with one compilation for every input (and
        no defaults compiled as constants), a run whose inputs are all non-empty, contiguous,
        writeable numpy arrays of OpenVINO's element types goes straight to this thread's infer
        request, the arrays shared (never copied) and the outputs copied once, by OpenVINO."""
        compiled = self.compiled
        if compiled is None or self.preset is not None:
            return
        dtypes = [_numpy_type(port) for port in compiled.inputs]
        if any(dt is None for dt in dtypes):
            return
        outs = [_numpy_type(port) for port in compiled.outputs]
        exact = all(
            dt is None or (k < len(outs) and outs[k] == dt)
            for k, dt in zip(self.output_index, self.output_dtypes)
        )
        # positions of OpenVINO's outputs in the results, when they need no conversion
        order = list(self.output_index) if exact else None
        inputs = tuple(zip(range(len(dtypes)), self.input_positions, dtypes))
        self._fast = (compiled, inputs, order)

    def _setup_general(self, model: Any) -> None:
        """Compile ``model`` for every input when a single compilation can serve; otherwise note
        what the per-key compilations bake."""
        is_dynamic = any(p.get_partial_shape().is_dynamic for p in model.inputs)
        if not is_dynamic or self.dynamic:
            try:
                self.compiled = self._compile(model)
            except EPFail as e:
                self.baked = self._bakeable_inputs
                if not (is_dynamic or self.baked):
                    raise
                self.dynamic_error = str(e)
        self._general = True

    def _compile_preset(self, model: Any, fixed: dict[int, np.ndarray]) -> tuple | None:
        """The compilation of ``model`` with the ``fixed`` inputs (by OpenVINO input index) as
        constants, or None when it would not be a single one (dynamic shapes disabled)."""
        fed: list[int] = []
        positions: list[int] = []
        objects: list[Any] = []
        for k, param in enumerate(list(model.get_parameters())):
            value = fixed.get(k)
            if value is not None:
                # a copy (defaults are read-only); the plugin repacks it anyway
                const = ov.op.Constant(np.ascontiguousarray(value))
                if (
                    const.get_element_type() == param.get_element_type()
                    and param.get_partial_shape().compatible(const.get_output_partial_shape(0))
                ):
                    param.output(0).replace(const.output(0))
                    model.remove_parameter(param)
                    positions.append(self.input_positions[k])
                    objects.append(value)
                    continue
            fed.append(self.input_positions[k])
        if not positions:
            return None
        try:
            model.validate_nodes_and_infer_types()
        except Exception as e:
            raise EPFail(f"cluster '{self.name}' with its defaults: {short_message(e)}") from None
        if not self.dynamic and any(p.get_partial_shape().is_dynamic for p in model.inputs):
            return None
        out_index = self._output_index(model)
        return self._compile(model), fed, out_index, positions, objects

    def _proto(self) -> onnx.ModelProto:
        depths = self._native_int8()
        proto = subgraph_model(self._subgraph, self._opsets, native_int8=depths)
        self._group_size(depths)
        return proto

    def _native_int8(self) -> list[int] | None:
        """A list for :func:`subgraph_model` to note the depths of the products it hands to
        OpenVINO's dynamic quantization, or None where precision=ACCURACY keeps them exact."""
        return None if self.config.get("EXECUTION_MODE_HINT") == "ACCURACY" else []

    def _group_size(self, depths: list[int] | None) -> None:
        """Quantize the activations of the products of :func:`_native_dynamic_int8` in groups
        as long as the depth of every one allows (a whole row where they share it), which is
        the closest OpenVINO has to onnxruntime's one scale per tensor, and its fastest:
        MiniLM-int8 11.0 ms against 14.3 with OpenVINO's default groups of 32 (onnxruntime 14.0).
        OpenVINO's default stays where the depths share no multiple of 32 or the device has no
        such setting."""
        if not depths:
            return
        size = math.gcd(*depths)
        if size % 32:
            return
        try:
            supported = self.core.get_property(self.device, "SUPPORTED_PROPERTIES")
        except Exception:  # a virtual device that cannot say
            return
        if _GROUP_SIZE in supported:
            self.config = {**self.config, _GROUP_SIZE: size}

    def _read_cluster(self) -> Any:
        """OpenVINO's model of the cluster. One with more than :data:`EXTERNAL_WEIGHTS_BYTES` of
        weights is written to a temporary folder, its weights straight from the arrays into one
        external-data file (never into the proto), and read from there: OpenVINO maps that file
        instead of copying serialized bytes (BERT-base's peak memory: 2.2 GB before). The folder
        is removed at once; the mapping outlives the name."""
        big = {
            k: v
            for k, v in self._subgraph.initializers.items()
            if isinstance(v, np.ndarray) and v.dtype.kind in "biuf" and v.nbytes > 1024
        }
        if sum(v.nbytes for v in big.values()) <= EXTERNAL_WEIGHTS_BYTES:
            return self._read(self._proto())
        with tempfile.TemporaryDirectory(prefix="ort-openvino-", ignore_cleanup_errors=True) as tmp:
            path = os.path.join(tmp, "cluster.onnx")
            depths = self._native_int8()
            proto = _external_weights_model(self._subgraph, self._opsets, big, tmp, depths)
            self._group_size(depths)
            onnx.save_model(proto, path)
            del proto
            try:
                return self.core.read_model(path)
            except Exception as e:
                raise EPFail(
                    f"OpenVINO's ONNX frontend cannot read cluster '{self.name}': "
                    f"{short_message(e)}"
                ) from None

    def _read(self, proto: onnx.ModelProto) -> Any:
        """OpenVINO's model of ``proto``; the caller's reference should be its only other one, so
        that the proto's copy of the weights is freed before OpenVINO makes its own."""
        try:
            data = proto.SerializeToString()
            del proto
            return self.core.read_model(data)
        except Exception as e:
            raise EPFail(
                f"OpenVINO's ONNX frontend cannot read cluster '{self.name}': {short_message(e)}"
            ) from None

    def _input_positions(self, model: Any, names: list[str]) -> list[int]:
        if len(model.inputs) == len(names):
            return list(range(len(names)))
        # some inputs were dropped (unused once converted): match names, and take a Parameter
        # whose name moved for the next unmatched input after the previous match
        where = {name: i for i, name in enumerate(names)}
        positions: list[int] = []
        for port in model.inputs:
            hit = [where[n] for n in port.get_names() if n in where]
            if not hit:
                after = positions[-1] if positions else -1
                hit = [i for i in range(after + 1, len(names)) if i not in positions]
            if not hit:
                raise EPFail(
                    f"OpenVINO's model of cluster '{self.name}' has an input {port.get_names()} "
                    "that is not an input of the cluster."
                )
            positions.append(hit[0])
        return positions

    def _output_index(self, model: Any) -> list[int]:
        index = []
        for name in self.output_names:
            hit = [k for k, port in enumerate(model.outputs) if name in port.get_names()]
            if not hit:
                raise EPFail(
                    f"cluster '{self.name}' output '{name}' is missing from OpenVINO's model of it."
                )
            index.append(hit[0])
        return index

    def _bakeable(self, subgraph: Graph) -> list[int]:
        out = []
        for k, name in enumerate(self.input_names):
            tp = subgraph.type_of(name)
            dt = tensor_dtype(tp)
            shape = tp.tensor_type.shape if tp is not None else None
            if dt is None or dt.kind not in "iub" or shape is None:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in shape.dim]
            if all(d >= 0 for d in dims) and int(np.prod(dims)) <= MAX_BAKED_ELEMENTS:
                out.append(k)
        return out

    @property
    def loaded_from_cache(self) -> bool:
        """True when OpenVINO loaded the compiled model from ``cache_dir`` instead of compiling."""
        compiled = self.preset[0] if self.preset is not None else self.compiled
        if compiled is None and self._cache:
            compiled = next(iter(self._cache.values()))[0]
        return bool(compiled is not None and compiled.get_property("LOADED_FROM_CACHE"))

    def _compile(self, model: Any) -> Any:
        _exact_divides(model)
        config = self.config
        if (
            self.small_threads
            and self.device.upper() == "CPU"
            and config.get("INFERENCE_NUM_THREADS", 0) != 1
        ):
            work = model_work(model)
            if work is not None and work < SMALL_WORK:
                config = {**config, "INFERENCE_NUM_THREADS": 1}
        try:
            compiled = self.core.compile_model(model, self.device, config)
        except Exception as e:
            raise EPFail(
                f"OpenVINO could not compile cluster '{self.name}' for {self.device}: "
                f"{short_message(e)}"
            ) from None
        self.compilations += 1
        return compiled

    def _for_key(self, feed: list[np.ndarray]) -> tuple[Any, list[int], list[int]]:
        """The compilation for these inputs' shapes (and baked values), compiling on a miss."""
        baked = set(self.baked)
        key = tuple(
            (a.shape, a.dtype.str, a.tobytes()) if k in baked else a.shape
            for k, a in enumerate(feed)
        )
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            shapes = {n: a.shape for n, a in zip(self.input_names, feed)}
            values = {self.input_names[k]: feed[k] for k in baked}
            model = self._read(_specialized(self._proto(), shapes, values))
            try:
                compiled = self._compile(model)
            except EPFail as e:
                if self.dynamic_error:
                    raise EPFail(
                        f"{e} (compiling it for any input failed too: {self.dynamic_error})"
                    ) from None
                raise
            kept = [k for k, n in enumerate(self.input_names) if n not in values]
            order = [
                kept[i] for i in self._input_positions(model, [self.input_names[k] for k in kept])
            ]
            entry = (compiled, order, self._output_index(model))
            self._cache[key] = entry
            while len(self._cache) > SHAPE_CACHE_SIZE:
                self._cache.popitem(last=False)
            return entry

    def _request(self, compiled: Any) -> tuple[Any, Any, list[np.dtype]]:
        """This thread's (compilation, infer request, input element types) for ``compiled``."""
        requests = self._local.__dict__.setdefault("requests", {})
        entry = requests.get(id(compiled))
        if entry is None or entry[0] is not compiled:
            if len(requests) >= SHAPE_CACHE_SIZE:
                requests.clear()
            dtypes = [_numpy_type(port) for port in compiled.inputs]
            entry = requests[id(compiled)] = (compiled, compiled.create_infer_request(), dtypes)
        return entry

    def _infer(self, compiled: Any, feed: list[np.ndarray], out_index: list[int]) -> list:
        _, request, dtypes = self._request(compiled)
        tensors = _shared_tensors(feed, dtypes)
        if tensors is None:  # scalars or unusual types: OpenVINO's own conversions
            results = request.infer(feed, share_inputs=True, share_outputs=False).to_tuple()
        else:
            results = tuple(_RawRequest.infer(request, tensors, False, True).values())
        return self._converted(results, out_index)

    def _host(self, args: tuple) -> list[np.ndarray]:
        """Run the cluster on the CPU provider (zero-sized inputs, which OpenVINO computes
        wrongly; shapes with too little work, :meth:`_is_small`): a session of the cluster's
        model with the CPU provider alone, made on first need with the session's options (its
        threads, optimization level and configuration; nothing saved or profiled)."""
        session = self._host_session
        if session is None:
            with self._lock:
                session = self._host_session
                if session is None:
                    session = self._host_session = self._make_host_session()
        return session.run(None, dict(zip(self._subgraph.inputs, args)))

    def _make_host_session(self) -> Any:
        """The cluster as a model in a session on the CPU provider alone (see :meth:`_host`)."""
        from ort_core.options import SessionOptions
        from ort_core.plugins import get_plugin_manager
        from ort_core.session import InferenceSession

        if get_plugin_manager().resolve("CPUExecutionProvider") is None:
            raise EPFail(
                f"OpenVINO cluster '{self.name}' got a zero-sized input, which OpenVINO computes "
                "wrongly, and the CPU provider that would run it instead is not installed: "
                "`pip install ort-core[cpu]`."
            )
        user = self.session_options
        so = user._copy() if isinstance(user, SessionOptions) else SessionOptions()
        so.optimized_model_filepath = ""
        so.enable_profiling = False
        so._providers = []
        so._initializers = {}  # the cluster's own initializers hold their values
        so._free_dims_by_name, so._free_dims_by_denotation = {}, {}
        so._config = {k: v for k, v in so._config.items() if not k.startswith("ep.context")}
        sub = self._subgraph
        model = helper.make_model(
            graph_to_proto(sub),
            opset_imports=[helper.make_opsetid(d, v) for d, v in self._opsets.items()],
        )
        return InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def __call__(self, *args: Any) -> list[np.ndarray]:
        if self._small is not None and self._is_small(args):
            return self._host(args)
        fast = self._fast
        if fast is not None:
            compiled, inputs, order = fast
            tensors = {}
            for i, p, dt in inputs:
                a = args[p]
                if (
                    type(a) is not np.ndarray
                    or a.dtype != dt
                    or not a.ndim
                    or not a.size
                    or not a.flags.c_contiguous
                    or not a.flags.writeable
                ):
                    break
                tensors[i] = ov.Tensor(a, shared_memory=True)
            else:
                try:
                    request = self._local.request
                except AttributeError:
                    request = self._local.request = compiled.create_infer_request()
                # share_outputs=False: OpenVINO copies each output out of the request, so the
                # next run on this thread cannot overwrite what this one returned
                results = list(_RawRequest.infer(request, tensors, False, True).values())
                if order is not None:
                    return [results[k] for k in order]
                return self._converted(results, self.output_index)
        return self._call(args)

    def _converted(self, results: Any, out_index: list[int]) -> list[np.ndarray]:
        outs = []
        for k, dt in zip(out_index, self.output_dtypes):
            value = results[k]
            if dt is not None and value.dtype != dt:
                value = value.astype(dt)
            outs.append(value)
        return outs

    def _call(self, args: tuple) -> list[np.ndarray]:
        for a in args:
            if getattr(a, "size", 1) == 0:
                return self._host(args)
        preset = self.preset
        if preset is not None:
            compiled, fed, out_index, positions, objects = preset
            if all(map(operator.is_, map(args.__getitem__, positions), objects)):
                return self._infer(compiled, [np.asarray(args[p]) for p in fed], out_index)
            if not self._general:
                with self._lock:
                    if not self._general:
                        self._setup_general(self._read_cluster())
        feed = [np.asarray(args[p]) for p in self.input_positions]
        if self.compiled is not None:
            compiled, out_index = self.compiled, self.output_index
        else:
            compiled, order, out_index = self._for_key(feed)
            feed = [feed[k] for k in order]
        return self._infer(compiled, feed, out_index)
