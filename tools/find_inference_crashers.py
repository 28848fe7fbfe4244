"""Hunt for ONNX schemas whose type and shape inference crashes the process.

``onnx.shape_inference.infer_shapes`` runs each op's C++ inference function. Some of them read an
input type, an attribute or an optional input without checking that it is there, and dereference a
null pointer: the whole Python process dies with a segmentation fault, which no ``try`` can catch.
ort-core runs that inference on every model it loads, so it must know which ops crash on what and
keep such nodes away from onnx (see ``ort_core/ir/_infer.py``).

For every schema of ``onnx.defs.get_all_schemas_with_history()`` (every domain, every version) this
script builds small probe models, one node each, in many variants:

- inputs onnx has no type for: ``untyped`` (they come from an opaque custom-domain node),
  ``untyped:<i>`` (only input i), ``graph_input_no_type`` (graph inputs declared without a type),
  ``empty_type`` and ``undefined_elem_type`` (a TypeProto with nothing in it, a tensor of element
  type UNDEFINED), ``initializer_listed_without_type`` (an initializer also listed among the graph
  inputs, IR < 4 style, without a type), ``untyped_in_subgraph`` (the node inside an If branch, reading an untyped outer
  value) and ``untyped_in_function`` (the node in a model-local function called on untyped values);
- typed inputs: ``typed:<param>=<type>`` for each type the schema allows (one type parameter at a
  time), ``rank:<r>`` with shapes of rank 0, 1, 2 and 4, ``wrong_kind`` (tensors where sequences
  are expected and the other way round);
- arity: ``omit_optional``, ``omit_optional:<i>`` (optional inputs given empty names),
  ``empty_required:<i>`` (a required input given an empty name), ``too_few_inputs``,
  ``too_many_inputs``, ``too_many_outputs``, ``no_outputs``;
- attributes: ``missing_attr:<name>`` for each required one (GRAPH attributes included),
  ``missing_required_attrs``, ``wrong_attr_type:<name>:<type>``, ``empty_list:<name>``,
  ``empty_graph:<name>`` and ``untyped_graph:<name>`` (graph attributes that are empty or whose
  outputs are untyped), ``odd_attr[_shaped]:<name>:<kind>`` (out-of-range ints, NaN, empty
  strings, tensors without data or data type, attribute references outside a function, attributes
  without a type), and ``[untyped+|omit_optional+|empty_type+...]with_attrs:<a>[+<b>]`` (optional
  attributes one or two at a time: some inference functions check their attributes first and
  reach the input they dereference only when those are valid, e.g. LabelEncoder's keys_floats
  and values_strings);
- ``const:<i>:<kind>``: input i is an initializer that is empty, negative, a scalar, large or of
  rank 2, for the data-dependent parts of inference (data propagation);

and runs ``infer_shapes`` on each with ``data_prop`` on and off (``check_type=False``, as ort-core
does). Probes run in forked children, many per child; when a child dies, the probe it had started
is recorded as a crasher and a new child resumes after it. About 100,000 probes take half a minute
on two cores.

It prints a table of ``(domain, op, since_version, trigger)`` that crash or hang (``--full``: one
row per variant). With ``--through ort-core`` the same probes go through ``ort_core.ir.load_model``,
which must never crash and must raise only ``ort_core.errors`` classes: the table then lists what
ort-core's guard misses and the probes that raised another exception. ``--through session``
creates a whole ``ort_core.InferenceSession`` on the CPU provider, which checks the kernels too.

Findings with onnx 1.23.2 (run again after upgrading onnx, and update
``ort_core.ir._infer.CRASH_ON_UNTYPED_INPUT``): one class of crash, SIGSEGV when an input has no
type (untyped, undeclared graph input, empty name, inside a subgraph or a local function), in
ai.onnx.ml LabelEncoder 1, 2 and 4, DictVectorizer 1, TreeEnsemble 5, and ai.onnx RegexFullMatch
20 and EyeLike 9 and 22 (EyeLike only with its dtype attribute). Nothing else crashed: missing or
mistyped attributes, arity, empty types and constant inputs raise or are ignored. Through ort-core:
no finding.

Usage::

    python tools/find_inference_crashers.py                 # the hunt, table on stdout
    python tools/find_inference_crashers.py --jobs 4 --json crashers.json
    python tools/find_inference_crashers.py --ops LabelEncoder,Loop --verbose
    python tools/find_inference_crashers.py --through ort-core
    python tools/find_inference_crashers.py --through session --domains ai.onnx.ml
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import onnx

OPAQUE_DOMAIN = "hunt.opaque"
#: seconds a probe child may spend on one probe before it counts as hung
PROBE_TIMEOUT = 60.0


# -- probe construction ----------------------------------------------------------------------------


def schema_key(s) -> str:
    return f"{s.domain or 'ai.onnx'}|{s.name}|{s.since_version}"


def all_schemas(domains: set[str] | None = None, ops: set[str] | None = None) -> list:
    out = []
    for s in onnx.defs.get_all_schemas_with_history():
        if domains and (s.domain or "ai.onnx") not in domains:
            continue
        if ops and s.name not in ops:
            continue
        out.append(s)
    out.sort(key=lambda s: (s.domain, s.name, s.since_version))
    return out


def parse_type(text: str):
    """A TypeProto from a schema's type string (``tensor(float)``, ``seq(tensor(int64))``,
    ``map(string, tensor(float))``, ``optional(seq(tensor(bool)))``...)."""
    text = text.replace(" ", "")
    head, _, rest = text.partition("(")
    inner = rest[:-1]
    tp = onnx.TypeProto()
    if head in ("tensor", "sparse_tensor"):
        elem = onnx.TensorProto.DataType.Value(inner.upper())
        (tp.tensor_type if head == "tensor" else tp.sparse_tensor_type).elem_type = elem
    elif head == "seq":
        tp.sequence_type.elem_type.CopyFrom(parse_type(inner))
    elif head == "optional":
        tp.optional_type.elem_type.CopyFrom(parse_type(inner))
    elif head == "map":
        key, _, value = inner.partition(",")
        tp.map_type.key_type = onnx.TensorProto.DataType.Value(key.upper())
        if "(" not in value:
            value = f"tensor({value})"
        tp.map_type.value_type.CopyFrom(parse_type(value))
    else:
        raise ValueError(f"unknown type string {text!r}")
    return tp


def _with_shape(tp, shape):
    """A copy of a tensor TypeProto with a shape (``None`` entries are symbolic dimensions)."""
    out = onnx.TypeProto()
    out.CopyFrom(tp)
    if out.HasField("tensor_type"):
        sh = out.tensor_type.shape
        sh.SetInParent()
        for i, d in enumerate(shape):
            dim = sh.dim.add()
            if d is None:
                dim.dim_param = f"d{i}"
            else:
                dim.dim_value = d
    return out


@dataclass
class Spec:
    """One probe: which inputs to give and how, which attributes, which outputs."""

    inputs: list  # per input slot: ("typed", TypeProto) | ("untyped",) | ("empty",) |
    #                ("const", TensorProto) | ("graph_input_no_type",)
    attributes: list  # AttributeProto
    n_outputs: int
    context: str = "graph"  # "graph", "subgraph" (inside an If branch), "function" (model-local)


class ProbeBuilder:
    """Builds the probe models of one schema, deterministically (a probe child rebuilds the same
    list from the schema key)."""

    def __init__(self, schema):
        self.s = schema
        self.onnx = onnx
        self.type_choice = {
            t.type_param_str: list(t.allowed_type_strs) for t in schema.type_constraints
        }

    # inputs ------------------------------------------------------------------------------------
    def input_slots(self) -> list:
        """One formal parameter per input slot: variadic parameters get two slots, so that both
        arities are exercised."""
        slots = []
        for p in self.s.inputs:
            n = 2 if p.option == self.onnx.defs.OpSchema.FormalParameterOption.Variadic else 1
            slots.extend([p] * n)
        return slots

    def output_count(self) -> int:
        n = 0
        for p in self.s.outputs:
            n += 2 if p.option == self.onnx.defs.OpSchema.FormalParameterOption.Variadic else 1
        return max(n, 1)

    def type_of(self, param, choice: dict[str, str] | None = None):
        ts = param.type_str
        if ts in self.type_choice:
            ts = (choice or {}).get(ts) or self.type_choice[ts][0]
        return parse_type(ts)

    def typed_inputs(self, choice=None, shape=None) -> list:
        out = []
        for p in self.input_slots():
            tp = self.type_of(p, choice)
            if shape is not None:
                tp = _with_shape(tp, shape)
            out.append(("typed", tp))
        return out

    # attributes --------------------------------------------------------------------------------
    def small_graph(self, kind: str = "plain"):
        """A body graph: ``plain`` returns a constant, ``empty`` has nothing, ``untyped`` returns an
        opaque node's untyped output."""
        h = self.onnx.helper
        if kind == "empty":
            return h.make_graph([], "empty_body", [], [])
        if kind == "wide":
            f = self.onnx.TensorProto.FLOAT
            ins = [h.make_tensor_value_info(f"b_in{i}", f, [2]) for i in range(4)]
            nodes = [h.make_node("Identity", [f"b_in{i}"], [f"b_out{i}"]) for i in range(3)]
            outs = [h.make_tensor_value_info(f"b_out{i}", f, None) for i in range(3)]
            return h.make_graph(nodes, "wide_body", ins, outs)
        if kind == "untyped":
            node = h.make_node("Opaque", [], ["b_out"], domain=OPAQUE_DOMAIN)
            out = self.onnx.ValueInfoProto()
            out.name = "b_out"
            return h.make_graph([node], "untyped_body", [], [out])
        node = h.make_node(
            "Constant",
            [],
            ["b_out"],
            value=h.make_tensor("c", self.onnx.TensorProto.FLOAT, [], [1]),
        )
        out = h.make_tensor_value_info("b_out", self.onnx.TensorProto.FLOAT, [])
        return h.make_graph([node], "body", [], [out])

    def attribute(self, name: str, atype):
        """An attribute of the given AttrType with a plausible value."""
        onnx = self.onnx
        A = onnx.defs.OpSchema.AttrType
        a = onnx.AttributeProto()
        a.name = name
        if atype == A.FLOAT:
            a.type, a.f = onnx.AttributeProto.FLOAT, 1.0
        elif atype == A.INT:
            a.type, a.i = onnx.AttributeProto.INT, 1
        elif atype == A.STRING:
            a.type, a.s = onnx.AttributeProto.STRING, b"a"
        elif atype == A.TENSOR:
            a.type = onnx.AttributeProto.TENSOR
            a.t.CopyFrom(onnx.helper.make_tensor("t", onnx.TensorProto.FLOAT, [1], [1.0]))
        elif atype == A.GRAPH:
            a.type = onnx.AttributeProto.GRAPH
            a.g.CopyFrom(self.small_graph())
        elif atype == A.FLOATS:
            a.type = onnx.AttributeProto.FLOATS
            a.floats.extend([1.0])
        elif atype == A.INTS:
            a.type = onnx.AttributeProto.INTS
            a.ints.extend([1])
        elif atype == A.STRINGS:
            a.type = onnx.AttributeProto.STRINGS
            a.strings.extend([b"a"])
        elif atype == A.TENSORS:
            a.type = onnx.AttributeProto.TENSORS
            a.tensors.extend([onnx.helper.make_tensor("t", onnx.TensorProto.FLOAT, [1], [1.0])])
        elif atype == A.GRAPHS:
            a.type = onnx.AttributeProto.GRAPHS
            a.graphs.extend([self.small_graph()])
        elif atype in (A.SPARSE_TENSOR, A.SPARSE_TENSORS):
            values = onnx.helper.make_tensor("v", onnx.TensorProto.FLOAT, [1], [1.0])
            indices = onnx.helper.make_tensor("i", onnx.TensorProto.INT64, [1], [0])
            sp = onnx.helper.make_sparse_tensor(values, indices, [2])
            if atype == A.SPARSE_TENSOR:
                a.type = onnx.AttributeProto.SPARSE_TENSOR
                a.sparse_tensor.CopyFrom(sp)
            else:
                a.type = onnx.AttributeProto.SPARSE_TENSORS
                a.sparse_tensors.extend([sp])
        elif atype in (A.TYPE_PROTO, A.TYPE_PROTOS):
            tp = parse_type("tensor(float)")
            if atype == A.TYPE_PROTO:
                a.type = onnx.AttributeProto.TYPE_PROTO
                a.tp.CopyFrom(tp)
            else:
                a.type = onnx.AttributeProto.TYPE_PROTOS
                a.type_protos.extend([tp])
        else:
            return None
        return a

    def required_attributes(self, skip: str | None = None) -> list:
        out = []
        for name, a in sorted(self.s.attributes.items()):
            if a.required and name != skip:
                attr = self.attribute(name, a.type)
                if attr is not None:
                    out.append(attr)
        return out

    def wrong_types(self, atype) -> list:
        A = self.onnx.defs.OpSchema.AttrType
        swap = {
            A.INT: A.INTS, A.INTS: A.INT, A.FLOAT: A.FLOATS, A.FLOATS: A.FLOAT,
            A.STRING: A.STRINGS, A.STRINGS: A.STRING, A.TENSOR: A.TENSORS,
            A.TENSORS: A.TENSOR, A.GRAPH: A.GRAPHS, A.GRAPHS: A.GRAPH,
            A.SPARSE_TENSOR: A.TENSOR, A.SPARSE_TENSORS: A.TENSORS, A.TYPE_PROTO: A.INT,
            A.TYPE_PROTOS: A.INTS,
        }  # fmt: skip
        other = A.INT if atype in (A.STRING, A.STRINGS) else A.STRING
        return [t for t in (swap.get(atype), other, A.GRAPH) if t is not None and t != atype]

    def attribute_sets(self) -> Iterator[tuple[str, list]]:
        """Optional attributes to add to the required ones: each alone, each pair, and all."""
        optional = []
        for name, a in sorted(self.s.attributes.items()):
            if not a.required:
                attr = self.attribute(name, a.type)
                if attr is not None:
                    optional.append(attr)
        for i, a in enumerate(optional):
            yield a.name, [a]
            for b in optional[i + 1 :]:
                yield f"{a.name}+{b.name}", [a, b]
        if len(optional) > 2:
            yield "all", optional

    # variants ----------------------------------------------------------------------------------
    def variants(self) -> Iterator[tuple[str, Spec]]:
        """Every (variant name, Spec) of this schema, in a fixed order."""
        onnx = self.onnx
        A = onnx.defs.OpSchema.AttrType
        slots = self.input_slots()
        n_out = self.output_count()
        attrs = self.required_attributes()
        typed = self.typed_inputs()
        yield "base", Spec(typed, attrs, n_out)
        if slots:
            yield "untyped", Spec([("untyped",)] * len(slots), attrs, n_out)
            yield "graph_input_no_type", Spec([("graph_input_no_type",)] * len(slots), attrs, n_out)
            # a type that is there but says nothing: no value at all, or a tensor of element
            # type UNDEFINED (a malformed model can hold either)
            empty = ("typed", onnx.TypeProto())
            undefined = ("typed", parse_type("tensor(float)"))
            undefined[1].tensor_type.elem_type = onnx.TensorProto.UNDEFINED
            for label, slot in (("empty_type", empty), ("undefined_elem_type", undefined)):
                yield label, Spec([slot] * len(slots), attrs, n_out)
                for extra_label, extra in self.attribute_sets():
                    if "+" not in extra_label:
                        yield (
                            f"{label}+with_attrs:{extra_label}",
                            Spec([slot] * len(slots), attrs + extra, n_out),
                        )
            if len(slots) > 1:
                for i in range(len(slots)):
                    inputs = list(typed)
                    inputs[i] = ("untyped",)
                    yield f"untyped:{i}", Spec(inputs, attrs, n_out)
        for param, allowed in sorted(self.type_choice.items()):
            if not any(p.type_str == param for p in slots):
                continue
            for t in allowed[1:]:
                yield f"typed:{param}={t}", Spec(self.typed_inputs({param: t}), attrs, n_out)
        if slots:
            for r, shape in (("0", []), ("1", [3]), ("2", [None, 3]), ("4", [1, 2, None, 3])):
                yield f"rank:{r}", Spec(self.typed_inputs(shape=shape), attrs, n_out)
            wrong = []
            for _, tp in typed:
                wrong.append(("typed", parse_type("tensor(float)")))
                if tp.HasField("tensor_type"):
                    wrong[-1] = ("typed", parse_type("seq(tensor(float))"))
            yield "wrong_kind", Spec(wrong, attrs, n_out)
        optional = [
            i
            for i, p in enumerate(slots)
            if p.option == onnx.defs.OpSchema.FormalParameterOption.Optional
        ]
        if optional:
            yield (
                "omit_optional",
                Spec(
                    [("empty",) if i in optional else t for i, t in enumerate(typed)], attrs, n_out
                ),
            )
            for i in optional:
                inputs = list(typed)
                inputs[i] = ("empty",)
                yield f"omit_optional:{i}", Spec(inputs, attrs, n_out)
        for i, p in enumerate(slots):
            if p.option == onnx.defs.OpSchema.FormalParameterOption.Single:
                inputs = list(typed)
                inputs[i] = ("empty",)
                yield f"empty_required:{i}", Spec(inputs, attrs, n_out)
        if self.s.min_input > 0:
            yield "too_few_inputs", Spec(typed[: self.s.min_input - 1], attrs, n_out)
        if self.s.max_input < 1000:
            extra = typed + [("typed", parse_type("tensor(float)"))] * 2
            yield "too_many_inputs", Spec(extra, attrs, n_out)
        if self.s.max_output < 1000:
            yield "too_many_outputs", Spec(typed, attrs, self.s.max_output + 2)
        yield "no_outputs", Spec(typed, attrs, 0)
        required = [n for n, a in sorted(self.s.attributes.items()) if a.required]
        for name in required:
            yield f"missing_attr:{name}", Spec(typed, self.required_attributes(skip=name), n_out)
        if len(required) > 1:
            yield "missing_required_attrs", Spec(typed, [], n_out)
        for name, a in sorted(self.s.attributes.items()):
            rest = [x for x in attrs if x.name != name]
            for wt in self.wrong_types(a.type):
                bad = self.attribute(name, wt)
                yield f"wrong_attr_type:{name}:{wt.name}", Spec(typed, [*rest, bad], n_out)
            if a.type in (A.INTS, A.FLOATS, A.STRINGS, A.TENSORS, A.GRAPHS):
                empty = onnx.AttributeProto()
                empty.name = name
                empty.type = int(a.type.value)
                yield f"empty_list:{name}", Spec(typed, [*rest, empty], n_out)
            if a.type == A.GRAPH:
                for kind in ("empty", "untyped"):
                    g = onnx.helper.make_attribute(name, self.small_graph(kind))
                    yield f"{kind}_graph:{name}", Spec(typed, [*rest, g], n_out)
        # optional attributes, one or two at a time (a pair like LabelEncoder's keys_floats and
        # values_strings is what gets some inference functions past their attribute checks to
        # the input they read), on typed inputs, untyped inputs and omitted optional inputs
        conditions = [("", typed)]
        if slots:
            conditions.append(("untyped+", [("untyped",)] * len(slots)))
        if optional:
            omitted = [("empty",) if i in optional else t for i, t in enumerate(typed)]
            conditions.append(("omit_optional+", omitted))
        for label, extra in self.attribute_sets():
            for prefix, inputs in conditions:
                yield f"{prefix}with_attrs:{label}", Spec(inputs, attrs + extra, n_out)
        # odd attribute values (out of range, empty, undefined), on inputs with and without shapes
        shaped = self.typed_inputs(shape=[2, 3])
        for name, a in sorted(self.s.attributes.items()):
            rest = [x for x in attrs if x.name != name]
            for kind, odd in self.odd_attributes(name, a.type):
                yield f"odd_attr:{name}:{kind}", Spec(typed, [*rest, odd], n_out)
                yield f"odd_attr_shaped:{name}:{kind}", Spec(shaped, [*rest, odd], n_out)
        # initializers also listed as graph inputs without a type: onnx takes the input's
        # (missing) type, not the initializer's
        listed = []
        for _, tp in typed:
            consts = (
                list(self.odd_constants(tp.tensor_type.elem_type))
                if tp.HasField("tensor_type")
                and tp.tensor_type.elem_type != onnx.TensorProto.STRING
                else []
            )
            consts = [t for kind, t in consts if kind == "rank2"]
            listed.append(("const_listed_without_type", consts[0]) if consts else ("untyped",))
        if listed:
            yield "initializer_listed_without_type", Spec(listed, attrs, n_out)
            for label, extra in self.attribute_sets():
                if "+" not in label:
                    yield (
                        f"initializer_listed_without_type+with_attrs:{label}",
                        Spec(listed, attrs + extra, n_out),
                    )
        # constant inputs for data propagation, the other inputs with shapes
        for i, (_, tp) in enumerate(typed):
            if (
                not tp.HasField("tensor_type")
                or tp.tensor_type.elem_type == onnx.TensorProto.STRING
            ):
                continue
            for kind, t in self.odd_constants(tp.tensor_type.elem_type):
                inputs = list(shaped)
                inputs[i] = ("const", t)
                yield f"const:{i}:{kind}", Spec(inputs, attrs, n_out)
        # the untyped inputs seen from inside a subgraph and through a model-local function
        if slots:
            untyped = [("untyped",)] * len(slots)
            for context in ("subgraph", "function"):
                yield f"untyped_in_{context}", Spec(untyped, attrs, n_out, context)
                for label, extra in self.attribute_sets():
                    if label == "all" or "+" not in label:
                        yield (
                            f"untyped_in_{context}+with_attrs:{label}",
                            Spec(untyped, attrs + extra, n_out, context),
                        )

    def odd_constants(self, elem: int) -> Iterator[tuple[str, object]]:
        """Initializers of element type ``elem`` with values inference may not expect."""
        onnx = self.onnx
        try:
            np_dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
        except Exception:  # exotic element types: no constant probes
            return
        for kind, dims, vals in (
            ("empty", [0], []),
            ("neg", [2], [-1, -7]),
            ("scalar", [], [0]),
            ("big", [1], [100000]),
            ("rank2", [1, 2], [1, 2]),
        ):
            try:
                t = onnx.numpy_helper.from_array(np.array(vals).astype(np_dtype).reshape(dims), "c")
            except Exception:  # values the type cannot hold
                continue
            yield kind, t

    def odd_attributes(self, name: str, atype) -> Iterator[tuple[str, object]]:
        """Attributes of the right type with values inference may not expect."""
        onnx = self.onnx
        A = onnx.defs.OpSchema.AttrType
        h = onnx.helper
        if atype == A.INT:
            for v in (-1, 0, 1000, 2**40):
                yield str(v), h.make_attribute(name, v)
        elif atype == A.INTS:
            for label, v in (("neg", [-1, -1]), ("big", [1000]), ("long", [1] * 9)):
                yield label, h.make_attribute(name, v)
        elif atype == A.FLOAT:
            yield "nan", h.make_attribute(name, float("nan"))
        elif atype == A.STRING:
            yield "empty", h.make_attribute(name, "")
        elif atype == A.STRINGS:
            yield "empty_strings", h.make_attribute(name, ["", ""])
        elif atype == A.TENSOR:
            t = onnx.TensorProto()
            t.name = "t"
            yield "undefined_tensor", h.make_attribute(name, t)
            t2 = onnx.TensorProto()
            t2.data_type = onnx.TensorProto.FLOAT
            t2.dims.extend([2, 3])
            yield "tensor_without_data", h.make_attribute(name, t2)
        elif atype == A.GRAPH:
            yield "wide_graph", h.make_attribute(name, self.small_graph("wide"))
        ref = onnx.AttributeProto()  # a reference, which only a function body may hold
        ref.name = name
        ref.type = int(atype.value)
        ref.ref_attr_name = name
        yield "ref_attr", ref
        untyped = onnx.AttributeProto()
        untyped.name = name
        yield "no_type", untyped

    def model(self, spec: Spec):
        """The probe model of one Spec."""
        onnx = self.onnx
        h = onnx.helper
        nodes, graph_inputs, inits = [], [], []
        names = []
        for i, slot in enumerate(spec.inputs):
            name = f"x{i}"
            kind = slot[0]
            if kind == "empty":
                names.append("")
                continue
            names.append(name)
            if kind == "typed":
                vi = onnx.ValueInfoProto()
                vi.name = name
                vi.type.CopyFrom(slot[1])
                graph_inputs.append(vi)
            elif kind == "untyped":
                nodes.append(h.make_node("Opaque", [], [name], domain=OPAQUE_DOMAIN))
            elif kind == "graph_input_no_type":
                vi = onnx.ValueInfoProto()
                vi.name = name
                graph_inputs.append(vi)
            elif kind in ("const", "const_listed_without_type"):
                t = onnx.TensorProto()
                t.CopyFrom(slot[1])
                t.name = name
                inits.append(t)
                if kind == "const_listed_without_type":  # IR < 4 style, the input untyped
                    vi = onnx.ValueInfoProto()
                    vi.name = name
                    graph_inputs.append(vi)
        outs = [f"y{i}" for i in range(spec.n_outputs)]
        node = h.make_node(self.s.name, names, outs, name="probe", domain=self.s.domain)
        node.attribute.extend(spec.attributes)
        opsets = [h.make_opsetid(self.s.domain, self.s.since_version)]
        if self.s.domain not in ("", "ai.onnx"):
            opsets.append(h.make_opsetid("", onnx.defs.onnx_opset_version()))
        functions = []
        if spec.context == "subgraph":  # the probe inside both branches of an If
            cond = h.make_tensor_value_info("cond", onnx.TensorProto.BOOL, [])
            graph_inputs.append(cond)
            branch = h.make_graph([node], "branch", [], [_untyped_value(o) for o in outs])
            wrap = [f"z{i}" for i in range(len(outs))]
            nodes.append(h.make_node("If", ["cond"], wrap, then_branch=branch, else_branch=branch))
            outs = wrap
        elif spec.context == "function":  # the probe as the body of a model-local function
            fn = h.make_function("hunt.local", "F", [n for n in names if n], outs, [node], opsets)
            functions.append(fn)
            nodes.append(h.make_node("F", [n for n in names if n], outs, domain="hunt.local"))
            opsets = [*opsets, h.make_opsetid("hunt.local", 1)]
        else:
            nodes.append(node)
        graph = h.make_graph(nodes, "probe", graph_inputs, [_untyped_value(o) for o in outs], inits)
        opsets.append(h.make_opsetid(OPAQUE_DOMAIN, 1))
        if spec.context == "subgraph" and self.s.domain not in ("", "ai.onnx"):
            pass  # the default domain is imported already
        elif spec.context == "subgraph" and self.s.since_version < 11:
            opsets[0] = h.make_opsetid("", 11)  # If with empty-input branches
        m = h.make_model(graph, opset_imports=opsets, functions=functions)
        m.ir_version = onnx.IR_VERSION
        return m


def _untyped_value(name: str):
    vi = onnx.ValueInfoProto()
    vi.name = name
    return vi


def probe_specs(schema) -> Iterator[tuple[str, int, ProbeBuilder, Spec]]:
    """(variant, data_prop, builder, spec) of every probe of a schema; models are built on demand
    so that resuming after a crash skips the probes already run cheaply."""
    b = ProbeBuilder(schema)
    for name, spec in b.variants():
        for dp in (1, 0):
            yield name, dp, b, spec


# -- probes in forked children ---------------------------------------------------------------------


def _child(fd: int, keys: list[str], start: int, through: str) -> None:
    """Run the probes of ``keys`` from the ``start``-th on, in this forked child. Writes one line
    ``S <n> <key> <variant> <data_prop>`` before a probe and ``E <n> <outcome>`` after it, so
    that a probe that kills the child is the last one started and not ended."""
    by_key = {schema_key(s): s for s in onnx.defs.get_all_schemas_with_history()}
    if through != "onnx":
        import ort_core
        from ort_core import errors
        from ort_core.ir import load_model
    n = -1
    for key in keys:
        for variant, dp, builder, spec in probe_specs(by_key[key]):
            n += 1
            if n < start:
                continue
            if through != "onnx" and not dp:
                continue  # ort-core chooses its own inference settings: one probe is enough
            try:
                model = builder.model(spec)
            except Exception:  # a variant onnx cannot even build is not a probe
                continue
            os.write(fd, f"S {n} {key} {variant.replace(' ', '')} {dp}\n".encode())
            outcome = "ok"
            try:
                if through == "ort-core":
                    load_model(model)
                elif through == "session":
                    ort_core.InferenceSession(model, providers=["CPUExecutionProvider"])
                else:
                    onnx.shape_inference.infer_shapes(model, check_type=False, data_prop=bool(dp))
            except Exception as e:
                outcome = "error"
                if through != "onnx" and not isinstance(e, errors.OrtError):
                    outcome = "untyped_error:" + type(e).__name__
            os.write(fd, f"E {n} {outcome}\n".encode())


@dataclass
class Finding:
    """A probe that crashed (or, through ort-core, raised something else than ort_core.errors)."""

    key: str
    variant: str
    data_prop: int
    outcome: str  # "SIGSEGV", "SIGABRT", "exit 3", "hang", or "untyped_error:<Class>"


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return signal.Signals(sig).name
        except ValueError:
            return f"signal {sig}"
    return f"exit {os.WEXITSTATUS(status)}"


@dataclass
class _Run:
    """A forked child working through one chunk of schemas."""

    keys: list[str]
    pid: int
    fd: int
    buffer: bytes = b""
    current: tuple | None = None  # (n, key, variant, dp) of the probe started and not ended
    last: float = 0.0
    probes: int = 0


def _fork(keys: list[str], start: int, through: str) -> _Run:
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: run the probes, never return into the hunter's code
        os.close(r)
        status = 0
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # onnx may print; only the pipe carries results
            os.dup2(devnull, 2)
            _child(w, keys, start, through)
        except BaseException:
            status = 3
        finally:
            os._exit(status)
    os.close(w)
    return _Run(keys, pid, r, last=time.monotonic())


def hunt(
    schemas: list, jobs: int, through: str, verbose: bool, chunk: int = 4
) -> tuple[list[Finding], int]:
    """Run every schema's probes in up to ``jobs`` forked children at once; when a child dies,
    record the probe it had started and fork a new one that resumes after it."""
    pending = [
        [schema_key(s) for s in schemas[i : i + chunk]] for i in range(0, len(schemas), chunk)
    ]
    pending.reverse()
    sel = selectors.DefaultSelector()
    findings: list[Finding] = []
    total = 0
    running: dict[int, _Run] = {}

    def start(keys: list[str], at: int) -> None:
        run = _fork(keys, at, through)
        running[run.fd] = run
        sel.register(run.fd, selectors.EVENT_READ)

    def finish(run: _Run, hung: bool) -> None:
        nonlocal total
        sel.unregister(run.fd)
        os.close(run.fd)
        del running[run.fd]
        if hung:
            os.kill(run.pid, signal.SIGKILL)
        _, status = os.waitpid(run.pid, 0)
        total += run.probes
        if run.current is None:
            if status != 0:
                raise RuntimeError(f"a probe child for {run.keys} failed outside a probe")
            if verbose:
                print(f"  done {run.keys[0]} .. {run.keys[-1]}", file=sys.stderr)
            return
        n, key, variant, dp = run.current
        outcome = "hang" if hung else _describe(status)
        findings.append(Finding(key, variant, dp, outcome))
        if verbose:
            print(f"  {outcome}: {key} {variant} data_prop={dp}", file=sys.stderr)
        start(run.keys, n + 1)

    while pending or running:
        while pending and len(running) < max(1, jobs):
            start(pending.pop(), 0)
        for key, _ in sel.select(timeout=1.0):
            run = running[key.fd]
            data = os.read(run.fd, 65536)
            if not data:
                finish(run, hung=False)
                continue
            run.last = time.monotonic()
            run.buffer += data
            *lines, run.buffer = run.buffer.split(b"\n")
            for line in lines:
                tag, n, *rest = line.decode().split(" ")
                if tag == "S":
                    run.current = (int(n), rest[0], rest[1], int(rest[2]))
                    run.probes += 1
                    continue
                if rest and rest[0].startswith("untyped_error") and run.current is not None:
                    _, key_, variant, dp = run.current
                    findings.append(Finding(key_, variant, dp, rest[0]))
                run.current = None
        now = time.monotonic()
        for run in list(running.values()):
            if now - run.last > PROBE_TIMEOUT:
                finish(run, hung=True)
    return findings, total


# -- report ----------------------------------------------------------------------------------------

#: variant prefixes -> the trigger they exercise, for the summary table
TRIGGERS = (
    ("untyped_in_subgraph", "input without type (inside a subgraph)"),
    ("untyped_in_function", "input without type (in a local function)"),
    ("untyped+with_attrs", "input without type (valid attributes)"),
    ("untyped", "input without type"),
    ("graph_input_no_type", "input without type (graph input)"),
    ("empty_type", "input with an empty TypeProto"),
    ("initializer_listed_without_type", "initializer listed as a graph input without type"),
    ("undefined_elem_type", "input tensor of element type UNDEFINED"),
    ("omit_optional+with_attrs", "optional input omitted (valid attributes)"),
    ("omit_optional", "optional input omitted"),
    ("empty_required", "required input with empty name"),
    ("too_few_inputs", "too few inputs"),
    ("too_many_inputs", "too many inputs"),
    ("too_many_outputs", "too many outputs"),
    ("no_outputs", "no outputs"),
    ("missing_attr", "required attribute missing"),
    ("missing_required_attrs", "required attribute missing"),
    ("wrong_attr_type", "attribute of the wrong type"),
    ("empty_list", "empty list attribute"),
    ("empty_graph", "empty graph attribute"),
    ("untyped_graph", "graph attribute with untyped outputs"),
    ("with_attrs", "typed inputs, valid attributes"),
    ("typed", "typed inputs"),
    ("rank", "typed inputs with shapes"),
    ("wrong_kind", "sequence/tensor mixed up"),
    ("const", "constant input (data propagation)"),
    ("odd_attr_shaped", "odd attribute value"),
    ("odd_attr", "odd attribute value"),
    ("base", "typed inputs, required attributes"),
)


def trigger_of(variant: str) -> str:
    """The kind of trigger a variant exercises (the ``odd_attr`` ones keep their kind of value)."""
    for prefix, trigger in TRIGGERS:
        if variant == prefix or variant.startswith((prefix + ":", prefix + "+")):
            if prefix.startswith("odd_attr"):
                return f"{trigger}: {variant.rsplit(':', 1)[-1]}"
            return trigger
    return variant


def table(findings: list[Finding], full: bool = False) -> str:
    """The findings as a text table. By default one row per (domain, op, trigger, outcome) with
    versions and data_prop merged, the number of probes and one example variant; with ``full``
    one row per variant."""
    groups: dict[tuple, dict] = defaultdict(lambda: {"versions": set(), "dp": set(), "v": set()})
    for f in findings:
        domain, op, version = f.key.split("|")
        what = f.variant if full else trigger_of(f.variant)
        g = groups[(domain, op, what, f.outcome)]
        g["versions"].add(int(version))
        g["dp"].add(f.data_prop)
        g["v"].add(f.variant)
    header = ("domain", "op", "since_version", "variant" if full else "trigger", "data_prop")
    rows = [(*header, "outcome", "probes", "example")]
    for (domain, op, what, outcome), g in sorted(groups.items()):
        dp = "/".join("on" if d else "off" for d in sorted(g["dp"], reverse=True))
        versions = ",".join(str(v) for v in sorted(g["versions"]))
        example = "" if full else min(g["v"], key=lambda v: (len(v), v))
        rows.append((domain, op, versions, what, dp, outcome, str(len(g["v"])), example))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns 1 when anything crashed."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="POSIX only: probes run in forked children.",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=max(1, min(4, os.cpu_count() or 2)),
        help="probe children running at once (default: the cores, up to 4)",
    )
    p.add_argument("--domains", help="comma-separated domains (ai.onnx, ai.onnx.ml, ...)")
    p.add_argument("--ops", help="comma-separated op types")
    p.add_argument(
        "--through",
        choices=("onnx", "ort-core", "session"),
        default="onnx",
        help="run the probes through onnx.shape_inference (the hunt), ort_core.ir.load_model "
        "(checks ort-core's guard) or a whole ort_core.InferenceSession on the CPU provider "
        "(also checks that kernels reject malformed nodes with typed errors)",
    )
    p.add_argument("--full", action="store_true", help="one table row per variant")
    p.add_argument("--json", help="also write the findings to this JSON file")
    p.add_argument("--verbose", action="store_true", help="progress and crashes on stderr")
    args = p.parse_args(argv)
    domains = set(args.domains.split(",")) if args.domains else None
    ops = set(args.ops.split(",")) if args.ops else None
    schemas = all_schemas(domains, ops)
    if args.through != "onnx":
        # ort-core registers its plugins' schemas with onnx; do it once here, before forking,
        # so that every child sees the same schema list
        import ort_core.plugins

        ort_core.plugins.get_plugin_manager().load()
    t0 = time.perf_counter()
    findings, total = hunt(schemas, args.jobs, args.through, args.verbose)
    elapsed = time.perf_counter() - t0
    print(
        f"# onnx {onnx.__version__}: {len(schemas)} schemas, {total} probes through "
        f"{args.through}, {len(findings)} findings, {elapsed:.0f} s"
    )
    if findings:
        print(table(findings, args.full))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "onnx": onnx.__version__,
                    "through": args.through,
                    "schemas": len(schemas),
                    "probes": total,
                    "findings": [f.__dict__ for f in findings],
                },
                f,
                indent=1,
            )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
