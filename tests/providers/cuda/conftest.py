"""Fixtures of the CUDA provider's tests.

Two kinds of test live here, labelled in each module's docstring:
- host logic and translation (no GPU): options, availability, capability and placement on a
  stand-in device, NVRTC compiles, CPU emulation of CUDA C;
- ``cuda_gpu``: tests that need an NVIDIA GPU. They skip with the provider's own reason where
  there is none; ``ORT_CUDA_REQUIRE_GPU=1`` turns that skip into a failure (the GPU check sets it,
  so a machine whose GPU is not usable cannot pass it by skipping).
"""

from __future__ import annotations

import os

import pytest

from ._standin import StandInDevice


@pytest.fixture(autouse=True)
def _gpu_gate(request):
    """Skip a ``cuda_gpu`` test with the provider's reason where it cannot run (fail instead
    under ``ORT_CUDA_REQUIRE_GPU=1``)."""
    if request.node.get_closest_marker("cuda_gpu") is None:
        return
    from ort_cuda.provider import CUDAExecutionProvider

    avail = CUDAExecutionProvider.availability()
    if avail:
        return
    if os.environ.get("ORT_CUDA_REQUIRE_GPU") == "1":
        pytest.fail(f"ORT_CUDA_REQUIRE_GPU=1 but the CUDA provider is unavailable: {avail.reason}")
    pytest.skip(f"needs an NVIDIA GPU: {avail.reason}")


@pytest.fixture
def standin(monkeypatch):
    """The CUDA provider on a stand-in device: returns the list of devices it opened. Arrays of
    the stand-in refuse implicit conversion to numpy for the test's duration."""
    import array_api_strict
    import ort_cuda.provider as prov

    from ort_core.provider import Availability

    opened: list[StandInDevice] = []
    devices: dict[tuple, StandInDevice] = {}

    def open_device(opts):
        key = (opts.device_id, opts.gpu_mem_limit, opts.arena_power_of_two)
        dev = devices.get(key)
        if dev is None:
            dev = devices[key] = StandInDevice(opts.device_id, opts)
            opened.append(dev)
        return dev

    def refuse(self, *a, **k):
        raise TypeError("a stand-in CUDA array lives in device memory: copy it with to_host()")

    monkeypatch.setattr(prov, "open_device", open_device)
    monkeypatch.setattr(
        prov.CUDAExecutionProvider, "availability", classmethod(lambda cls: Availability(True))
    )
    monkeypatch.setattr(type(array_api_strict.asarray(0)), "__array__", refuse)
    return opened


@pytest.fixture
def cp():
    """cupy, for ``cuda_gpu`` tests (imported after the gate has decided the test can run)."""
    import cupy

    return cupy
