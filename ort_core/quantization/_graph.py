"""Small helpers for editing onnx graphs: types, consumers, topological order, opsets."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import onnx
from onnx import TensorProto

logger = logging.getLogger(__name__)

MS_DOMAIN = "com.microsoft"


def infer_types(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with onnx shape inference applied; the model unchanged when inference fails."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as exc:  # inference is a help here, never a requirement
        logger.info("onnx shape inference failed (%s); quantizing with the types present", exc)
        return model


def elem_types(graph: onnx.GraphProto) -> dict[str, int]:
    """Element type by tensor name, from inputs, outputs, value_info and initializers."""
    types: dict[str, int] = {}
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    return types


def opset_of(model: onnx.ModelProto, domain: str = "") -> int:
    for o in model.opset_import:
        if o.domain in (domain, "ai.onnx" if domain == "" else domain):
            return o.version
    return 0


def ensure_domain(model: onnx.ModelProto, domain: str, version: int = 1) -> None:
    if not any(o.domain == domain for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(domain, version))


def require_opset(model: onnx.ModelProto, version: int, why: str) -> onnx.ModelProto:
    """The model at default-domain opset ``version`` or above, converted with onnx's version
    converter when lower; a ValueError saying why when the conversion fails."""
    current = opset_of(model)
    if current >= version:
        return model
    logger.warning("%s needs opset %d; converting the model from opset %d", why, version, current)
    try:
        converted = onnx.version_converter.convert_version(model, version)
    except Exception as exc:
        raise ValueError(
            f"{why} needs opset >= {version} but the model has opset {current} and onnx's version "
            f"converter failed ({exc}); convert the model to opset {version} first"
        ) from exc
    return converted


def consumers(nodes: Iterable[onnx.NodeProto]) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for name in n.input:
            if name:
                out.setdefault(name, []).append(n)
    return out


def producers(nodes: Iterable[onnx.NodeProto]) -> dict[str, onnx.NodeProto]:
    return {o: n for n in nodes for o in n.output if o}


def topo_sort(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """``nodes`` in an order where each node follows the producers of its inputs (stable: the
    given order is kept where it is already valid). Names produced outside ``nodes`` count as
    available (graph inputs, initializers, outer scopes)."""
    produced = producers(nodes)
    ready = set()
    for n in nodes:
        ready.update(i for i in _all_inputs(n) if i not in produced)
    order, done, pending = [], set(), list(range(len(nodes)))
    while pending:
        progress = False
        rest = []
        for idx in pending:
            n = nodes[idx]
            if all(not i or i in ready for i in _all_inputs(n)):
                order.append(n)
                ready.update(n.output)
                done.add(idx)
                progress = True
            else:
                rest.append(idx)
        if not progress:
            missing = sorted({i for idx in rest for i in nodes[idx].input if i and i not in ready})
            raise ValueError(f"the rewritten graph has a cycle or missing tensors: {missing[:5]}")
        pending = rest
    return order


def _all_inputs(node: onnx.NodeProto) -> list[str]:
    """The node's inputs and the outer-scope names its subgraphs read."""
    names = list(node.input)
    for attr in node.attribute:
        for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
            local = {i.name for i in g.input} | {i.name for i in g.initializer}
            local |= {o for n in g.node for o in n.output}
            for n in g.node:
                names.extend(i for i in _all_inputs(n) if i and i not in local)
    return names


def is_float(types: dict[str, int], name: str) -> bool:
    return types.get(name) == TensorProto.FLOAT


def attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default
