"""Compiling CUDA C with NVRTC, the runtime compiler cupy uses for ``RawModule``.

At run time cupy compiles a module for the device it runs on. This module compiles the same
sources ahead of time for named architectures, which needs the NVRTC library only (the
``nvidia-cuda-nvrtc-cu12`` wheel, which cupy's ``[ctk]`` extra installs) and no driver or GPU:
the tests compile every source and template instantiation for every architecture in
:data:`ARCHES` on machines without a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ARCHES",
    "CompileError",
    "Compiled",
    "compile_source",
    "include_options",
    "source",
    "SOURCE_DIR",
]

#: Architectures every source must compile for: Ampere (A100) and Hopper (H100/H200).
ARCHES = ("sm_80", "sm_90")
#: Options every ort_cuda source is compiled with, at run time and in the tests.
OPTIONS = ("--std=c++17", "-default-device")
#: The folder of the provider's CUDA C sources (``*.cu``; ``*.cuh`` are shared headers).
SOURCE_DIR = Path(__file__).parent / "cuda"


class CompileError(RuntimeError):
    """NVRTC rejected a source; the message has NVRTC's log."""


@dataclass(frozen=True)
class Compiled:
    """A compiled source: the cubin, the log, and the lowered (mangled) name of each requested
    name expression (template instantiations such as ``softmax<float>``)."""

    cubin: bytes
    log: str
    lowered: dict[str, str]


def source(name: str) -> str:
    """The text of ``cuda/<name>`` with the shared headers it includes inlined (NVRTC has no
    include path for the package folder unless given one; inlining keeps one code path for
    cupy's RawModule and these tests)."""
    text = (SOURCE_DIR / name).read_text()
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith('#include "') and stripped.endswith('.cuh"'):
            header = stripped[len('#include "') : -1]
            out.append(source(header))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def include_options() -> tuple[str, ...]:
    """``-I`` of the CUDA runtime headers the sources include (``cuda_fp16.h``, ``cuda_bf16.h``),
    from the ``nvidia-cuda-runtime-cu12`` wheel when it is installed. cupy's ``RawModule`` adds
    its own include path at run time; the ahead-of-time compile here needs it given."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("nvidia.cuda_runtime")
    except (ImportError, ValueError):
        return ()
    folders = (spec.submodule_search_locations or ()) if spec is not None else ()
    for folder in folders:
        include = Path(folder) / "include"
        if (include / "cuda_fp16.h").is_file():
            return (f"-I{include}",)
    return ()


def compile_source(
    code: str,
    arch: str = "sm_80",
    name_expressions: Sequence[str] = (),
    options: Sequence[str] = (),
    filename: str = "ort_cuda.cu",
) -> Compiled:
    """Compile ``code`` to a cubin for ``arch`` with cupy's NVRTC binding (no GPU needed).

    Raises:
        CompileError: NVRTC failed; the message has its log.
        ImportError: cupy (and so NVRTC) is not installed.
    """
    from cupy.cuda import nvrtc

    prog = nvrtc.createProgram(code, filename, [], [])
    try:
        for expr in name_expressions:
            nvrtc.addNameExpression(prog, expr)
        opts = [f"--gpu-architecture={arch}", *OPTIONS, *include_options(), *options]
        try:
            nvrtc.compileProgram(prog, opts)
        except nvrtc.NVRTCError as e:
            raise CompileError(
                f"NVRTC could not compile {filename} for {arch}: {e}\n{nvrtc.getProgramLog(prog)}"
            ) from None
        lowered = {expr: nvrtc.getLoweredName(prog, expr) for expr in name_expressions}
        return Compiled(nvrtc.getCUBIN(prog), nvrtc.getProgramLog(prog), lowered)
    finally:
        nvrtc.destroyProgram(prog)
