"""numpy's floating-point error state during runs.

numpy warns (``RuntimeWarning: overflow encountered in exp``) where a ufunc overflows, divides by
zero or makes a NaN; kernels compute IEEE results there on purpose (onnxruntime never warns), so
a session sets numpy's error state to ignore for each run on the running thread and puts the
caller's back at the end. Kernels then need no ``np.errstate`` of their own on the run's thread
(:func:`fp_errors_ignored` tells them), which cost 1.2 us a call: a 4-element Sigmoid took 3.7 us of
which the context manager was a third.

numpy 2 keeps the state in a context variable: :func:`quiet` sets it directly to a prepared
state and :func:`restore` resets it with the token (0.3 us together). With numpy 1,
``np.errstate`` is entered and exited.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["quiet", "restore", "fp_errors_ignored"]

try:  # numpy 2: the state is a context variable holding an "extobj"
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    _IGNORE = _make_extobj(all="ignore")

    def quiet() -> Any:
        """Ignore floating-point errors on this thread; returns the token for :func:`restore`."""
        return _extobj_contextvar.set(_IGNORE)

    def restore(token: Any) -> None:
        """Put back the error state :func:`quiet` replaced."""
        _extobj_contextvar.reset(token)

    def fp_errors_ignored() -> bool:
        """Whether floating-point errors are ignored by :func:`quiet` here now (a kernel may
        then skip its own ``np.errstate``)."""
        return _extobj_contextvar.get() is _IGNORE

except (ImportError, AttributeError, TypeError):  # pragma: no cover - numpy 1.x

    def quiet() -> Any:
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def restore(token: Any) -> None:
        token.__exit__(None, None, None)

    def fp_errors_ignored() -> bool:
        return False
