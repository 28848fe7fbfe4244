"""Run code written for onnxruntime, libraries included, on ort-core without editing it.

Your own code changes one line (``import ort_core as ort``). Libraries that import onnxruntime
themselves (OCR pipelines, voice-activity detectors, converters' test suites) need ``onnxruntime`` to
*be* ort-core in their process::

    import ort_core.compat
    ort_core.compat.install()      # from here on, `import onnxruntime` gives ort-core
    import some_library            # which does `import onnxruntime as ort` inside

or, for a whole program, ``python -m ort_core.compat program.py args...`` (``-m module`` works too).

:func:`install` adds an import hook that maps every ``onnxruntime`` and ``onnxruntime.<sub>`` import
to the module of the same path under ``ort_core`` (``onnxruntime.capi.onnxruntime_pybind11_state`` is
``ort_core.capi.onnxruntime_pybind11_state``, the very same module object, so exception classes
caught by the library are the ones ort-core raises). A submodule ort-core does not have raises
ImportError naming it. An ``onnxruntime`` imported before :func:`install` is replaced only with
``force=True``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import runpy
import sys
from typing import Any

__all__ = ["install", "uninstall", "installed", "main"]

_ALIAS = "onnxruntime"
_TARGET = "ort_core"


class _Loader(importlib.abc.Loader):
    """Hands out the already-imported ort-core module; the import machinery then stamps the
    alias's spec on it, which :meth:`exec_module` puts back (ort-core's own relative imports rely
    on the module's real spec)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.real_spec: Any = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        module = importlib.import_module(self.target)
        self.real_spec = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:  # the target module is already executed
        module.__spec__ = self.real_spec


class _Finder(importlib.abc.MetaPathFinder):
    """Resolves ``onnxruntime[.x.y]`` to the already-imported ``ort_core[.x.y]`` module object."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != _ALIAS and not fullname.startswith(_ALIAS + "."):
            return None
        real = _TARGET + fullname[len(_ALIAS) :]
        if importlib.util.find_spec(real) is None:
            raise ImportError(
                f"ort-core has no module '{real}' to stand for '{fullname}' (installed with "
                "ort_core.compat.install()). See docs/compatibility.md for what ort-core offers.",
                name=fullname,
            )
        return importlib.machinery.ModuleSpec(fullname, _Loader(real), is_package=True)


_finder = _Finder()


def install(force: bool = False) -> None:
    """Make ``import onnxruntime`` (and its submodules) import ort-core in this process.

    Args:
        force: replace an onnxruntime that was already imported (its objects created so far stay
            onnxruntime's).

    Raises:
        RuntimeError: onnxruntime is already imported and ``force`` is False.
    """
    already = [n for n in sys.modules if n == _ALIAS or n.startswith(_ALIAS + ".")]
    mod = sys.modules.get(_ALIAS)
    if mod is not None and getattr(mod, "__name__", "") != _TARGET:
        if not force:
            raise RuntimeError(
                "onnxruntime is already imported in this process; call "
                "ort_core.compat.install() before anything imports it, or pass force=True."
            )
    for n in already:
        del sys.modules[n]
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    sys.modules[_ALIAS] = importlib.import_module(_TARGET)


def uninstall() -> None:
    """Undo :func:`install` (modules already imported through it stay as they are)."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for n in [n for n in sys.modules if n == _ALIAS or n.startswith(_ALIAS + ".")]:
        if getattr(sys.modules[n], "__name__", "").startswith(_TARGET):
            del sys.modules[n]


def installed() -> bool:
    """Whether ``import onnxruntime`` gives ort-core now."""
    return _finder in sys.meta_path


def main(argv: list[str] | None = None) -> int:
    """``python -m ort_core.compat [-m module | script.py] args...``: run a program with
    onnxruntime imports going to ort-core."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(
            "usage: python -m ort_core.compat [-m module | script.py] [args...]\n"
            "Runs the program with `import onnxruntime` resolving to ort-core.\n"
        )
        return 2
    install()
    if args[0] == "-m":
        if len(args) < 2:
            sys.stderr.write("python -m ort_core.compat -m: give a module name\n")
            return 2
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
