"""Type and shape inference that cannot crash the process.

ort-core types a model's values with ``onnx.shape_inference.infer_shapes`` (data propagation on),
but some of onnx's C++ inference functions dereference the type of an input without checking that
onnx knows it: when the input is untyped (it comes from a custom-domain or contrib op, from an op
onnx has no inference for, from a graph input declared without a type, or its name is empty) the
whole process dies with a segmentation fault. ``tools/find_inference_crashers.py`` hunts for such
crashes over every schema of every domain; with onnx 1.23 it finds one class, "an input without a
type", in the ops of :data:`CRASH_ON_UNTYPED_INPUT`, wherever the node sits (main graph, subgraph,
model-local function). Malformed attributes, wrong arity, empty types and odd constants crashed
nothing (and :mod:`._validate` rejects malformed nodes before inference anyway).

The guard works by class, not by model:

- A node of a crashing op whose inputs all have declared types (graph inputs, initializers,
  ``value_info``) is given to onnx: it cannot crash. Any other node of such an op is *hidden*:
  onnx sees an opaque stand-in in a private domain, whose outputs it leaves alone.
- ai.onnx.ml ops whose schema version onnx does not infer (TreeEnsembleRegressor-1, the
  deprecated tree ensembles of ai.onnx.ml opset 5, Scaler, Imputer, Normalizer...) are hidden too.
- Hidden nodes are typed here, by :data:`RULES` (written from the ONNX and ONNX-ML operator
  specifications), and their output types go to onnx as ``value_info``, so that the nodes after
  them are inferred by onnx as usual. When a hidden node's input is typed only by onnx, inference
  runs again with the better types (a few rounds at most, only for models with hidden nodes).
- A model-local function holding a crashing op (directly, in a subgraph or through another
  function) is removed from what onnx sees, and its calls are hidden.
- Outputs that onnx leaves untyped on the ai.onnx.ml ops it does infer (TreeEnsembleClassifier-1's
  probabilities) get the rule's type afterwards.

A model using none of these ops (nearly all) goes straight to onnx: the check costs a set
intersection on the ops :func:`._validate.validate_graph` collected.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .. import _onnx
from ._validate import normalize_domain, schema_facts

onnx = _onnx.onnx
TensorProto = onnx.TensorProto

__all__ = ["CRASH_ON_UNTYPED_INPUT", "RULES", "infer_types"]

ML = "ai.onnx.ml"
#: the domain of the opaque stand-ins for hidden nodes (onnx has no schema for it)
HIDDEN_DOMAIN = "ort_core.hidden"

#: (domain, op_type) whose onnx inference crashes (SIGSEGV) when an input has no type, every
#: version; found by ``tools/find_inference_crashers.py`` with onnx 1.23.2
CRASH_ON_UNTYPED_INPUT = frozenset(
    {
        (ML, "LabelEncoder"),  # 1, 2, 4
        (ML, "DictVectorizer"),  # 1
        (ML, "TreeEnsemble"),  # 5
        ("", "RegexFullMatch"),  # 20
        ("", "EyeLike"),  # 9, 22 (with its dtype attribute)
    }
)

#: rounds of onnx inference at most, when hidden nodes wait for types onnx infers
MAX_ROUNDS = 4

Rule = Callable[[onnx.NodeProto, list], list]


# -- types -----------------------------------------------------------------------------------------


def _tensor(elem: int, dims: list | None = None) -> onnx.TypeProto:
    """A tensor TypeProto; ``dims`` holds Dimension protos, ints, strings or None (unknown)."""
    tp = onnx.TypeProto()
    tp.tensor_type.elem_type = elem
    if dims is not None:
        shape = tp.tensor_type.shape
        shape.SetInParent()
        for d in dims:
            dim = shape.dim.add()
            if isinstance(d, onnx.TensorShapeProto.Dimension):
                dim.CopyFrom(d)
            elif isinstance(d, int):
                dim.dim_value = d
            elif isinstance(d, str):
                dim.dim_param = d
    return tp


def _elem(tp: onnx.TypeProto | None) -> int:
    if tp is None or tp.WhichOneof("value") != "tensor_type":
        return TensorProto.UNDEFINED
    return tp.tensor_type.elem_type


def _dims(tp: onnx.TypeProto | None) -> list | None:
    """The Dimension protos of a tensor type, or None when the rank is unknown."""
    if tp is None or tp.WhichOneof("value") != "tensor_type":
        return None
    if not tp.tensor_type.HasField("shape"):
        return None
    return list(tp.tensor_type.shape.dim)


def _batch(tp: onnx.TypeProto | None):
    """The batch dimension N of an ai.onnx.ml input: dim 0 of a matrix, 1 for a vector (one
    sample), None (unknown) otherwise."""
    dims = _dims(tp)
    if dims is None:
        return None
    if len(dims) == 2:
        return dims[0]
    if len(dims) == 1:
        return 1
    return None


def _attrs(node: onnx.NodeProto) -> dict[str, onnx.AttributeProto]:
    return {a.name: a for a in node.attribute}


def _same_shape(elem: int, like: onnx.TypeProto | None) -> onnx.TypeProto | None:
    return _tensor(elem, _dims(like)) if elem else None


# -- rules: ai.onnx.ml -----------------------------------------------------------------------------


def _label_encoder(node, ins):
    a = _attrs(node)
    if "values_tensor" in a:
        elem = a["values_tensor"].t.data_type
    elif "values_strings" in a:
        elem = TensorProto.STRING
    elif "values_int64s" in a:
        elem = TensorProto.INT64
    elif "values_floats" in a:
        elem = TensorProto.FLOAT
    else:  # version 1: strings map to int64 and int64 to strings
        elem = {TensorProto.STRING: TensorProto.INT64, TensorProto.INT64: TensorProto.STRING}.get(
            _elem(ins[0]), TensorProto.UNDEFINED
        )
    return [_same_shape(elem, ins[0])]


def _dict_vectorizer(node, ins):
    tp = ins[0]
    if tp is None or tp.WhichOneof("value") != "map_type":
        return [None]
    return [_tensor(_elem(tp.map_type.value_type))] if _elem(tp.map_type.value_type) else [None]


def _tree_ensemble(node, ins):
    a = _attrs(node)
    n_targets = a["n_targets"].i if "n_targets" in a else None
    elem = _elem(ins[0])
    return [_tensor(elem, [_batch(ins[0]), n_targets]) if elem else None]


def _tree_ensemble_regressor(node, ins):
    a = _attrs(node)
    n_targets = a["n_targets"].i if "n_targets" in a else 1
    return [_tensor(TensorProto.FLOAT, [_batch(ins[0]), n_targets])]


def _tree_ensemble_classifier(node, ins):
    a = _attrs(node)
    if "classlabels_strings" in a:
        label, n = TensorProto.STRING, len(a["classlabels_strings"].strings)
    else:
        ints = a.get("classlabels_int64s")
        label, n = TensorProto.INT64, len(ints.ints) if ints is not None else None
    n_batch = _batch(ins[0])
    return [_tensor(label, [n_batch]), _tensor(TensorProto.FLOAT, [n_batch, n])]


def _scores_like_input(node, ins):
    """Scaler, Normalizer: float scores of the input's shape."""
    return [_tensor(TensorProto.FLOAT, _dims(ins[0]))]


def _imputer(node, ins):
    a = _attrs(node)
    if "imputed_value_int64s" in a:
        elem = TensorProto.INT64
    elif "imputed_value_floats" in a:
        elem = TensorProto.FLOAT
    else:
        elem = _elem(ins[0])
    return [_same_shape(elem, ins[0])]


def _linear_regressor(node, ins):
    a = _attrs(node)
    targets = a["targets"].i if "targets" in a else 1
    return [_tensor(TensorProto.FLOAT, [_batch(ins[0]), targets])]


def _svm_regressor(node, ins):
    return [_tensor(TensorProto.FLOAT, [_batch(ins[0]), 1])]


def _feature_vectorizer(node, ins):
    a = _attrs(node)
    sizes = list(a["inputdimensions"].ints) if "inputdimensions" in a else []
    width = sum(sizes) if len(sizes) == len(node.input) and sizes else None
    return [_tensor(TensorProto.FLOAT, [_batch(ins[0]) if ins else None, width])]


# -- rules: default domain -------------------------------------------------------------------------


def _regex_full_match(node, ins):
    return [_tensor(TensorProto.BOOL, _dims(ins[0]))]


def _eye_like(node, ins):
    a = _attrs(node)
    elem = a["dtype"].i if "dtype" in a else _elem(ins[0])
    return [_same_shape(elem, ins[0])]


#: (domain, op_type) -> rule(node, input types) -> output types (None: unknown). Every op of
#: CRASH_ON_UNTYPED_INPUT has one, and so has every ai.onnx.ml op that some version of onnx
#: leaves without inference.
RULES: dict[tuple[str, str], Rule] = {
    (ML, "LabelEncoder"): _label_encoder,
    (ML, "DictVectorizer"): _dict_vectorizer,
    (ML, "TreeEnsemble"): _tree_ensemble,
    (ML, "TreeEnsembleRegressor"): _tree_ensemble_regressor,
    (ML, "TreeEnsembleClassifier"): _tree_ensemble_classifier,
    (ML, "Scaler"): _scores_like_input,
    (ML, "Normalizer"): _scores_like_input,
    (ML, "Imputer"): _imputer,
    (ML, "LinearRegressor"): _linear_regressor,
    (ML, "SVMRegressor"): _svm_regressor,
    (ML, "FeatureVectorizer"): _feature_vectorizer,
    ("", "RegexFullMatch"): _regex_full_match,
    ("", "EyeLike"): _eye_like,
}


# -- the plan: which nodes onnx must not see -------------------------------------------------------

#: how to reach a node: (node index, attribute name, graph index or -1 for GRAPH) steps from the
#: main graph, then the node's index in its graph
Path = tuple


@dataclass
class _Plan:
    hidden: list[tuple[Path, onnx.NodeProto]] = field(default_factory=list)
    #: nodes of RULES ops that onnx infers: their outputs onnx leaves untyped get the rule's type
    ruled: list[onnx.NodeProto] = field(default_factory=list)
    risky_functions: set[tuple[str, str, str]] = field(default_factory=set)
    #: types the model declares (inputs, initializers, value_info), every graph
    declared: dict[str, onnx.TypeProto] = field(default_factory=dict)


def _subgraphs(node: onnx.NodeProto) -> Iterator[tuple[str, int, onnx.GraphProto]]:
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.name, -1, a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            for i, g in enumerate(a.graphs):
                yield a.name, i, g


def _function_key(domain: str, name: str, overload: str = "") -> tuple[str, str, str]:
    return (normalize_domain(domain), name, overload)


def _risky_functions(proto: onnx.ModelProto) -> set[tuple[str, str, str]]:
    """Local functions whose bodies (subgraphs and called functions included) hold a crashing op."""
    functions = {_function_key(f.domain, f.name, f.overload): f for f in proto.functions}
    if not functions:
        return set()

    def nodes_of(nodes) -> Iterator[onnx.NodeProto]:
        for n in nodes:
            yield n
            for _, _, g in _subgraphs(n):
                yield from nodes_of(g.node)

    calls: dict[tuple, set] = {}
    risky: set[tuple[str, str, str]] = set()
    for key, f in functions.items():
        calls[key] = set()
        for n in nodes_of(f.node):
            nk = _function_key(n.domain, n.op_type, n.overload)
            if (nk[0], nk[1]) in CRASH_ON_UNTYPED_INPUT:
                risky.add(key)
            if nk in functions:
                calls[key].add(nk)
    changed = True
    while changed:  # callers of risky functions are risky
        changed = False
        for key, callees in calls.items():
            if key not in risky and callees & risky:
                risky.add(key)
                changed = True
    return risky


def _typed(tp: onnx.TypeProto | None) -> bool:
    return tp is not None and tp.WhichOneof("value") is not None


def _declared_types(g: onnx.GraphProto, declared: dict[str, onnx.TypeProto]) -> set[str]:
    """Names with a type onnx starts from in graph ``g`` (recorded in ``declared``), and the
    names of g's inputs declared without one (they shadow outer names)."""
    untyped_inputs = set()
    for vi in g.input:
        if _typed(vi.type):
            declared.setdefault(vi.name, vi.type)
        else:
            untyped_inputs.add(vi.name)
    for vi in g.value_info:
        if _typed(vi.type):
            declared.setdefault(vi.name, vi.type)
    for t in g.initializer:
        if t.name not in declared:
            declared[t.name] = _tensor(t.data_type, list(t.dims))
    for st in g.sparse_initializer:
        name = st.values.name
        if name not in declared:
            declared[name] = _tensor(st.values.data_type, list(st.dims))
    return untyped_inputs


def plan(proto: onnx.ModelProto, risky: set[tuple[str, str, str]] | None = None) -> _Plan:
    """Find the nodes onnx must not see, and the types the model declares (``risky``: the
    model's risky local functions, when already known)."""
    p = _Plan(risky_functions=_risky_functions(proto) if risky is None else risky)
    opsets = {normalize_domain(o.domain): o.version for o in proto.opset_import}

    def walk(g: onnx.GraphProto, prefix: tuple, typed_outer: frozenset[str]) -> None:
        untyped_inputs = _declared_types(g, p.declared)
        scope_typed = set(typed_outer) - untyped_inputs
        for vi in g.input:
            if vi.name not in untyped_inputs:
                scope_typed.add(vi.name)
        scope_typed.update(vi.name for vi in g.value_info if _typed(vi.type))
        # an initializer also listed as an input without a type (IR < 4 style) is untyped to
        # onnx: the input's missing type wins over the initializer's
        scope_typed.update(t.name for t in g.initializer if t.name not in untyped_inputs)
        scope_typed.update(
            st.values.name for st in g.sparse_initializer if st.values.name not in untyped_inputs
        )
        frozen = frozenset(scope_typed)
        for i, n in enumerate(g.node):
            domain = normalize_domain(n.domain)
            key = (domain, n.op_type)
            if _function_key(n.domain, n.op_type, n.overload) in p.risky_functions:
                p.hidden.append(((*prefix, i), n))
            elif key in CRASH_ON_UNTYPED_INPUT:
                if not all(name in frozen for name in n.input):  # an empty name is untyped too
                    p.hidden.append(((*prefix, i), n))
            elif key in RULES and domain in opsets:
                facts = schema_facts(n.op_type, domain, opsets[domain])
                if facts is not None and not facts.onnx_infers:
                    p.hidden.append(((*prefix, i), n))
                else:
                    p.ruled.append(n)
            for name, gi, sub in _subgraphs(n):
                walk(sub, (*prefix, (i, name, gi)), frozen)

    walk(proto.graph, (), frozenset())
    return p


# -- inference -------------------------------------------------------------------------------------


def _run_onnx(proto: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """onnx's inference (data propagation on); {} when onnx refuses the model."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = onnx.shape_inference.infer_shapes(proto, check_type=False, data_prop=True)
    except Exception:  # best effort: an odd model keeps the types it declares
        return {}
    types: dict[str, onnx.TypeProto] = {}

    def collect(g: onnx.GraphProto) -> None:
        for vi in list(g.value_info) + list(g.output):
            if vi.HasField("type"):
                types.setdefault(vi.name, vi.type)
        for n in g.node:
            for _, _, sub in _subgraphs(n):
                collect(sub)

    collect(out.graph)
    return types


def _graph_at(root: onnx.GraphProto, steps: tuple) -> onnx.GraphProto:
    g = root
    for node_index, attr_name, graph_index in steps:
        attr = next(a for a in g.node[node_index].attribute if a.name == attr_name)
        g = attr.g if graph_index < 0 else attr.graphs[graph_index]
    return g


def _own_types(p: _Plan, known: dict[str, onnx.TypeProto]) -> dict[str, onnx.TypeProto]:
    """Output types of the hidden nodes by :data:`RULES`, in node order, repeated until nothing
    changes (each node sees the types of the hidden nodes before it)."""
    own: dict[str, onnx.TypeProto] = {}
    for _ in range(len(p.hidden) + 1):
        changed = False
        for _, node in p.hidden:
            rule = RULES.get((normalize_domain(node.domain), node.op_type))
            if rule is None:
                continue
            outs = _apply(rule, node, [_lookup(n, own, known) for n in node.input])
            for name, tp in zip(node.output, outs):
                if name and tp is not None and (name not in own or own[name] != tp):
                    own[name] = tp
                    changed = True
        if not changed:
            break
    return own


#: the ops that make a model worth a closer look
_WATCHED = CRASH_ON_UNTYPED_INPUT | frozenset(RULES)


def infer_types(
    proto: onnx.ModelProto, ops: frozenset[tuple[str, str]] | None = None
) -> dict[str, onnx.TypeProto]:
    """Value types of every graph of ``proto`` (subgraphs included), by onnx's inference with the
    crash guard described in this module's docstring. ``proto`` is not modified.

    Args:
        proto: the model (weights may be stripped: inference needs only small initializers).
        ops: the (domain, op_type) pairs the model's graphs use, when known (from
            :func:`._validate.validate_graph`); a model using none of the watched ops and calling
            no risky local function then goes straight to onnx.

    Returns:
        Value name -> TypeProto, for the values onnx or ort-core could type.
    """
    risky = _risky_functions(proto)
    if ops is not None and not ops & _WATCHED and not any((d, n) in ops for d, n, _ in risky):
        return _run_onnx(proto)
    p = plan(proto, risky)
    if not p.hidden and not p.risky_functions:
        return _fill_ruled(p, _run_onnx(proto))
    sk = onnx.ModelProto()
    sk.CopyFrom(proto)
    kept = [
        f
        for f in sk.functions
        if _function_key(f.domain, f.name, f.overload) not in p.risky_functions
    ]
    del sk.functions[:]
    sk.functions.extend(kept)
    graphs: dict[tuple, onnx.GraphProto] = {}
    for path, _ in p.hidden:
        steps = path[:-1]
        g = graphs.setdefault(steps, _graph_at(sk.graph, steps))
        stand_in = g.node[path[-1]]
        stand_in.op_type = f"Hidden_{stand_in.op_type}"
        stand_in.domain = HIDDEN_DOMAIN
        stand_in.overload = ""
        del stand_in.attribute[:]
    sk.opset_import.append(onnx.helper.make_opsetid(HIDDEN_DOMAIN, 1))
    declared_vi = {steps: len(g.value_info) for steps, g in graphs.items()}
    where = {}  # output name -> the graph its value_info goes to
    for path, node in p.hidden:
        for o in node.output:
            if o and o not in p.declared:
                where[o] = path[:-1]
    inferred: dict[str, onnx.TypeProto] = {}
    own: dict[str, onnx.TypeProto] | None = None
    for _ in range(MAX_ROUNDS):
        new_own = _own_types(p, {**p.declared, **inferred})
        if own is not None and new_own == own:
            break
        own = new_own
        for steps, g in graphs.items():
            del g.value_info[declared_vi[steps] :]
        for name, tp in own.items():
            if name in where:
                graphs[where[name]].value_info.append(onnx.helper.make_value_info(name, tp))
        inferred = _run_onnx(sk)
    out = dict(own or {})
    out.update(inferred)
    return _fill_ruled(p, out)


def _lookup(name: str, *scopes: dict[str, onnx.TypeProto]) -> onnx.TypeProto | None:
    if not name:
        return None
    for scope in scopes:
        tp = scope.get(name)
        if tp is not None:
            return tp
    return None


def _apply(rule: Rule, node: onnx.NodeProto, ins: list) -> list:
    try:
        return rule(node, ins)
    except Exception:  # a malformed attribute the rule cannot read: leave the outputs untyped
        return []


def _fill_ruled(p: _Plan, types: dict[str, onnx.TypeProto]) -> dict[str, onnx.TypeProto]:
    """Outputs of ai.onnx.ml nodes that onnx's inference left untyped (e.g. the probabilities of
    TreeEnsembleClassifier-1) get their rule's type."""
    for node in p.ruled:
        if all(not o or _typed(types.get(o)) for o in node.output):
            continue
        rule = RULES[(normalize_domain(node.domain), node.op_type)]
        outs = _apply(rule, node, [_lookup(n, types, p.declared) for n in node.input])
        for name, tp in zip(node.output, outs):
            if name and tp is not None and not _typed(types.get(name)):
                types[name] = tp
    return types
