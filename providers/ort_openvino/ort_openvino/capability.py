"""Which nodes the OpenVINO provider takes, asked of OpenVINO itself.

For each unassigned node the provider builds a one-node ONNX model (non-constant inputs typed as in
the graph, small constant inputs embedded as initializers), converts it with OpenVINO's ONNX
frontend and asks the target device (``Core.query_model``) whether it supports every operation
the conversion produced. A node is supported when the conversion succeeds and the device takes
every resulting operation; otherwise the reason is OpenVINO's own message. The one-node models of
a partitioning round are queried together, as one OpenVINO model, and decisions are cached by a
signature (op, domain, opset, attributes, input element types and shapes, which inputs are
constant) so a big model probes each distinct kind of node once.

Before OpenVINO is asked, these rules decline what it cannot express exactly:

- values that are not tensors (sequences, optionals, maps), strings, complex numbers, bfloat16 and
  the sub-byte and float8 types, and nodes with subgraphs (control flow) except a Loop whose body
  passes these rules (:data:`WHOLE_CONTROL_FLOW`: OpenVINO then runs every iteration in one call);
- float64 math: OpenVINO's plugins compute it in float32;
- 64-bit integer *data* that may leave the int32 range: OpenVINO's CPU plugin computes int64 and
  uint64 in 32 bits, so ``2**40 + 1`` comes back as ``1``. Values derived from shapes, indices and
  small constants are safe and stay on OpenVINO (see :func:`wide_int_safe_values`); index-like
  inputs (shapes, axes, indices, pads) are never data;
- nodes whose attributes break ONNX's rules (window and Resize checks from ``ort_core.ops``, shared
  with every provider): the next provider reports them;
- cases OpenVINO converts but computes differently from ONNX (:data:`KNOWN_DIFFERENCES`, found by
  the ONNX backend suite) and attributes newer than its frontend reads (:data:`FRONTEND_OPSET`).

Clusters are checked as wholes too (:func:`cluster_problem`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ort_core import ops
from ort_core.ir import Node, node_reads, node_to_proto, tensor_dtype, tensor_shape
from ort_core.provider import GraphView, schema_for

__all__ = ["CapabilityProbe", "wide_int_safe_values", "precheck", "signature"]

#: Element types OpenVINO represents exactly (at the API and in the plugins' math).
SUPPORTED_DTYPES = frozenset(
    map(
        np.dtype,
        (
            np.float32,
            np.float16,
            np.int8,
            np.uint8,
            np.int16,
            np.uint16,
            np.int32,
            np.uint32,
            np.int64,
            np.uint64,
            np.bool_,
        ),
    )
)
WIDE_INTS = frozenset(map(np.dtype, (np.int64, np.uint64)))
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: Constant inputs up to this many elements are embedded in a probe; bigger ones (weights) become
#: typed inputs with their full shape, so probing a 100 MB Gemm does not serialize 100 MB.
MAX_EMBEDDED_ELEMENTS = 4096
#: Type constraints whose only types are these carry indices or shapes, never arbitrary data.
_INDEX_TYPES = frozenset({"tensor(int32)", "tensor(int64)"})
_CACHE_SIZE = 8192


def _fits_int32(arr: np.ndarray) -> bool:
    if arr.size == 0:
        return True
    return int(arr.min()) >= INT32_MIN and int(arr.max()) <= INT32_MAX


def data_roles(node: Node, opset: int) -> tuple[list[bool], list[bool]]:
    """For each input and output of ``node``: True when it may carry arbitrary data, False when its
    schema restricts it to int32/int64 (shapes, axes, indices, pads...)."""
    schema = schema_for(node.op_type, node.domain, opset)
    if schema is None:
        return [True] * len(node.inputs), [True] * len(node.outputs)
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}

    def roles(formals, count: int) -> list[bool]:
        out = []
        for i in range(count):
            if not formals:
                out.append(True)
                continue
            p = formals[min(i, len(formals) - 1)]
            types = allowed.get(p.type_str, {p.type_str})
            out.append(not types <= _INDEX_TYPES)
        return out

    return roles(schema.inputs, len(node.inputs)), roles(schema.outputs, len(node.outputs))


def wide_int_safe_values(view: GraphView) -> set[str]:
    """Names of int64/uint64 values of ``view.graph`` known to stay within the int32 range.

    Safe: constants whose values fit; index-like outputs (Shape, Size, ArgMax, NonZero, TopK
    indices...); and data outputs of nodes whose data inputs are all safe wide integers, narrower
    integers or booleans (shape arithmetic). Graph inputs, outer-scope values, outputs computed from
    floats (Cast of a float) and tensor attributes that do not fit are not safe.
    """
    graph = view.graph
    safe: set[str] = set()
    for name, arr in graph.initializers.items():
        if name not in graph.inputs and isinstance(arr, np.ndarray) and arr.dtype in WIDE_INTS:
            if _fits_int32(arr):
                safe.add(name)
    for node in graph.nodes:
        in_roles, out_roles = data_roles(node, view.opset(node.domain))
        ok = not node.subgraphs and _attributes_fit(node)
        for i, name in enumerate(node.inputs):
            if not name or not in_roles[i]:
                continue
            dt = tensor_dtype(view.type_of(name))
            if dt is None or dt.kind in "fcOUSV" or (dt in WIDE_INTS and name not in safe):
                ok = False
        for j, name in enumerate(node.outputs):
            if name and tensor_dtype(view.type_of(name)) in WIDE_INTS and (ok or not out_roles[j]):
                safe.add(name)
    return safe


def _attributes_fit(node: Node) -> bool:
    for attr in node.attributes.values():
        if attr.type == onnx.AttributeProto.TENSOR:
            arr = numpy_helper.to_array(attr.t)
            if arr.dtype in WIDE_INTS and not _fits_int32(arr):
                return False
    return True


def _describe(tp: onnx.TypeProto | None) -> str:
    from ort_core.ir import type_str

    return type_str(tp)


# -- what OpenVINO converts but computes differently from ONNX ----------------------------------
#: The newest ONNX opset whose attributes OpenVINO's ONNX frontend reads. An attribute that appeared
#: in a later opset is ignored by the frontend's converter (the node would run with the older
#: semantics), so a node setting one is declined.
FRONTEND_OPSET = 24


def _attr(node: Node, name: str, default: Any = None) -> Any:
    value = node.attr(name, default)
    return value.decode() if isinstance(value, bytes) else value


def _pool_ceil_differs(node: Node, view: GraphView) -> bool:
    """ONNX drops a last ceil-mode window that would start in the padding; OpenVINO keeps it."""
    window = ops.Window.from_attrs(node.attr_values())
    if not window.ceil_mode or window.kernel_shape is None:
        return False
    spatial = (_shape(node, view, 0) or ())[2:]
    nd = len(window.kernel_shape)
    if len(spatial) != nd or any(not isinstance(d, int) for d in spatial):
        return True
    w = window.resolve(nd)
    pads = w.pads or (0,) * (2 * nd)
    return any(
        ops.ceil_window_dropped(d, k, s, dil, pads[i], pads[i + nd])
        for i, (d, k, s, dil) in enumerate(zip(spatial, w.kernel_shape, w.strides, w.dilations))
    )


def _resize_differs(node: Node, view: GraphView) -> bool:
    attrs = ops.ResizeAttrs.from_attrs(node.attr_values(), view.opset(node.domain), node.op_type)
    ctm = attrs.coordinate_transformation_mode
    return bool(
        attrs.antialias
        or attrs.keep_aspect_ratio_policy != "stretch"
        or (attrs.mode == "cubic" and (attrs.exclude_outside or ctm == "align_corners"))
        or (attrs.mode == "linear" and ctm == "align_corners")
    )


def _shape(node: Node, view: GraphView, i: int) -> tuple | None:
    has = len(node.inputs) > i and node.inputs[i]
    return tensor_shape(view.type_of(node.inputs[i])) if has else None


def _rank(shape: tuple | None) -> int | None:
    return None if shape is None else len(shape)


#: ONNX's rules for the attributes of the ops whose semantics ort_core.ops holds: a node that breaks
#: them is left to the next provider, which reports it (OpenVINO might compute something instead).
SPEC_RULES: dict[str, Any] = {
    **{
        op: lambda n, v, w=w, t=t: ops.conv_reason(
            n.attr_values(), _shape(n, v, 0), _shape(n, v, w), transpose=t
        )
        for op, w, t in (
            ("Conv", 1, False),
            ("ConvInteger", 1, False),
            ("QLinearConv", 3, False),
            ("ConvTranspose", 1, True),
        )
    },
    **{
        op: lambda n, v: ops.pool_reason(n.attr_values(), _shape(n, v, 0))
        for op in ("MaxPool", "AveragePool", "LpPool")
    },
    **{
        op: lambda n, v: ops.resize_reason(
            n.attr_values(), v.opset(n.domain), n.op_type, _rank(_shape(n, v, 0))
        )
        for op in ("Resize", "Upsample")
    },
}


def spec_reason(node: Node, view: GraphView) -> str | None:
    """Why ``node`` breaks ONNX's rules for its attributes (:data:`SPEC_RULES`), or None."""
    rule = SPEC_RULES.get(node.op_type) if not node.domain else None
    reason = rule(node, view) if rule is not None else None
    if reason:
        return f"{reason}; the node breaks the ONNX spec and is left to the next provider to report"
    return None


def _has_input(node: Node, i: int) -> bool:
    return len(node.inputs) > i and bool(node.inputs[i])


def _float_input(node: Node, view: GraphView) -> bool:
    dt = tensor_dtype(view.type_of(node.inputs[0])) if node.inputs else None
    return dt is not None and dt.kind == "f"


def _non_constant(i: int):
    return lambda node, view: _has_input(node, i) and view.constant(node.inputs[i]) is None


#: (op type, condition, reason): cases OpenVINO converts and its plugin accepts, but computes
#: differently from ONNX, found by the ONNX backend suite. Declined so the next provider runs them.
KNOWN_DIFFERENCES: list[tuple[str, Any, str]] = [
    ("DFT", lambda n, v: True, "OpenVINO's DFT is less precise than ONNX expects near zero"),
    (
        "QuantizeLinear",
        lambda n, v: any(_non_constant(i)(n, v) for i in (1, 2)),
        "OpenVINO rounds differently when the scale or zero point is computed at run time",
    ),
    ("RoiAlign", lambda n, v: _attr(n, "mode", "avg") == "max", "OpenVINO's max mode differs"),
    ("Tile", _non_constant(1), "OpenVINO's Tile returns garbage when repeats is not a constant"),
    *[
        (op, lambda n, v: _attr(n, "layout", 0) == 1, "OpenVINO ignores layout=1 (batch-first)")
        for op in ("RNN", "GRU", "LSTM")
    ],
    ("LSTM", lambda n, v: _has_input(n, 7), "OpenVINO ignores the peephole weights P"),
    ("Resize", _resize_differs, "OpenVINO computes this Resize mode differently from ONNX"),
    (
        "ConvTranspose",
        lambda n, v: _attr(n, "auto_pad") == "SAME_UPPER" and n.attr("output_shape") is not None,
        "with output_shape and auto_pad SAME_UPPER OpenVINO crops the odd cell of padding at the "
        "start, where ONNX crops it at the end",
    ),
    *[
        (op, _pool_ceil_differs, "with ceil_mode OpenVINO keeps a last window starting in the pad")
        for op in ("MaxPool", "AveragePool")
    ],
    *[
        (
            op,
            _float_input,
            "OpenVINO returns the lowest finite float, not -inf, for all-infinite or empty sets",
        )
        for op in ("ReduceMax", "ReduceMin")
    ],
    (
        "Attention",
        lambda n, v: _attr(n, "is_causal", 0) and _has_input(n, 4),
        "OpenVINO does not offset the causal mask by the past sequence length",
    ),
]


def known_difference(node: Node, view: GraphView) -> str | None:
    """Why OpenVINO would compute ``node`` differently from ONNX, or None. Run after
    :func:`spec_reason` (the rules below read attributes the spec allows)."""
    opset = view.opset(node.domain)
    if opset > FRONTEND_OPSET and node.attributes:
        old = schema_for(node.op_type, node.domain, FRONTEND_OPSET)
        if old is not None:
            newer = sorted(set(node.attributes) - set(old.attributes))
            if newer:
                return (
                    f"attribute(s) {newer} appeared after opset {FRONTEND_OPSET}, and OpenVINO's "
                    "ONNX frontend ignores them"
                )
    if node.domain:
        return None
    for op, cond, reason in KNOWN_DIFFERENCES:
        if op == node.op_type and cond(node, view):
            return reason
    return None


#: Control-flow ops OpenVINO takes whole (its own Loop, iterating inside one call) when every
#: node of the body is one it takes. If stays with the next provider, its branches partitioned
#: separately: OpenVINO's If re-plans its dynamic branch on each call (silero-like VAD: 2.7x
#: onnxruntime as one OpenVINO If, 1.8x with the branches compiled separately).
WHOLE_CONTROL_FLOW = frozenset({"Loop"})


def _body_reason(node: Node, view: GraphView) -> str | None:
    """Why OpenVINO cannot take ``node`` (a :data:`WHOLE_CONTROL_FLOW` op) with its body."""
    from ort_core.partitioner import scope_types

    if node.domain or node.op_type not in WHOLE_CONTROL_FLOW:
        return (
            f"{node.op_type} is left to the next provider, its subgraphs partitioned separately "
            f"(OpenVINO takes only {', '.join(sorted(WHOLE_CONTROL_FLOW))} whole)"
        )
    for body in node.subgraphs.values():
        inner = GraphView(body, view.opsets, scope_types(view.graph, view.outer_types))
        safe = wide_int_safe_values(inner)
        for n in body.nodes:
            reason = precheck(n, inner, safe, outer_ok=True)
            if reason is None and n.subgraphs:
                reason = "a nested subgraph"
            if reason is not None:
                return f"its body's {n.op_type} node '{n.name}': {reason}"
    return None


def precheck(
    node: Node, view: GraphView, safe_wide: set[str], outer_ok: bool = False
) -> str | None:
    """Why OpenVINO cannot run ``node`` exactly, decided without asking OpenVINO; None to ask it.
    ``outer_ok``: ``node`` is in the body of a control-flow node OpenVINO would take whole, so
    values of the enclosing graphs reach it."""
    if node.subgraphs:
        reason = _body_reason(node, view)
        if reason is not None:
            return reason
    in_roles, out_roles = data_roles(node, view.opset(node.domain))
    for kind, names, roles in (
        ("input", node.inputs, in_roles),
        ("output", node.outputs, out_roles),
    ):
        for i, name in enumerate(names):
            if not name:
                continue
            tp = view.type_of(name) if outer_ok else view.graph.type_of(name)
            if tp is None and view.type_of(name) is not None:
                return (
                    f"{kind} '{name}' comes from an enclosing graph, whose types do not reach the "
                    "compiled cluster"
                )
            if tp is None or tp.WhichOneof("value") != "tensor_type":
                what = "unknown" if tp is None else _describe(tp)
                return f"{kind} '{name}' has type {what}; OpenVINO takes tensors of known type"
            dt = tensor_dtype(tp)
            if dt is None or dt not in SUPPORTED_DTYPES:
                return (
                    f"{kind} '{name}' is {_describe(tp)}, which OpenVINO does not compute exactly "
                    "(float64 becomes float32, bfloat16 and narrower types are not exchanged)"
                )
            if dt in WIDE_INTS and roles[i] and name not in safe_wide:
                return (
                    f"{kind} '{name}' is {dt} data that may leave the int32 range, and OpenVINO "
                    "computes 64-bit integers in 32 bits"
                )
            shape = tp.tensor_type.shape if tp.tensor_type.HasField("shape") else None
            empty = shape is not None and any(
                d.HasField("dim_value") and d.dim_value == 0 for d in shape.dim
            )
            if empty and view.constant(name) is None:
                return f"{kind} '{name}' is empty; OpenVINO's plugins handle empty tensors unevenly"
    return spec_reason(node, view) or known_difference(node, view)


def signature(node: Node, view: GraphView) -> tuple:
    """What a probe's result depends on: op, domain, opset, attributes, input and output types."""
    attrs = tuple(sorted((k, a.SerializeToString()) for k, a in node.attributes.items()))
    ins: list[Any] = []
    for name in node.inputs:
        if not name:
            ins.append(None)
            continue
        c = view.constant(name)
        if c is not None:
            digest = None
            if c.size <= MAX_EMBEDDED_ELEMENTS:
                digest = hashlib.blake2b(np.ascontiguousarray(c).tobytes(), digest_size=16).digest()
            ins.append(("c", c.dtype.str, c.shape, digest))
        else:
            tp = view.type_of(name)
            ins.append(("v", tp.SerializeToString() if tp is not None else b""))
    outs = tuple(
        (tensor_dtype(view.type_of(o)) or np.dtype("V")).str if o else None for o in node.outputs
    )
    aliases = tuple(node.inputs.index(x) if x else -1 for x in node.inputs)
    opset = view.opset(node.domain)
    body = id(node) if node.subgraphs else None  # a node with a body is probed on its own
    return (node.domain, node.op_type, opset, attrs, tuple(ins), outs, aliases, body)


def probe_model(node: Node, view: GraphView, prefix: str) -> onnx.ModelProto:
    """A one-node model of ``node``, values renamed under ``prefix``, inputs typed as in graph."""
    rename: dict[str, str] = {}
    inputs, inits = [], []
    for i, name in enumerate(node.inputs):
        if not name or name in rename:
            continue
        rename[name] = f"{prefix}i{i}"
        _add_probe_input(name, rename[name], view, inputs, inits)
    # what a body reads from the enclosing graphs, under the names the body uses
    for name in dict.fromkeys(node_reads(node)[len([x for x in node.inputs if x]) :]):
        _add_probe_input(name, name, view, inputs, inits)
    outputs = []
    for j, name in enumerate(node.outputs):
        if not name:
            continue
        rename[name] = f"{prefix}o{j}"
        elem = onnx.TensorProto.UNDEFINED
        dt = tensor_dtype(view.type_of(name))
        if dt is not None:
            elem = helper.np_dtype_to_tensor_dtype(dt)
        outputs.append(helper.make_tensor_value_info(rename[name], elem, None))
    proto = node_to_proto(node)
    proto.name = f"{prefix}node"
    proto.input[:] = [rename.get(x, "") for x in node.inputs]
    proto.output[:] = [rename.get(x, "") for x in node.outputs]
    graph = helper.make_graph([proto], f"{prefix}probe", inputs, outputs, inits)
    opsets = [helper.make_opsetid(d, v) for d, v in view.opsets.items()]
    if node.domain not in view.opsets:
        opsets.append(helper.make_opsetid(node.domain, view.opset(node.domain)))
    return helper.make_model(graph, opset_imports=opsets)


def _add_probe_input(name: str, probe_name: str, view: GraphView, inputs: list, inits: list):
    """Value ``name`` of the graph (a node's input, or a value a body reads from the enclosing
    graphs) as input or initializer ``probe_name`` of a probe model."""
    c = view.constant(name)
    if c is not None and c.size <= MAX_EMBEDDED_ELEMENTS:
        inits.append(numpy_helper.from_array(np.asarray(c), probe_name))
    elif c is not None:
        elem = helper.np_dtype_to_tensor_dtype(c.dtype)
        inputs.append(helper.make_tensor_value_info(probe_name, elem, list(c.shape)))
    else:
        vi = onnx.ValueInfoProto(name=probe_name)
        vi.type.CopyFrom(view.type_of(name))
        inputs.append(vi)


def short_message(e: BaseException) -> str:
    """The informative part of an OpenVINO exception (its messages carry long source paths)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    keep = [
        ln
        for ln in lines
        if not ln.startswith(("Exception from", "Check '", "To facilitate", "Summary:"))
    ]
    text = " ".join(keep or lines)
    return text[:300] + ("..." if len(text) > 300 else "")


class CapabilityProbe:
    """Asks OpenVINO which nodes a device supports; one per (device, config), caches decisions.

    Thread-safe: sessions on several threads may partition at once.
    """

    def __init__(self, core: Any, device: str, query_device: str) -> None:
        self.core = core
        self.device = device
        self.query_device = query_device
        self._cache: OrderedDict[tuple, str | None] = OrderedDict()
        self._lock = threading.Lock()
        self.probes = 0  # number of one-node models converted (for tests and diagnostics)

    def decide(self, view: GraphView, nodes: Iterable[Node]) -> dict[int, str | None]:
        """For each node (by ``id``): None when OpenVINO takes it, else the reason it does not."""
        safe_wide = wide_int_safe_values(view)
        result: dict[int, str | None] = {}
        pending: dict[tuple, list[Node]] = {}
        for node in nodes:
            reason = precheck(node, view, safe_wide)
            if reason is not None:
                result[id(node)] = reason
                continue
            sig = signature(node, view)
            with self._lock:
                hit = sig in self._cache
                if hit:
                    self._cache.move_to_end(sig)
                    result[id(node)] = self._cache[sig]
            if not hit:
                pending.setdefault(sig, []).append(node)
        if pending:
            decided = self._probe({sig: ns[0] for sig, ns in pending.items()}, view)
            with self._lock:
                for sig, reason in decided.items():
                    self._cache[sig] = reason
                    while len(self._cache) > _CACHE_SIZE:
                        self._cache.popitem(last=False)
            for sig, ns in pending.items():
                for n in ns:
                    result[id(n)] = decided[sig]
        return result

    def _probe(self, todo: dict[tuple, Node], view: GraphView) -> dict[tuple, str | None]:
        """Convert each node alone, then query the device once for all converted nodes."""
        import openvino as ov

        decided: dict[tuple, str | None] = {}
        converted: dict[tuple, Any] = {}
        for k, (sig, node) in enumerate(todo.items()):
            prefix = f"p{k}_"
            try:
                data = probe_model(node, view, prefix).SerializeToString()
                model = self.core.read_model(data)
            except Exception as e:  # the frontend cannot convert this node: OpenVINO's reason
                decided[sig] = f"OpenVINO's ONNX frontend cannot convert it: {short_message(e)}"
                continue
            for i, op in enumerate(model.get_ordered_ops()):
                op.set_friendly_name(f"{prefix}{i}")
            converted[sig] = model
            self.probes += 1
        if not converted:
            return decided
        models = list(converted.values())
        try:
            combined = ov.Model(
                [r for m in models for r in m.get_results()],
                [p for m in models for p in m.get_parameters()],
                "probe",
            )
            supported = set(self.core.query_model(combined, self.query_device))
            queries = dict.fromkeys(converted, supported)
        except Exception:  # one node breaks the joint query: ask for each node alone
            queries = {}
            for sig, model in converted.items():
                try:
                    queries[sig] = set(self.core.query_model(model, self.query_device))
                except Exception as e:
                    decided[sig] = f"OpenVINO's {self.device} plugin rejects it: {short_message(e)}"
        for sig, names in queries.items():
            model = converted[sig]
            missing = [
                op.get_type_name()
                for op in model.get_ordered_ops()
                if op.get_friendly_name() not in names
            ]
            if missing:
                ops = ", ".join(sorted(set(missing)))
                decided[sig] = f"OpenVINO's {self.device} plugin does not support {ops}"
            else:
                decided[sig] = None
        return decided


def cluster_model(nodes: list[Node], view: GraphView) -> tuple[onnx.ModelProto, list[str]]:
    """A cluster as one ONNX model for checking (large constants become typed inputs, as in the
    probes), and the names of its non-constant inputs."""
    produced = {o for n in nodes for o in n.outputs if o}
    inputs, inits, seen = [], [], set()
    free: list[str] = []
    for n in nodes:
        for name in node_reads(n):
            if not name or name in produced or name in seen:
                continue
            seen.add(name)
            c = view.constant(name)
            if c is not None and c.size <= MAX_EMBEDDED_ELEMENTS:
                inits.append(numpy_helper.from_array(np.asarray(c), name))
            elif c is not None:
                elem = helper.np_dtype_to_tensor_dtype(c.dtype)
                inputs.append(helper.make_tensor_value_info(name, elem, list(c.shape)))
            else:
                vi = onnx.ValueInfoProto(name=name)
                vi.type.CopyFrom(view.type_of(name))
                inputs.append(vi)
                free.append(name)
    outputs = [
        helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
        for n in nodes
        for o in n.outputs
        if o
    ]
    graph = helper.make_graph([node_to_proto(n) for n in nodes], "cluster", inputs, outputs, inits)
    opsets = [helper.make_opsetid(d, v) for d, v in view.opsets.items()]
    return helper.make_model(graph, opset_imports=opsets), free


def cluster_problem(core: Any, nodes: list[Node], view: GraphView) -> tuple[list[Node], str] | None:
    """Nodes to drop from a cluster that OpenVINO cannot take as a whole, and why; None when fine.

    Each node converts alone, but a cluster can still fail: an input of unknown rank (the CPU
    plugin needs ranks), or a conversion that needs a rank OpenVINO cannot infer inside it."""
    model, free = cluster_model(nodes, view)
    unranked = {name for name in free if not view.type_of(name).tensor_type.HasField("shape")}
    if unranked:
        bad = [n for n in nodes if unranked.intersection(n.inputs)]
        return bad, f"it would read {sorted(unranked)[0]!r}, of unknown rank, from outside OpenVINO"
    try:
        core.read_model(model.SerializeToString())
    except Exception as e:
        message = str(e)
        bad = [n for n in nodes if n.name and f": {n.name}>" in message]
        return bad or list(nodes), f"OpenVINO cannot convert its cluster: {short_message(e)}"
    return None
