"""OpenCLExecutionProvider: OpenCL C kernels (kernels/) run through pyopencl on one device.

Options (strings, as onnxruntime passes them):
    platform: index or case-insensitive name substring of the OpenCL platform.
    device: index or name substring of the device (among the chosen platform's devices, or among
        all devices when no platform is given).
    device_id: accepted for ``OrtValue.ortvalue_from_numpy(a, "opencl", device_id)``; an index
        among all devices, used when neither platform nor device is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort_core.device import OrtDevice
from ort_core.errors import InvalidArgument, ProviderNotAvailable
from ort_core.provider import Availability, KernelProvider, RunContext

from .kernels import registry

_OPTIONS = ("platform", "device", "device_id")


class OpenCLExecutionProvider(KernelProvider):
    """Runs nodes with OpenCL C kernels; tensors live in the device's memory (pyopencl arrays
    allocated from a memory pool). Float16 nodes are declined where the device lacks cl_khr_fp16."""

    name = "OpenCLExecutionProvider"
    aliases = ("opencl",)
    device_name = "opencl"
    host_memory = False
    registry = registry

    def __init__(self, options: dict[str, str] | None = None, session_options: Any = None):
        super().__init__(options, session_options)
        unknown = sorted(set(self.options) - set(_OPTIONS))
        if unknown:
            raise InvalidArgument(
                f"OpenCLExecutionProvider does not know the option(s) {unknown}; it accepts "
                f"{list(_OPTIONS)}."
            )
        avail = self.availability()
        if not avail:
            raise ProviderNotAvailable(avail.reason)
        from .device import get_device, list_devices

        platform = self.options.get("platform")
        device = self.options.get("device")
        if platform is None and device is None and "device_id" in self.options:
            rows = list_devices()
            try:
                k = int(self.options["device_id"])
                pi, _, di, _ = rows[k]
            except (ValueError, IndexError):
                listing = "; ".join(f"{i}: {r[3]} ({r[1]})" for i, r in enumerate(rows))
                raise InvalidArgument(
                    f"OpenCLExecutionProvider option device_id={self.options['device_id']!r} "
                    f"is not a device index; the devices are: {listing}."
                ) from None
            self.cl = get_device(str(pi), str(di))
        else:
            self.cl = get_device(platform, device)
        self.allocator = self.cl.pool
        self.device = _ort_device(self.cl.device)

    @classmethod
    def availability(cls) -> Availability:
        try:
            import pyopencl as cl
        except ImportError as e:
            return Availability(
                False, f"pyopencl cannot be imported ({e}); `pip install ort-opencl[pocl]`."
            )
        try:
            platforms = cl.get_platforms()
        except cl.Error as e:
            return Availability(False, f"pyopencl finds no OpenCL platform ({e}).")
        if not platforms:
            return Availability(False, "pyopencl finds no OpenCL platform.")
        for p in platforms:
            try:
                if p.get_devices():
                    return Availability(True)
            except cl.Error:
                continue
        return Availability(False, "no OpenCL platform has a device.")

    @classmethod
    def ep_devices(cls) -> list[dict[str, Any]]:
        """The OpenCL devices, for ``ort_core.get_ep_devices()``: kind (cpu, gpu or npu for
        accelerators), vendor and the options that select each."""
        import pyopencl as cl

        out = []
        for pi, platform in enumerate(cl.get_platforms()):
            try:
                devices = platform.get_devices()
            except cl.Error:
                continue
            for di, d in enumerate(devices):
                kind = _kind(d)
                entry: dict[str, Any] = {
                    "type": kind,
                    "device_id": di,
                    "metadata": {"name": d.name.strip(), "platform": platform.name.strip()},
                    "ep_options": {"platform": str(pi), "device": str(di)},
                }
                entry["vendor_id"] = int(d.vendor_id)
                if kind != "cpu":
                    entry["vendor"] = d.vendor.strip()
                out.append(entry)
        return out

    def get_options(self) -> dict[str, str]:
        opts = dict(self.options)
        opts.setdefault("device", self.cl.name)
        return opts

    # -- data transfer -----------------------------------------------------------------------
    def owns(self, value: Any) -> bool:
        """Whether ``value`` is a pyopencl array in this provider's context."""
        return self.cl.owns(value)

    def to_device(self, array: Any, ctx: RunContext | None = None) -> Any:
        """Copy a host array to the device; a device array of this context is returned as is."""
        if self.cl.owns(array):
            return array
        if isinstance(array, (np.generic, int, float, bool)):
            array = np.asarray(array)
        if not isinstance(array, np.ndarray):
            raise InvalidArgument(
                f"OpenCLExecutionProvider can copy numpy arrays to the device, not "
                f"{type(array).__name__}."
            )
        return self.cl.to_device(array)

    def to_host(self, value: Any, ctx: RunContext | None = None) -> Any:
        """Copy a device array back to a numpy array (host values pass through)."""
        if isinstance(value, np.ndarray) or value is None:
            return value
        return self.cl.to_host(value)


def _kind(d: Any) -> str:
    """The kind of an OpenCL device: gpu, npu (accelerators) or cpu."""
    import pyopencl as cl

    if d.type & cl.device_type.GPU:
        return "gpu"
    if d.type & cl.device_type.ACCELERATOR:
        return "npu"
    return "cpu"


def _ort_device(d: Any) -> OrtDevice:
    """The OrtDevice of an OpenCL device: its kind, PCI vendor id, and index among its
    platform's devices (as ``ep_devices`` numbers them)."""
    index = next((i for i, x in enumerate(d.platform.get_devices()) if x == d), 0)
    return OrtDevice(kind=_kind(d), vendor=int(d.vendor_id), id=index)
