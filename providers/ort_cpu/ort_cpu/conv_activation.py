"""Conv followed by HardSwish, or by QuickGelu (SiLU), as one kernel of the CPU provider.

MobileNetV3-style networks follow most convolutions with HardSwish, YOLO-style ones with SiLU
(which the optimizer fuses into com.microsoft QuickGelu, alpha 1). onnxruntime's FusedConv takes
neither, so the optimizer leaves the pair (and a saved optimized model keeps it); the CPU
provider claims it as a fused subgraph at partitioning (:func:`find`) and compiles it
(:func:`compile_pair`) into its FusedConv kernel with the activation applied as the output is
written (the compiled convolutions' epilogue codes 5 and 6), not as a second node with its own
call and pass over the output (an OCR classifier's 18 pairs: about 2 us each on its small maps;
YOLO-n's 57 SiLUs at 640 x 640: 7.8 ms of passes over outputs as large as 6.5 MB). Only at the
EXTENDED level and above, for a 2-D float32 Conv with constant weights (and bias) whose output
only the activation reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ort_core._onnx import helper
from ort_core.ir import Graph, Node, tensor_dtype, tensor_shape
from ort_core.provider import GraphView

from .squeeze_excite import graph_maps

#: the activations a Conv is fused with: (op type, domain)
_ACTIVATIONS = {("HardSwish", ""), ("QuickGelu", "com.microsoft")}


def find(view: GraphView, claimed: set[int]) -> list[list[Node]]:
    """[Conv, HardSwish], [Conv, QuickGelu] and [Conv, Sigmoid, Mul] (SiLU: the optimizer makes
    it QuickGelu after partitioning) groups among ``view``'s nodes, all in ``claimed``."""
    _, readers, outputs = graph_maps(view.graph)
    groups = []
    for conv in view.nodes:
        if conv.op_type != "Conv" or conv.domain or id(conv) not in claimed:
            continue
        out = conv.outputs[0] if len(conv.outputs) == 1 else ""
        if not out or out in outputs:
            continue
        tail = _activation(readers.get(out, []), out, readers, outputs)
        if tail is None or any(id(n) not in claimed for n in tail):
            continue
        xt = view.type_of(conv.inputs[0])
        shape = tensor_shape(xt)
        if tensor_dtype(xt) != np.dtype(np.float32) or shape is None or len(shape) != 4:
            continue
        w = view.constant(conv.inputs[1]) if len(conv.inputs) > 1 else None
        if w is None or w.dtype != np.float32 or w.ndim != 4:
            continue
        if len(conv.inputs) > 2 and conv.inputs[2] and view.constant(conv.inputs[2]) is None:
            continue
        groups.append([conv, *tail])
    return groups


def _activation(users: list, out: str, readers: dict, outputs) -> list | None:
    """The activation nodes that alone read the convolution's output ``out``: one HardSwish or
    QuickGelu, or a Sigmoid of it and the Mul of it by that Sigmoid (in either order); else
    None."""
    if len(users) == 1 and (users[0].op_type, users[0].domain) in _ACTIVATIONS:
        return [users[0]]
    if len(users) != 2:
        return None
    ops = sorted(users, key=lambda n: n.op_type != "Sigmoid")
    sig, mul = ops
    if (sig.op_type, sig.domain, mul.op_type, mul.domain) != ("Sigmoid", "", "Mul", ""):
        return None
    gate = sig.outputs[0]
    if (
        gate in outputs
        or readers.get(gate, []) != [mul]
        or sorted(mul.inputs) != sorted([out, gate])
    ):
        return None
    return [sig, mul]


def compile_pair(sub: Graph, opsets: dict[str, int], provider: Any) -> Callable[..., Any]:
    """The callable of a fused group (``sub`` as :func:`find` chose it, the model's ``opsets``):
    ``run(x) -> [y]``, the provider's FusedConv kernel for the Conv's attributes with the
    activation (QuickGelu's alpha as its parameter)."""
    conv, *tail = sub.nodes
    act = tail[-1]
    attributes = dict(conv.attributes)
    name = "HardSwish" if act.op_type == "HardSwish" else "QuickGelu"
    attributes["activation"] = helper.make_attribute("activation", name)
    # QuickGelu's alpha where it gives one (else FusedConv's default, QuickGelu's); SiLU's 1
    alpha = act.attributes.get("alpha") if act.op_type == "QuickGelu" else None
    params = [1.0] if act.op_type == "Mul" else None if alpha is None else [alpha.f]
    if params is not None:
        attributes["activation_params"] = helper.make_attribute("activation_params", params)
    fused = Node(
        "FusedConv", list(conv.inputs), list(act.outputs), domain="com.microsoft",
        name=conv.name, attributes=attributes,
    )  # fmt: skip
    info = GraphView(sub, opsets).kernel_info(fused, provider)
    kernel = provider.create_kernel(info)
    w = sub.initializers[conv.inputs[1]]
    b = sub.initializers[conv.inputs[2]] if len(conv.inputs) > 2 and conv.inputs[2] else None

    def run(x):
        return [kernel(x, w) if b is None else kernel(x, w, b)]

    return run
