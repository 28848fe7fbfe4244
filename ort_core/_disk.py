"""ort-core's caches on disk: where they live, and writing a file so that readers never see half.

``ORT_CORE_CACHE_DIR`` moves the folder (default: ``$XDG_CACHE_HOME/ort-core``, else
``~/.cache/ort-core``); ``ORT_CORE_DISK_CACHE=0`` turns the caches off. What is kept: the facts of
onnx's op schemas (``ir/_schema_table.py``), the inferred value types of models seen before
(``ir/_type_cache.py``) and the plugins' entry points (``plugins.py``): what lets a process
create a session without importing onnx or reading every installed distribution's metadata.
Every entry is keyed by what it was made from, so a stale one is never read; a read-only or
missing folder only turns the caching off.
"""

from __future__ import annotations

import os
from typing import Any

try:  # hashlib's import loads OpenSSL (3 ms of a process's start); its blake2b is this one
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without the module
    from hashlib import blake2b

__all__ = ["enabled", "cache_root", "stamp_folder", "write_atomic", "digest", "blake2b"]


def enabled() -> bool:
    """Whether the caches on disk are on (``ORT_CORE_DISK_CACHE`` is not ``0``)."""
    return os.environ.get("ORT_CORE_DISK_CACHE", "1").strip() != "0"


def cache_root() -> str:
    """The folder of ort-core's caches."""
    root = os.environ.get("ORT_CORE_CACHE_DIR", "").strip()
    if root:
        return root
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "ort-core")


def digest(value: Any, size: int = 12) -> str:
    """A hex digest of ``repr(value)`` (cache keys)."""
    return blake2b(repr(value).encode(), digest_size=size).hexdigest()


def stamp_folder(folder: str, suffixes: tuple[str, ...] = (".py", ".so", ".pyd", ".dylib")) -> list:
    """(name, size, mtime) of the files directly in ``folder`` whose names end in one of
    ``suffixes`` (sources and libraries by default), by name."""
    out: list[Any] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return out
    for entry in entries:
        if entry.name.endswith(suffixes) and entry.is_file():
            st = entry.stat()
            out.append((entry.name, st.st_size, st.st_mtime_ns))
    return out


def write_atomic(path: str, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file and a rename; False where the folder
    cannot be written (the caller goes on without the cache)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        return False
    return True
