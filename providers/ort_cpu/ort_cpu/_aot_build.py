"""Build the saved-kernel library of :mod:`ort_cpu._aot`: ``python -m ort_cpu._aot_build``.

Merges the signatures processes wrote to the library folder's ``wanted`` folder with those of
the current library, compiles every one with numba's ahead-of-time compiler into one extension
module (``numba.pycc``: numba's own code generation, with the same options the kernel's
:func:`ort_cpu._jit.jit` gives numba, releasing the GIL as ``nogil`` does, and for this CPU's
name and features, as numba's JIT does), compiles the dispatcher (``_aot_dispatch.c``) with the
same C compiler, and then writes the table naming them. One builder works per folder (a lock);
a builder started while another works exits, and the working one takes the new signatures
before it stops.

Options: ``--wait`` waits for the lock instead of exiting (and builds whatever is wanted);
``--background`` lowers the builder's priority; ``--folder`` names the library folder (default:
this process's, :func:`ort_cpu._aot.folder`); ``--retry`` builds in a folder where a build
failed. Exit status 0 when the library is up to date, 1 when the build failed (the reason is in
the table).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import glob
import importlib
import json
import os
import pickle
import shutil
import sys
import sysconfig
import tempfile
import time
from typing import Any

from . import _aot

#: the ``numba.njit`` options that change a kernel's own code (``inline`` changes its callers')
_OPTIONS = {"error_model"}


def _pycc() -> None:
    """Import numba's AOT compiler (numba marks it pending deprecation; its replacement is not
    out yet: should it go, builds fail, the table says why, and numba's cache serves)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import numba.pycc  # noqa: F401
        import numba.pycc.platform  # noqa: F401


def compiler_works() -> bool:
    """Whether numba's AOT tool chain finds a working C compiler."""
    _pycc()
    from numba.pycc.platform import external_compiler_works

    return bool(external_compiler_works())


def _codes(types_: tuple) -> str | None:
    """The dispatcher's codes of argument types (``_aot_dispatch.c``), or None when one has no
    code (the call then stays with numba)."""
    out = []
    for t in types_:
        code = _code(t)
        if code is None:
            return None
        out.append(code)
    return "".join(out)


def _code(t: Any) -> str | None:
    try:
        return _code_of(t)
    except Exception:  # a type this table does not know: the call stays with numba
        return None


def _code_of(t: Any) -> str | None:
    import numpy as np
    from numba.core import types

    if isinstance(t, types.Literal):  # a compile for one value: no value test here
        return None
    if isinstance(t, types.Array):
        if type(t) is not types.Array or not t.aligned or t.ndim > 9:
            return None
        from numba.np.numpy_support import as_dtype

        try:
            dtype = np.dtype(as_dtype(t.dtype))
        except Exception:  # records, datetimes: no code
            return None
        if dtype.kind not in "biufc" or dtype.itemsize > 9:
            return None
        return f"a{dtype.kind}{dtype.itemsize}{t.ndim}{t.layout}{'w' if t.mutable else 'r'}"
    if t == types.int64:
        return "i"
    if t == types.float64:
        return "f"
    if t == types.boolean:
        return "b"
    if isinstance(t, types.NoneType):
        return "n"
    if isinstance(t, (types.Integer, types.Float)):
        dtype = np.dtype(str(t))
        return f"s{dtype.kind}{dtype.itemsize}"
    if isinstance(t, types.BaseTuple) and type(t) in (types.UniTuple, types.Tuple):
        if len(t) > 70:
            return None
        inner = _codes(tuple(t))
        return None if inner is None else f"t{chr(48 + len(t))}{inner}"
    return None


def _specificity(types_: tuple) -> int:
    """How many arguments the signature takes loosely (any layout, read-only or not): the
    dispatcher tries the exact ones first."""
    from numba.core import types

    n = 0
    for t in types_:
        if isinstance(t, types.Array):
            n += (t.layout == "A") + (not t.mutable)
        elif isinstance(t, types.BaseTuple):
            n += _specificity(tuple(t))
    return n


def _kernel(kernel_id: str) -> Any:
    """The LazyKernel named ``module:qualname``, or None."""
    from ._jit import LazyKernel

    module, _, name = kernel_id.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    return obj if isinstance(obj, LazyKernel) else None


@contextlib.contextmanager
def _aot_compiler(options_of: dict[int, dict]):
    """numba's AOT compiler as the kernels' JIT compiles them: the kernel's options, the GIL
    released during the call (``nogil``), code for this CPU's features (numba's AOT code
    generation takes the CPU model's defaults, which a virtual machine may not have)."""
    import numba.pycc.compiler as pc
    from numba.core.codegen import AOTCPUCodegen

    real_compile, real_features = pc.compile_extra, AOTCPUCodegen._customize_tm_features

    def compile_extra(typingctx, targetctx, func, args, return_type, flags, locals, **kw):
        flags = flags.copy()
        flags.release_gil = True
        for name, value in options_of.get(id(func), {}).items():
            if name == "error_model":
                flags.error_model = value
        return real_compile(typingctx, targetctx, func, args, return_type, flags, locals, **kw)

    pc.compile_extra = compile_extra
    AOTCPUCodegen._customize_tm_features = lambda self: self._get_host_cpu_features()
    try:
        yield
    finally:
        pc.compile_extra = real_compile
        AOTCPUCodegen._customize_tm_features = real_features


def _build_dispatch(path: str) -> str:
    """Compile ``_aot_dispatch.c`` into ``path`` (once per folder); its file name."""
    import numpy as np

    _pycc()
    from numba.pycc.platform import Toolchain

    name = _aot.DISPATCH_MODULE + sysconfig.get_config_var("EXT_SUFFIX")
    if os.path.exists(os.path.join(path, name)):
        return name
    toolchain = Toolchain()
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_aot_dispatch.c")
    build_dir = tempfile.mkdtemp(prefix="ort-cpu-aot-", dir=path)
    try:
        objects = toolchain.compile_objects(
            [source],
            build_dir,
            include_dirs=[*toolchain.get_python_include_dirs(), np.get_include()],
            extra_cflags=["-O2"],
        )
        toolchain.link_shared(
            os.path.join(build_dir, name),
            objects,
            toolchain.get_python_libraries(),
            toolchain.get_python_library_dirs(),
            export_symbols=["PyInit_" + _aot.DISPATCH_MODULE],
        )
        os.replace(os.path.join(build_dir, name), os.path.join(path, name))
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return name


#: segments (libraries) a folder holds before a build compiles them all into one again
MAX_SEGMENTS = 8


def build(path: str, signatures: dict[str, dict[str, tuple]], table: dict) -> dict:
    """Compile ``signatures`` ({kernel id: {str(argument types): (argument types, return
    type)}}) into a new segment of the library in ``path`` (its dispatcher built already);
    ``table`` with the segment and its entry points (the caller writes it), unchanged when the
    compile raises. A signature without dispatcher codes, or of a kernel not found, is listed
    as skipped."""
    from numba.core import typing

    _pycc()
    from numba.pycc import CC
    from numba.pycc.compiler import ExportEntry

    segment = len(table["segments"])
    module = f"{_aot.KERNELS_MODULE}{time.time_ns()}"
    cc = CC(module)
    cc.target_cpu = "host"
    options_of: dict[int, dict] = {}
    added: dict[str, list] = {}
    skipped: dict[str, list] = {}
    n = 0
    for kid in sorted(signatures):
        kernel = _kernel(kid)
        fn = kernel._with_compiled_callees() if kernel is not None else None
        for text, (args, ret) in sorted(signatures[kid].items()):
            codes = _codes(args)
            if fn is None or codes is None:
                why = "kernel not found" if fn is None else "an argument type the dispatcher lacks"
                skipped.setdefault(kid, []).append(_skipped(text, (args, ret), why))
                continue
            symbol = f"k{n}"
            n += 1
            options_of[id(fn)] = {k: v for k, v in kernel.options.items() if k in _OPTIONS}
            cc._exported_functions[symbol] = ExportEntry(symbol, typing.signature(ret, *args), fn)
            entry = {"segment": segment, "symbol": symbol, "codes": codes, "types": text}
            entry |= {"loose": _specificity(args), "sig": _blob((args, ret))}
            added.setdefault(kid, []).append(entry)
    if n:
        build_dir = tempfile.mkdtemp(prefix="ort-cpu-aot-", dir=path)
        try:
            name = module + sysconfig.get_config_var("EXT_SUFFIX")
            cc.output_dir = build_dir
            cc.output_file = name
            with _aot_compiler(options_of):
                cc.compile()
            os.replace(os.path.join(build_dir, name), os.path.join(path, name))
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
        table["segments"].append({"file": name, "module": module})
    for kid, entries in added.items():
        table["kernels"].setdefault(kid, []).extend(entries)
    for kid, entries in skipped.items():
        table["skipped"].setdefault(kid, []).extend(entries)
    return table


def _blob(pair: tuple) -> str:
    return base64.b64encode(pickle.dumps(pair)).decode("ascii")


def _skipped(text: str, pair: tuple, why: str) -> dict:
    return {"types": text, "why": why, "sig": _blob(pair)}


def build_parts(path: str, signatures: dict[str, dict[str, tuple]], table: dict) -> dict:
    """:func:`build`, and where numba's AOT compile of all of them raises, of halves of the
    kernels, down to single kernels, whose signatures are then listed as skipped with the
    error (they stay with numba): one kernel the AOT compiler cannot take does not keep the
    others from being saved."""
    try:
        return build(path, signatures, table)
    except Exception as e:
        kids = sorted(signatures)
        if len(kids) == 1:
            why = f"{type(e).__name__}: {e}"[:500]
            for text, pair in signatures[kids[0]].items():
                table["skipped"].setdefault(kids[0], []).append(_skipped(text, pair, why))
            return table
        half = len(kids) // 2
        for part in (kids[:half], kids[half:]):
            table = build_parts(path, {k: signatures[k] for k in part}, table)
        return table


def _empty() -> dict:
    return {"format": _aot.FORMAT, "segments": [], "kernels": {}, "skipped": {}}


def _built(table: dict) -> dict[str, dict[str, tuple]]:
    """The signatures a table built, as :func:`build` takes them."""
    out: dict[str, dict[str, tuple]] = {}
    for kid, entries in table.get("kernels", {}).items():
        for e in entries:
            out.setdefault(kid, {})[e["types"]] = pickle.loads(base64.b64decode(e["sig"]))
    return out


def _write_table(path: str, table: dict) -> None:
    tmp = os.path.join(path, f"{_aot.TABLE}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(table, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(path, _aot.TABLE))


def _tidy(path: str, table: dict) -> None:
    """Remove the segments the table no longer names (processes that loaded them keep their
    mapping)."""
    named = {s["file"] for s in table["segments"]}
    for old in glob.glob(os.path.join(path, _aot.KERNELS_MODULE + "*")):
        if os.path.basename(old) not in named:
            with contextlib.suppress(OSError):
                os.remove(old)


def update(path: str, retry: bool = False) -> int:
    """Build until no wanted signatures are left in ``path`` (the lock held): 0, or 1 when a
    build failed (its reason in the table)."""
    while True:
        table = _aot.read_table(path) or _empty()
        if table.get("failed") and not retry:
            return 1
        files = sorted(glob.glob(os.path.join(path, "wanted", "*.pkl")))
        if not files:
            return 0
        known = _aot.known_types(table)
        wanted: dict[str, dict[str, tuple]] = {}
        for name in files:
            try:
                with open(name, "rb") as f:
                    blobs_of = pickle.load(f)
            except Exception:  # a file cut short: its process's signatures come again
                blobs_of = {}
            for kid, blobs in blobs_of.items():
                for blob in blobs:
                    args, ret = pickle.loads(blob)
                    text = str(tuple(args))
                    if text not in known.get(kid, ()):
                        wanted.setdefault(kid, {})[text] = (args, ret)
        table.pop("failed", None)
        if len(table["segments"]) >= MAX_SEGMENTS:  # all in one segment again
            for kid, sigs in _built(table).items():
                wanted.setdefault(kid, {}).update(sigs)
            table |= {"segments": [], "kernels": {}}
        try:
            table["dispatch"] = _build_dispatch(path)
        except Exception as e:  # no C compiler, no setuptools: nothing can be built here
            table["failed"] = f"{type(e).__name__}: {e}"[:2000]
        if wanted and not table.get("failed"):
            table = build_parts(path, wanted, table)
        _write_table(path, table)
        if table.get("failed"):  # the files stay for a --retry
            return 1
        for name in files:
            with contextlib.suppress(OSError):
                os.remove(name)
        _tidy(path, table)
        retry = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ort_cpu._aot_build", description=__doc__)
    parser.add_argument("--folder", help="the library folder (default: this process's)")
    parser.add_argument("--wait", action="store_true", help="wait for a builder at work")
    parser.add_argument("--background", action="store_true", help="lower the priority")
    parser.add_argument("--retry", action="store_true", help="build where a build failed")
    args = parser.parse_args(argv)
    import fcntl

    # the kernels this builder compiles with numba (callees) are not wanted again
    os.environ["ORT_CPU_AOT"] = "load"

    path = args.folder or _aot.folder()
    os.makedirs(path, exist_ok=True)
    if args.background:
        with contextlib.suppress(OSError):
            os.nice(10)
    with open(os.path.join(path, "build.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if args.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return 0
        return update(path, retry=args.retry)


if __name__ == "__main__":
    sys.exit(main())
