"""Shared fixtures: small models built with onnx.helper, and in-process test providers."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ort_core.plugins import get_plugin_manager

# The CPU provider's saved-kernel library (ort_cpu/_aot.py) stays off in the tests, which run
# numba's kernels; test processes would otherwise start builders in the user's cache. The
# library's own tests turn it on in a temporary folder.
os.environ.setdefault("ORT_CPU_AOT", "0")


def make_model(nodes, inputs, outputs, initializers=(), opset=17, **kw):
    graph = helper.make_graph(nodes, kw.pop("name", "g"), inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", opset)] + list(kw.pop("extra_opsets", []))
    model = helper.make_model(graph, opset_imports=opsets, **kw)
    model.ir_version = 8
    return model


def tensor(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


@pytest.fixture
def mlp_model():
    """x[N,4] -> MatMul(W) -> Add(b) -> Relu -> y[N,3], random weights."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor(
        "W", TensorProto.FLOAT, [4, 3], rng.standard_normal((4, 3)).astype(np.float32).ravel()
    )
    b = helper.make_tensor("B", TensorProto.FLOAT, [3], rng.standard_normal(3).astype(np.float32))
    return make_model(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
            helper.make_node("Add", ["h", "B"], ["z"], name="add"),
            helper.make_node("Relu", ["z"], ["y"], name="relu"),
        ],
        [tensor("x", shape=["N", 4])],
        [tensor("y", shape=["N", 3])],
        [w, b],
    )


@pytest.fixture
def register_provider():
    """Register provider classes in-process for one test: ``register_provider(Cls, ...)``."""
    pm = get_plugin_manager()
    added = []

    def register(*classes, name="test_plugin", distribution="test-dist"):
        class Plugin:
            from ort_core.hookspecs import hookimpl

            @hookimpl
            def ort_register_providers(self, register):
                for c in classes:
                    register(c)

        plugin_name = f"{name}_{len(added)}"
        added.append(plugin_name)  # before adding: a registration that raises stays registered
        pm.add_plugin(Plugin(), plugin_name, distribution)

    yield register
    for n in added:
        pm.remove_plugin(n)


def reference_outputs(model: onnx.ModelProto, feed: dict) -> list:
    from onnx.reference import ReferenceEvaluator

    return list(ReferenceEvaluator(model).run(None, feed))
