"""The generated benchmark models: what a generator module declares, and the on-disk cache.

Each ``gen_*.py`` module declares ``KIND`` (its kind of model), ``MODELS`` (name -> :class:`Spec`)
and optionally ``DEPENDS`` (other benchmark files it builds on). A model is built on first use into
``<temp dir>/ort_core_bench_models/<kind>-<key>/``, where the key hashes the generator's source, the
sources it depends on and the versions of the packages that generate (skl2onnx, scikit-learn,
onnxruntime's quantizer, onnx): editing a generator or upgrading a converter rebuilds, nothing else
does. Nothing is downloaded; weights and data are random with fixed seeds.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(tempfile.gettempdir(), "ort_core_bench_models")
_VERSIONED = ("onnx", "onnxruntime", "scikit-learn", "skl2onnx", "numpy")
#: models larger than this keep their weights in an external-data file (onnx's 2 GB limit, and
#: faster to write)
EXTERNAL_BYTES = 64 << 20


@dataclass(frozen=True)
class Spec:
    """One benchmark model: how to build it and what to feed it.

    Several specs may share one ``file`` (the same model at batch 1 and 100, or at two past
    lengths): it is built once.
    """

    file: str
    build: Callable[[], object]  # -> onnx.ModelProto
    feed: Callable[[], dict[str, np.ndarray]]
    note: str = ""


def _versions() -> str:
    out = []
    for name in _VERSIONED:
        try:
            out.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name}=-")
    return ";".join(out)


def cache_dir(module: ModuleType, root: str | None = None) -> str:
    h = hashlib.sha1(_versions().encode())
    for f in (module.__file__, *(os.path.join(HERE, d) for d in getattr(module, "DEPENDS", ()))):
        with open(f, "rb") as fh:
            h.update(fh.read())
    return os.path.join(root or ROOT, f"{module.KIND}-{h.hexdigest()[:10]}")


def materialize(module: ModuleType, name: str, root: str | None = None) -> str:
    """Path of model ``name`` of generator ``module``, built and saved on first use."""
    import onnx
    from threadpoolctl import threadpool_limits

    spec: Spec = module.MODELS[name]
    folder = cache_dir(module, root)
    path = os.path.join(folder, spec.file + ".onnx")
    if os.path.exists(path):
        return path
    os.makedirs(folder, exist_ok=True)
    # one thread: training (scikit-learn's OpenMP) and calibration on a loaded 2-core machine are
    # far slower with threads fighting for the cores
    with threadpool_limits(1):
        model = spec.build()
    tmp = f"{path}.{os.getpid()}.tmp"
    if model.ByteSize() > EXTERNAL_BYTES:
        data = spec.file + ".onnx.data"
        onnx.save(model, tmp, save_as_external_data=True, location=data, size_threshold=1024)
    else:
        onnx.save(model, tmp)
    os.replace(tmp, path)
    return path
