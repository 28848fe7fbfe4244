"""Expanded function bodies are typed: every value an expanded node reads or writes has the element
type (and, where onnx can tell, the shape) that onnx's own inference gives the inlined model, so
providers that place nodes by type (Core ML, OpenVINO) do not decline them for want of one."""

from __future__ import annotations

import onnx
import onnx.inliner
import pytest
from onnx import TensorProto, helper

from ort_core.ir import model_from_proto, node_reads
from ort_core.partitioner import function_body, partition, type_body
from ort_core.provider import Claim, ExecutionProvider, GraphView
from tests.conftest import make_model, tensor

F, I64, U8 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.UINT8
REF = "ref.functions"


class _NobodyProvider(ExecutionProvider):
    """Claims nothing: every function op is expanded, then partitioning fails on the rest."""

    name = "NobodyExecutionProvider"

    def __init__(self):
        super().__init__({}, None)

    def get_capability(self, view):
        for n in view.nodes:
            view.reject(n, self.name, "takes nothing")
        return []


def _expand(model: onnx.ModelProto):
    """The model after its function ops are expanded, and the nodes the expansion added."""
    m = model_from_proto(model)
    before = {id(n) for n in m.graph.nodes}
    with pytest.raises(Exception, match="Could not find an implementation"):
        partition(m.graph, m.opset_imports, [_NobodyProvider()], functions=m.functions)
    return m, [n for n in m.graph.nodes if id(n) not in before]


def _elem(tp) -> int:
    return tp.tensor_type.elem_type if tp is not None else TensorProto.UNDEFINED


def _reference(model: onnx.ModelProto, fproto: onnx.FunctionProto) -> onnx.ModelProto:
    """onnx's inference of ``model`` after inlining ``fproto`` (a model-local function)."""
    if not any(f.name == fproto.name and f.domain == fproto.domain for f in model.functions):
        model.functions.append(fproto)
    inlined = onnx.inliner.inline_local_functions(model)
    return onnx.shape_inference.infer_shapes(inlined, data_prop=True)


def _as_local(schema: onnx.defs.OpSchema, opset: int) -> onnx.FunctionProto:
    """The standard op's function body as a model-local function of domain REF."""
    f = onnx.FunctionProto()
    f.CopyFrom(schema.function_body)
    f.domain, f.name = REF, schema.name
    del f.opset_import[:]
    f.opset_import.append(helper.make_opsetid("", opset))
    return f


def _check_against_reference(m, expanded, call, fproto, ref, prefix):
    """Each node of ``fproto`` matched by position with the inlined reference: the values it reads
    and writes have the reference's element type (and its shape where the reference has one)."""
    ref_types = {vi.name: vi.type for vi in [*ref.graph.input, *ref.graph.value_info]}
    ref_types.update({vi.name: vi.type for vi in ref.graph.output})
    assert len(ref.graph.node) == len(fproto.node), "the reference did not inline the function"
    rename = dict(zip(fproto.input, call.input)) | dict(zip(fproto.output, call.output))
    checked = 0
    for fn, rn in zip(fproto.node, ref.graph.node):
        for formal, ref_name in [*zip(fn.input, rn.input), *zip(fn.output, rn.output)]:
            if not formal:
                continue
            ours = rename.get(formal, prefix + formal)
            want = ref_types.get(ref_name)
            got = m.graph.type_of(ours)
            assert _elem(want), f"reference left {ref_name} untyped"
            assert _elem(got) == _elem(want), (ours, got, want)
            if want.tensor_type.HasField("shape") and got.tensor_type.HasField("shape"):
                assert got.tensor_type.shape == want.tensor_type.shape, (ours, got, want)
            checked += 1
    assert checked
    # and nothing an expanded node touches is untyped, whatever its origin
    for n in expanded:
        for name in [*node_reads(n), *(o for o in n.outputs if o)]:
            assert _elem(m.graph.type_of(name)), f"{name} of {n.label()} has no element type"


def test_range_with_runtime_bounds_is_typed_as_onnx_types_it():
    node = helper.make_node("Range", ["s", "l", "d"], ["y"], name="rng")
    inputs = [tensor(n, F, []) for n in "sld"]
    model = make_model([node], inputs, [tensor("y", F, None)])
    m, expanded = _expand(model)
    assert [n.op_type for n in expanded][-1] == "Loop"
    assert _elem(m.graph.type_of("rng__sub_result")) == F
    fproto = _as_local(onnx.defs.get_schema("Range", 17), 17)
    call = helper.make_node("Range", ["s", "l", "d"], ["y"], domain=REF)
    ref_model = make_model(
        [call], inputs, [tensor("y", F, None)], extra_opsets=[helper.make_opsetid(REF, 1)]
    )
    _check_against_reference(m, expanded, node, fproto, _reference(ref_model, fproto), "rng__")


def test_dynamic_quantize_linear_is_typed_as_onnx_types_it():
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "scale", "zp"], name="dq")
    outputs = [tensor("y", U8, None), tensor("scale", F, None), tensor("zp", U8, None)]
    model = make_model([node], [tensor("x", F, [2, 3])], outputs)
    m, expanded = _expand(model)
    assert len(expanded) > 5
    fproto = _as_local(onnx.defs.get_schema("DynamicQuantizeLinear", 17), 17)
    call = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "scale", "zp"], domain=REF)
    ref_model = make_model(
        [call], [tensor("x", F, [2, 3])], outputs, extra_opsets=[helper.make_opsetid(REF, 1)]
    )
    ref = _reference(ref_model, fproto)
    # Constant nodes of the body become initializers: their values are typed by their arrays
    _check_against_reference(m, expanded, node, fproto, ref, "dq__")


def test_context_dependent_body_nllloss_is_fully_typed():
    """NegativeLogLikelihoodLoss's body depends on the call's types (onnx builds it per call):
    every value its nodes read or write is typed, the loss as float."""
    node = helper.make_node(
        "NegativeLogLikelihoodLoss", ["x", "t"], ["loss"], name="nll", reduction="mean"
    )
    inputs = [tensor("x", F, [3, 5]), tensor("t", I64, [3])]
    m, expanded = _expand(make_model([node], inputs, [tensor("loss", F, None)]))
    assert len(expanded) > 3
    for n in expanded:
        for name in [*node_reads(n), *(o for o in n.outputs if o)]:
            assert _elem(m.graph.type_of(name)), f"{name} of {n.label()} has no element type"
    (last,) = [n for n in expanded if "loss" in n.outputs]
    assert all(_elem(m.graph.type_of(i)) == F for i in last.inputs if i)


def _local_function():
    """x -> Shape -> Cast(float) -> ReduceSum -> Mul(x) -> y, as model-local function 'Scale'."""
    body = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Cast", ["s"], ["sf"], to=F),
        helper.make_node("ReduceSum", ["sf"], ["n"], keepdims=0),
        helper.make_node("Mul", ["x", "n"], ["y"]),
    ]
    return helper.make_function(REF, "Scale", ["x"], ["y"], body, [helper.make_opsetid("", 17)])


def test_model_local_function_is_typed_as_onnx_types_it():
    fproto = _local_function()
    call = helper.make_node("Scale", ["x"], ["y"], domain=REF, name="sc")
    args = ([call], [tensor("x", F, ["N", 4])], [tensor("y", F, None)])
    kw = {"extra_opsets": [helper.make_opsetid(REF, 1)]}
    model = make_model(*args, **kw)
    model.functions.append(fproto)
    m, expanded = _expand(model)
    assert [n.op_type for n in expanded] == ["Shape", "Cast", "ReduceSum", "Mul"]
    ref = _reference(make_model(*args, **kw), fproto)
    _check_against_reference(m, expanded, call, fproto, ref, "sc__")
    assert m.graph.type_of("sc__s").tensor_type.shape.dim[0].dim_value == 2


def test_a_body_calling_another_local_function_is_typed_through_it():
    """'Outer' calls 'Scale': the value Outer's body gets from the call is typed at the first
    expansion, before Scale itself is expanded (onnx infers through the called function)."""
    outer = helper.make_function(
        REF,
        "Outer",
        ["x"],
        ["y"],
        [
            helper.make_node("Scale", ["x"], ["t"], domain=REF),
            helper.make_node("Relu", ["t"], ["y"]),
        ],
        [helper.make_opsetid("", 17), helper.make_opsetid(REF, 1)],
    )
    call = helper.make_node("Outer", ["x"], ["y"], domain=REF, name="out")
    model = make_model(
        [call],
        [tensor("x", F, [3, 4])],
        [tensor("y", F, None)],
        extra_opsets=[helper.make_opsetid(REF, 1)],
    )
    model.functions.extend([outer, _local_function()])
    m = model_from_proto(model)
    view = GraphView(m.graph, m.opset_imports)
    body = function_body(m.graph.nodes[0], m.opset_imports, m.functions, view, prefix="out__")
    type_body(view, body, m.functions)
    t = m.graph.type_of("out__t")
    assert _elem(t) == F and [d.dim_value for d in t.tensor_type.shape.dim] == [3, 4]


def test_schema_constraints_type_what_onnx_inference_leaves_untyped(monkeypatch):
    """When onnx's inference gives nothing (it refused the body), the schemas' type constraints
    still type the body: Range's Sub binds T to its inputs' float, Cast to its ``to``."""
    import ort_core.partitioner as partitioner

    monkeypatch.setattr(partitioner, "infer_types", lambda model, ops=None: {})
    node = helper.make_node("Range", ["s", "l", "d"], ["y"], name="rng")
    model = make_model([node], [tensor(n, F, []) for n in "sld"], [tensor("y", F, None)])
    m, expanded = _expand(model)
    want = {
        "rng__sub_result": F,
        "rng__sub_result_casted": F,
        "rng__div_result": F,
        "rng__ceil_result_relu": F,
        "rng__ceil_result_relu_int": I64,
        "rng__ceil_result_relu_bool": TensorProto.BOOL,
    }
    assert {k: _elem(m.graph.type_of(k)) for k in want} == want
    assert m.graph.type_of("rng__sub_result").tensor_type.HasField("shape") is False


def test_types_the_graph_already_has_are_kept():
    node = helper.make_node("Range", ["s", "l", "d"], ["y"], name="rng")
    model = make_model([node], [tensor(n, F, []) for n in "sld"], [tensor("y", F, None)])
    m = model_from_proto(model)
    declared = helper.make_tensor_type_proto(F, ["K"])
    m.graph.value_types["y"] = declared
    view = GraphView(m.graph, m.opset_imports)
    body = function_body(m.graph.nodes[0], m.opset_imports, {}, view, prefix="rng__")
    type_body(view, body)
    assert m.graph.value_types["y"] is declared
    assert _elem(m.graph.type_of("rng__div_result")) == F


def test_a_model_without_function_ops_is_not_inferred_again(monkeypatch):
    import ort_core.partitioner as partitioner

    calls = []
    monkeypatch.setattr(partitioner, "type_body", lambda *a, **k: calls.append(a))
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])], [tensor("x", F, [2])], [tensor("y", F, [2])]
    )
    m = model_from_proto(model)
    with pytest.raises(Exception, match="Could not find an implementation"):
        partition(m.graph, m.opset_imports, [_NobodyProvider()])
    assert calls == []


class _LoopOnlyProvider(ExecutionProvider):
    """Runs Loop and nothing else (Core ML has no Loop builder)."""

    name = "LoopOnlyExecutionProvider"

    def __init__(self):
        super().__init__({}, None)

    def get_capability(self, view):
        return [Claim.single(n) for n in view.nodes if n.op_type == "Loop"]


def test_core_ml_takes_the_range_body_instead_of_declining_unknown_types():
    """Range with run-time bounds: Core ML declines Range, the body is expanded, and Core ML now
    takes all of it but the Loop (before, it declined the body's nodes: "has an unknown element
    type", and nothing else could run them)."""
    pytest.importorskip("ort_coreml")
    from ort_coreml.provider import CoreMLExecutionProvider

    node = helper.make_node("Range", ["s", "l", "d"], ["y"], name="rng")
    model = make_model([node], [tensor(n, F, []) for n in "sld"], [tensor("y", F, None)])
    m = model_from_proto(model)
    with pytest.warns(RuntimeWarning):  # the MIL reference runtime stands in for Core ML here
        coreml = CoreMLExecutionProvider({})
    part = partition(m.graph, m.opset_imports, [coreml, _LoopOnlyProvider()])
    assert len(part.expanded) == 1 and "Range" in part.expanded[0]
    reasons = [r for rs in part.reasons.values() for r in rs]
    assert not [r for r in reasons if "unknown element type" in r], reasons
    assert part.nodes_per_provider() == {coreml.name: 8, _LoopOnlyProvider.name: 1}
