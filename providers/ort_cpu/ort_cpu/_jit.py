"""Compiled loops for the kernels numpy cannot express without a call per small step.

Some of the CPU provider's hot paths are loops over many small pieces of work: the time steps of
an LSTM, the taps of a depthwise convolution, the nodes of a decision tree walk for one row.
numpy pays microseconds per call on each, which is where the provider lost most against
onnxruntime on small models. Those loops are compiled with numba (LLVM) instead.

Rules every user of this module follows:

- **Lazy.** Importing ``ort_cpu`` never imports numba: :func:`jit` returns a
  :class:`LazyKernel` that imports numba on the first :meth:`LazyKernel.get` (unless the saved
  library has the kernel, below), which kernels call when the session is created (kernel
  construction), never inside a run. numba compiles per
  argument types at the first call, so a kernel also calls the function once on tiny inputs of
  the types it will use (:meth:`LazyKernel.warm`), keeping compilation out of the first run.
- **Cached on disk.** Functions compile with ``cache=True``: numba writes the machine code next
  to the source (or, where that folder is read-only, under ``NUMBA_CACHE_DIR`` / the user's
  cache), so only the first process on a machine pays the compile; later ones load it.
- **Saved.** The kernels a process compiled are also compiled ahead of time into a library
  that later processes call without importing numba (:mod:`ort_cpu._aot`): :meth:`LazyKernel.get`
  returns its entry points where it has the kernel, :meth:`LazyKernel.jitted` numba's
  dispatcher, which compiled code calling a kernel (a pool piece) must take. Kernels and their
  callers therefore never import numba at module level: intrinsics are :class:`LazyIntrinsic`,
  and a module of numba ``cfunc`` pieces is imported only where a run shares work.
- **Composable.** A compiled function may call other ``@jit()`` functions of its module by
  name: they are compiled first and the call is compiled as a call between compiled functions.
- **Optional.** :func:`available` is False when numba cannot be imported or
  ``ORT_CPU_JIT=0`` is set; then :meth:`LazyKernel.get` returns None and the kernel keeps its
  numpy path. Both paths are checked against onnxruntime (each user's tests run both).
- **Numerics.** No ``fastmath``: results follow IEEE order of operations. Where onnxruntime
  itself uses an approximation (MLAS's rational tanh in the recurrent ops), a compiled kernel
  may use the same one, and then differs from the numpy path by an ulp or so.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["LazyIntrinsic", "LazyKernel", "available", "in_use", "jit", "reason"]

_STATE: dict[str, Any] = {}
_LOCK = threading.Lock()


def _probe() -> None:
    if "ok" in _STATE:
        return
    with _LOCK:
        if "ok" in _STATE:
            return
        if os.environ.get("ORT_CPU_JIT", "1").strip() == "0":
            _STATE["why"] = "ORT_CPU_JIT=0 turns the compiled kernels off"
            _STATE["ok"] = False
            return
        from . import _aot

        if _aot.library() is not None and importlib.util.find_spec("numba") is not None:
            # the saved kernels were built by this numba (the library's key has its files):
            # it is imported only for a call the library lacks (see ort_cpu._aot)
            _STATE["why"] = ""
            _STATE["ok"] = True
            return
        try:
            import numba  # noqa: F401
        except Exception as e:  # not installed, or no wheel for this platform
            _STATE["why"] = f"numba cannot be imported ({type(e).__name__}: {e})"
            _STATE["ok"] = False
            return
        _STATE["why"] = ""
        _STATE["ok"] = True


def available() -> bool:
    """Whether compiled kernels can be used in this process (imports numba the first time)."""
    _probe()
    return bool(_STATE["ok"])


def in_use() -> bool:
    """Whether a kernel of this process has compiled code (from numba or the saved library)."""
    return bool(_STATE.get("in use")) or "numba" in sys.modules


def reason() -> str:
    """Why compiled kernels are off ('' when they are on)."""
    _probe()
    return str(_STATE["why"])


class LazyKernel:
    """A Python function to be compiled by numba on first use (see the module docstring)."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = fn
        self.options = options
        self._compiled: Any = None
        self._numba: Any = None
        self._lock = threading.RLock()

    def get(self) -> Any:
        """The kernel's callable, or None when compiled kernels are off: the saved library's
        entry points when it has this kernel (:mod:`ort_cpu._aot`; calls of other argument
        types go to numba), else numba's dispatcher."""
        if self._compiled is None:
            if not available():
                return None
            with self._lock:
                if self._compiled is None:
                    from . import _aot

                    saved, kid = _aot.library(), _aot.kernel_id(self.py_func)
                    fn = saved.dispatcher(kid, self._call_jitted) if saved and kid else None
                    self._compiled = fn if fn is not None else self.jitted()
                    if self._compiled is not None:
                        _STATE["in use"] = True
        return self._compiled

    def jitted(self) -> Any:
        """numba's dispatcher (compiled, or loaded from numba's disk cache, at its first call
        of each argument types), or None when compiled kernels are off. Compiled code that
        calls the kernel takes this one (numba compiles calls to its own dispatchers)."""
        if self._numba is None:
            if not available():
                return None
            with self._lock:
                if self._numba is None:
                    fn = self._with_compiled_callees()
                    if fn is None:
                        return None
                    import numba

                    from . import _aot

                    self._numba = numba.njit(cache=True, nogil=True, **self.options)(fn)
                    _aot.note_compiled(self)
        return self._numba

    @property
    def numba_dispatcher(self) -> Any:
        """numba's dispatcher if this process made it (None otherwise)."""
        return self._numba

    def _call_jitted(self, *args: Any) -> Any:
        """A call the saved library has no entry point for: numba's dispatcher takes it."""
        fn = self.jitted()
        if fn is None:
            raise RuntimeError(
                f"{self!r}: the saved library has no entry point for these argument types and "
                f"numba cannot compile one ({reason() or 'numba is off'}); reinstall numba or "
                "set ORT_CPU_JIT=0 to use the numpy paths"
            )
        return fn(*args)

    def _with_compiled_callees(self) -> Any:
        """The Python function to compile: when it calls other :class:`LazyKernel` functions of
        its module (or :class:`LazyIntrinsic` helpers), a copy of it whose globals name their
        compiled dispatchers (numba compiles calls to dispatchers, not to LazyKernel objects) and
        the helpers themselves; None when one of them is off."""
        fn = self.py_func
        callees = {
            name: g
            for name in fn.__code__.co_names
            if isinstance(g := fn.__globals__.get(name), (LazyKernel, LazyIntrinsic))
        }
        if not callees:
            return fn
        env = dict(fn.__globals__)
        for name, callee in callees.items():
            env[name] = callee.jitted() if isinstance(callee, LazyKernel) else callee.get()
            if env[name] is None:
                return None
        copy = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)
        copy.__qualname__, copy.__module__ = fn.__qualname__, fn.__module__
        return copy

    def warm(self, *args: Any) -> Any:
        """The compiled dispatcher after one call with ``args`` (tiny arrays of the types the
        kernel will pass), so the machine code is compiled or loaded now; None when off."""
        fn = self.get()
        if fn is not None:
            fn(*args)
        return fn

    def __repr__(self) -> str:
        return f"<LazyKernel {self.py_func.__module__}.{self.py_func.__qualname__}>"


class LazyIntrinsic:
    """A numba intrinsic (code written with llvmlite), or a function of numba's own such as
    ``numba.carray``, that a :func:`jit` function calls, named by its module and attribute: the
    module imports numba, so it is imported only when a kernel calling it compiles. numba's disk
    cache keys a kernel on its own source file's contents (numba 0.68 hashes the file: touching
    it is not enough): after editing the intrinsic's module, change the kernel's module too, or
    point ``NUMBA_CACHE_DIR`` at a fresh folder. (The saved library's key, :mod:`._aot`, covers
    every source file of the provider.)"""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def get(self) -> Any:
        import importlib

        return getattr(importlib.import_module(self.module), self.name)

    def __repr__(self) -> str:
        return f"<LazyIntrinsic {self.module}.{self.name}>"


def jit(**options: Any) -> Callable[[Callable[..., Any]], LazyKernel]:
    """Decorate a function written in numba's subset of Python; ``options`` go to
    ``numba.njit`` (``cache=True`` and ``nogil=True`` are always set; never ``fastmath``)."""
    if "fastmath" in options:
        raise ValueError("ort_cpu._jit: fastmath would change results; it is not allowed")

    def deco(fn: Callable[..., Any]) -> LazyKernel:
        return LazyKernel(fn, options)

    return deco
