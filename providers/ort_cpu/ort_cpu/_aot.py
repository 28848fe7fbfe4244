"""Compiled kernels saved as one native library per machine, loaded without numba.

numba's disk cache keeps a kernel's machine code, but loading it imports numba and llvmlite
and builds numba's typing and lowering tables: 0.4-0.5 s and 110-140 MB in every new process,
which is most of a small model's first session and peak memory (a logistic regression: 183 MB
and 0.54 s against onnxruntime's 63 MB and 4 ms). So the kernels a process compiled are also
compiled ahead of time, by numba's AOT compiler and the system's C compiler, into an extension
module under the user's cache; later processes call that module and never import numba.

- **Where.** ``ORT_CPU_CACHE_DIR``, else ``$XDG_CACHE_HOME/ort-core/cpu-kernels`` (or
  ``~/.cache/...``), in a folder named by :func:`key`: this provider's sources (paths, sizes and
  modification times), Python's, numpy's and numba's versions and the CPU's name and features.
  Editing a kernel, upgrading numba or moving the cache to another CPU gives a new folder.
- **What.** ``table.json`` names the library's segments (extension modules, one per build) and,
  per kernel (``module:name``), its entry points with their argument types; the kernels are
  the :func:`ort_cpu._jit.jit` functions.
  A call goes through a small C dispatcher (``_aot_dispatch.c``) that takes the entry point of
  its arguments' types (exactly those numba's typeof gives); a call of other types goes to the
  kernel compiled by numba in this process, as without the library.
- **When.** A process that compiled kernels with numba (the first on a machine, or one that met
  new argument types) writes the signatures it used to the folder when it exits and starts the
  builder (``python -m ort_cpu._aot_build``) in the background, at low priority, one at a time
  (a lock); it compiles the new signatures into a new segment and then writes the table (every
  eighth build compiles them all into one segment again).
  ``python -m ort_cpu._aot_build --wait`` builds in the foreground. A build that fails (no C
  compiler, no setuptools) writes its reason in the table and is not tried again for that folder;
  the kernels then load from numba's cache as before.
- ``ORT_CPU_AOT=0`` turns the library off (neither loaded nor built); ``ORT_CPU_AOT=load`` loads
  an existing one and never builds. ``ORT_CPU_JIT=0`` turns every compiled kernel off.

This module does not import numba: the recording side runs where numba is loaded already.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import platform
import sys
import threading
from typing import Any

from ort_core import _disk

__all__ = [
    "cache_root",
    "cpu_info",
    "folder",
    "key",
    "known_types",
    "library",
    "mode",
    "note_compiled",
    "TABLE",
]

#: the table's file name in a library folder, and the format written there
TABLE = "table.json"
FORMAT = 1
#: the extension modules' names (the builder names its PyInit functions after them)
KERNELS_MODULE, DISPATCH_MODULE = "_ort_cpu_kernels", "_ort_cpu_dispatch"

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}
#: LazyKernels compiled by numba in this process (their signatures are written at exit)
_COMPILED: set = set()


def mode() -> str:
    """``"off"``, ``"load"`` (use a library, never build one) or ``"build"`` (the default)."""
    value = os.environ.get("ORT_CPU_AOT", "1").strip().lower()
    return {"0": "off", "off": "off", "load": "load"}.get(value, "build")


def cache_root() -> str:
    """The folder holding one library folder per :func:`key`."""
    root = os.environ.get("ORT_CPU_CACHE_DIR", "").strip()
    if root:
        return root
    return os.path.join(_disk.cache_root(), "cpu-kernels")


_CPU_INFO: list[dict[str, str]] = []


def cpu_info() -> dict[str, str]:
    """The first processor's model name and feature flags from /proc/cpuinfo (Linux; empty
    elsewhere), read once per process."""
    if not _CPU_INFO:
        seen: dict[str, str] = {}
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    name, _, value = line.partition(":")
                    name = name.strip()
                    if name in ("model name", "flags", "Features", "CPU part") and name not in seen:
                        seen[name] = value.strip()
                    if not line.strip() and seen:
                        break
        except OSError:
            pass
        _CPU_INFO.append(seen)
    return _CPU_INFO[0]


#: /proc/cpuinfo's spelling of the LLVM feature names asked of :func:`has_feature`
_FLAG_NAMES = {"avx512vnni": "avx512_vnni"}


def has_feature(name: str, ask_llvm: bool = True) -> bool:
    """Whether the code numba compiles here may use the CPU feature ``name`` (LLVM's spelling:
    ``avx512f``, ``avx512vnni``, ``avx512vbmi``): numba's ``NUMBA_CPU_FEATURES`` where set
    (``+avx512f,...``: numba then compiles for those), else the CPU's flags (Linux's
    /proc/cpuinfo), else, where ``ask_llvm``, what llvmlite reads off the CPU (False without).
    The answer is a function of what numba's on-disk cache is keyed by (the CPU's name and
    features), so a kernel compiled for a feature and the Python that chose it never
    disagree."""
    forced = os.environ.get("NUMBA_CPU_FEATURES", "").strip()
    if forced:
        return f"+{name}" in forced.split(",")
    flags = cpu_info().get("flags")
    if flags is not None:
        return _FLAG_NAMES.get(name, name) in flags.split()
    if not ask_llvm:
        return False
    from llvmlite import binding

    return bool(binding.get_host_cpu_features().get(name))


def wide_vectors() -> bool:
    """Whether the compiled kernels' register tiles are sized for AVX-512's 32 vector registers
    of 16 floats, else for AVX2's 16 of 8 (see :mod:`.kernels._conv_jit`). Asked at import,
    so not of llvmlite: where /proc/cpuinfo is missing, the narrow tiles, which fit every
    CPU."""
    return has_feature("avx512f", ask_llvm=False)


def _cpu() -> str:
    """The CPU's model name and feature flags (Linux), else what platform says, and what numba
    is told to compile for instead (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``)."""
    seen = cpu_info()
    forced = [os.environ.get(v, "") for v in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")]
    if seen:
        return json.dumps([seen, forced], sort_keys=True)
    return f"{platform.machine()} {platform.processor()} {forced}"


def _stamp(folder: str) -> list:
    """(name, size, mtime) of the sources directly in ``folder``."""
    return _disk.stamp_folder(folder, (".py", ".c"))


def key() -> str:
    """The library folder's name for this process (see the module docstring)."""
    if "key" not in _STATE:
        import numpy as np

        here = os.path.dirname(os.path.abspath(__file__))
        spec = importlib.util.find_spec("numba")
        numba_stamp = None
        if spec is not None and spec.origin:
            st = os.stat(spec.origin)
            numba_stamp = (spec.origin, st.st_size, st.st_mtime_ns)
        parts = [
            FORMAT,
            sys.version,
            sys.platform,
            platform.machine(),
            np.__version__,
            numba_stamp,
            _cpu(),
            _stamp(here),
            _stamp(os.path.join(here, "kernels")),
        ]
        _STATE["key"] = _disk.digest(parts, 10)
    return _STATE["key"]


def folder() -> str:
    """This process's library folder (it may not exist)."""
    return os.path.join(cache_root(), key())


def read_table(path: str) -> dict | None:
    """The table in library folder ``path``, or None (none yet, unreadable, another format)."""
    try:
        with open(os.path.join(path, TABLE), encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, ValueError):
        return None
    return table if isinstance(table, dict) and table.get("format") == FORMAT else None


def _load_extension(name: str, path: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Library:
    """A library folder's table, its dispatcher module and (loaded when a kernel needs one)
    its segments: :meth:`dispatcher` makes a kernel's callable."""

    def __init__(self, path: str, table: dict) -> None:
        self.path = path
        self.table = table
        self.dispatch = _load_extension(DISPATCH_MODULE, os.path.join(path, table["dispatch"]))
        self._segments: dict[int, Any] = {}

    def _segment(self, index: int) -> Any:
        if index not in self._segments:
            seg = self.table["segments"][index]
            self._segments[index] = _load_extension(
                seg["module"], os.path.join(self.path, seg["file"])
            )
        return self._segments[index]

    def dispatcher(self, kernel_id: str, fallback: Any) -> Any:
        """The kernel's callable over its entry points, the exact signatures first (None when
        the library has none): calls of other argument types go to ``fallback``."""
        entries = sorted(self.table["kernels"].get(kernel_id, ()), key=lambda e: e["loose"])
        if not entries:
            return None
        try:
            functions = tuple(getattr(self._segment(e["segment"]), e["symbol"]) for e in entries)
        except (ImportError, OSError, AttributeError):
            # a segment a builder compacted away after this process read the table: the
            # kernel stays with numba in this process
            return None
        codes = tuple(e["codes"].encode("ascii") for e in entries)
        return self.dispatch.Dispatcher(fallback, functions, codes)


def library() -> Library | None:
    """This process's library, loaded on first use; None when off, not built, or unusable."""
    if "library" in _STATE:
        return _STATE["library"]
    with _LOCK:
        if "library" not in _STATE:
            lib = None
            if mode() != "off":
                path = folder()
                table = read_table(path)
                if table is not None and table.get("segments"):
                    try:
                        lib = Library(path, table)
                    except Exception as e:  # a library from a half-removed folder, say
                        _STATE["load_error"] = f"{type(e).__name__}: {e}"
                        lib = None
            _STATE["library"] = lib
    return _STATE["library"]


def kernel_id(fn: Any) -> str | None:
    """``module:qualname`` of a module-level kernel function (None for nested ones, which the
    builder could not find again)."""
    qualname = getattr(fn, "__qualname__", "")
    if "<" in qualname:
        return None
    return f"{fn.__module__}:{qualname}"


def note_compiled(kernel: Any) -> None:
    """Remember ``kernel`` (a LazyKernel numba compiled in this process): its signatures are
    written for the builder at exit."""
    if mode() != "build":
        return
    with _LOCK:
        if not _COMPILED and not _STATE.get("atexit"):
            atexit.register(_at_exit)
            _STATE["atexit"] = True
        _COMPILED.add(kernel)


def known_types(table: dict | None) -> dict[str, set]:
    """{kernel id: the argument types (as text) ``table`` built or skipped}."""
    known: dict[str, set] = {}
    for group in ("kernels", "skipped"):
        for kid, entries in (table or {}).get(group, {}).items():
            known.setdefault(kid, set()).update(e["types"] for e in entries)
    return known


def new_signatures(kernels, table: dict | None) -> dict[str, list]:
    """{kernel id: [pickled (argument types, return type)]} of the signatures the numba
    dispatchers of ``kernels`` have and ``table`` neither built nor skipped."""
    known = known_types(table)
    import pickle

    out: dict[str, list] = {}
    for kernel in kernels:
        kid = kernel_id(kernel.py_func)
        dispatcher = kernel.numba_dispatcher
        if kid is None or dispatcher is None:
            continue
        for sig in dispatcher.nopython_signatures:
            if str(tuple(sig.args)) not in known.get(kid, ()):
                out.setdefault(kid, []).append(pickle.dumps((tuple(sig.args), sig.return_type)))
    return out


def _at_exit() -> None:
    try:
        write_wanted_and_build()
    except Exception:  # never fail an exiting process over a cache
        pass


def write_wanted_and_build(start: bool = True) -> str | None:
    """Write this process's new signatures to the library folder (a file the builder merges)
    and, with ``start``, start the builder in the background; the file's path, or None when
    nothing was new, the folder is not writable or an earlier build failed there."""
    if mode() != "build" or not _COMPILED:
        return None
    path = folder()
    table = read_table(path)
    if table is not None and table.get("failed"):
        return None
    new = new_signatures(list(_COMPILED), table)
    if not new:
        return None
    wanted = os.path.join(path, "wanted")
    try:
        os.makedirs(wanted, exist_ok=True)
        import pickle

        name = os.path.join(wanted, f"{os.getpid()}-{threading.get_ident()}.pkl")
        with open(name + ".tmp", "wb") as f:
            pickle.dump(new, f)
        os.replace(name + ".tmp", name)
    except OSError:
        return None
    if start:
        start_builder()
    return name


def start_builder() -> None:
    """Start ``python -m ort_cpu._aot_build --background`` for this process's folder, detached
    from this process (not from an embedding program, whose executable is not Python's)."""
    if not os.path.basename(sys.executable or "").lower().startswith("python"):
        return
    import subprocess

    # the builder imports the kernels from where this process found them (a script may have
    # put ort-cpu on sys.path itself)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    subprocess.Popen(
        [sys.executable, "-m", "ort_cpu._aot_build", "--background", "--folder", folder()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        env=env,
    )
