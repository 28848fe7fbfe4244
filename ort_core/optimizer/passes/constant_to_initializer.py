"""BASIC: turn Constant nodes into initializers (so folding and fusions see their values)."""

from __future__ import annotations

import numpy as np

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs

_VALUE_ATTRS = (
    "value",
    "value_float",
    "value_floats",
    "value_int",
    "value_ints",
    "value_string",
    "value_strings",
    "sparse_value",
)


class ConstantToInitializer(GraphPass):
    name = "ConstantToInitializer"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            for n in list(g.nodes):
                if n.op_type != "Constant" or n.domain or len(n.attributes) != 1:
                    continue
                (attr_name,) = n.attributes
                if attr_name not in _VALUE_ATTRS:
                    continue
                value = n.attr(attr_name)
                if attr_name == "value_strings":
                    value = np.array(value, dtype=object)
                elif attr_name == "value_float" or attr_name == "value_floats":
                    value = np.array(value, dtype=np.float32)
                elif attr_name == "value_int" or attr_name == "value_ints":
                    value = np.array(value, dtype=np.int64)
                elif attr_name == "value_string":
                    value = np.array(value, dtype=object)
                out = n.outputs[0]
                if out in g.outputs or out in g.initializers:
                    continue
                g.nodes.remove(n)
                g.initializers[out] = np.asarray(value)
                changed = True
        return changed


PASS = ConstantToInitializer()
