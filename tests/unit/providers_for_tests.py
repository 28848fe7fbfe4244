"""Execution providers used by the unit tests (registered in-process with the register_provider
fixture)."""

from __future__ import annotations

import numpy as np
import onnx

from ort_core.device import OrtDevice
from ort_core.ir import Graph, graph_to_proto
from ort_core.provider import (
    Availability,
    Claim,
    ExecutionProvider,
    KernelProvider,
    KernelRegistry,
    convex_clusters,
)

registry = KernelRegistry("AddOnlyExecutionProvider")


@registry.kernel("Add", since=7)
def add(a, b):
    return np.add(a, b)


@registry.kernel("Mul", since=7)
def mul(a, b):
    return np.multiply(a, b)


class AddOnlyProvider(KernelProvider):
    """Claims Add and Mul only."""

    name = "AddOnlyExecutionProvider"
    aliases = ("addonly",)
    registry = registry


class UnavailableProvider(ExecutionProvider):
    name = "NeverExecutionProvider"
    aliases = ("never",)

    @classmethod
    def availability(cls):
        return Availability(False, "the Never device is not present on this machine.")


class FusingProvider(ExecutionProvider):
    """Fuses every maximal convex cluster of Relu/Add/Mul/Sigmoid and runs it with a nested
    ort-core session on the CPU provider (as a compiling provider would with its own runtime)."""

    name = "FusingExecutionProvider"
    aliases = ("fusing",)
    supported_ops = {"Relu", "Add", "Mul", "Sigmoid"}
    compiled = 0

    def get_capability(self, view):
        ok = [n for n in view.nodes if n.op_type in self.supported_ops]
        for n in view.nodes:
            if n.op_type not in self.supported_ops:
                view.reject(n, self.name, f"{n.op_type} is not supported by the fusing provider")
        return [Claim.fused_group(c) for c in convex_clusters(view.graph, ok)]

    def compile(self, subgraph: Graph, opsets):
        import ort_core

        proto = onnx.helper.make_model(
            graph_to_proto(subgraph),
            opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in opsets.items()],
        )
        sess = ort_core.InferenceSession(proto, providers=["CPUExecutionProvider"])
        names = list(subgraph.inputs)
        type(self).compiled += 1

        def run(*args):
            return sess.run(None, dict(zip(names, args)))

        return run


class DeviceArray:
    """A stand-in for device memory: host code cannot use it by accident. numpy refuses it
    (``np.asarray``, ufuncs and array functions raise TypeError), as it refuses cupy arrays, so a
    copy the core forgets to place fails the test that needed it."""

    __array_ufunc__ = None  # np.add(device, host) -> TypeError

    def __init__(self, data):
        self.data = np.array(data)
        self.dtype, self.shape, self.ndim = self.data.dtype, self.data.shape, self.data.ndim

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "DeviceArray lives in device memory: copy it to the host with the provider's "
            "to_host() (the core must place that copy)"
        )

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} cannot read a DeviceArray (device memory)")

    def __iter__(self):
        raise TypeError("DeviceArray lives in device memory: it cannot be iterated on the host")

    def __len__(self):
        return self.shape[0] if self.shape else 0


dev_registry = KernelRegistry("FakeDeviceExecutionProvider")


@dev_registry.kernel("Add", since=7)
def dev_add(a, b):
    assert isinstance(a, DeviceArray) and isinstance(b, DeviceArray)
    return DeviceArray(a.data + b.data)


@dev_registry.kernel("Reshape", since=5, host_inputs=(1,))
def dev_reshape(x, shape, allowzero=0):
    assert isinstance(x, DeviceArray) and isinstance(shape, np.ndarray)
    return DeviceArray(x.data.reshape(shape))


class FakeDeviceProvider(KernelProvider):
    """Keeps tensors in DeviceArray: the core must copy at every boundary."""

    name = "FakeDeviceExecutionProvider"
    aliases = ("fakedev",)
    device = OrtDevice(kind="gpu", vendor=0x1234, id=0)
    device_name = "gpu"
    host_memory = False
    registry = dev_registry
    uploads = 0

    downloads = 0

    def to_device(self, array, ctx=None):
        if isinstance(array, DeviceArray):
            return array
        type(self).uploads += 1
        return DeviceArray(array)

    def to_host(self, value, ctx=None):
        type(self).downloads += 1
        return value.data.copy()

    def owns(self, value):
        return isinstance(value, DeviceArray)
