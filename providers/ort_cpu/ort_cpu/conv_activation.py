"""Conv followed by HardSwish as one kernel of the CPU provider.

MobileNetV3-style networks follow most convolutions with HardSwish. onnxruntime's FusedConv
takes no HardSwish, so the optimizer leaves the pair (and a saved optimized model keeps it); the
CPU provider claims it as a fused subgraph at partitioning (:func:`find`) and compiles it
(:func:`compile_pair`) into its FusedConv kernel with the activation applied as the output is
written (the compiled convolutions' epilogue code 5), not as a second node with its own call and
pass (an OCR classifier's 18 pairs: about 2 us each on its small maps). Only at the EXTENDED
level and above, for a 2-D float32 Conv with constant weights (and bias) whose output only the
HardSwish reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ort_core._onnx import helper
from ort_core.ir import Graph, Node, tensor_dtype, tensor_shape
from ort_core.provider import GraphView

from .squeeze_excite import graph_maps


def find(view: GraphView, claimed: set[int]) -> list[list[Node]]:
    """[Conv, HardSwish] pairs among ``view``'s nodes, both in ``claimed``."""
    _, readers, outputs = graph_maps(view.graph)
    pairs = []
    for conv in view.nodes:
        if conv.op_type != "Conv" or conv.domain or id(conv) not in claimed:
            continue
        out = conv.outputs[0] if len(conv.outputs) == 1 else ""
        users = readers.get(out, [])
        if not out or out in outputs or len(users) != 1:
            continue
        act = users[0]
        if act.op_type != "HardSwish" or act.domain or id(act) not in claimed:
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
        pairs.append([conv, act])
    return pairs


def compile_pair(sub: Graph, opsets: dict[str, int], provider: Any) -> Callable[..., Any]:
    """The callable of a fused pair (``sub`` as :func:`find` chose it, the model's ``opsets``):
    ``run(x) -> [y]``, the provider's FusedConv kernel for the Conv's attributes with
    HardSwish."""
    conv, act = sub.nodes
    attributes = dict(conv.attributes)
    attributes["activation"] = helper.make_attribute("activation", "HardSwish")
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
