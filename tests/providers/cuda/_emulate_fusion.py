"""Host emulation of the fused elementwise kernels that ``ort_cuda.fusion`` generates.

The generated CUDA C is compiled with the host's C++ compiler against a small header that stands
in for the CUDA runtime: ``__global__``/``__device__`` expand to nothing, ``threadIdx``,
``blockIdx``, ``blockDim`` and ``gridDim`` are globals a generated driver sets while it loops over
the blocks and threads of a launch, ``__half``/``__nv_bfloat16`` are two-byte structs (the
layout of numpy's float16 and ml_dtypes' bfloat16 arrays) with round-to-nearest-even
conversions, and the math functions are the C library's. The library is loaded with ctypes and
each kernel is launched over numpy arrays with the host layout ``ort_cuda.fusion`` computes (the
same arguments cupy would pass). This checks the generated C and the host's launch arguments on
a CPU; it proves nothing about the GPU's own math library or about concurrency.

:class:`FakeCupy` puts this emulation behind the part of cupy the fused chain's native path uses
(``RawModule``, ``empty``, ``cuda.Device``), so the native path runs end to end without a GPU.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HEADER = r"""
#include <cmath>
#include <cstring>
#include <cstdint>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(x)
struct ort_emu_dim3 { unsigned int x, y, z; };
static ort_emu_dim3 threadIdx, blockIdx, blockDim, gridDim;
static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline double __longlong_as_double(long long i) {
  double d; std::memcpy(&d, &i, 8); return d;
}
"""

FP16 = r"""
#pragma once
#include <cmath>
#include <cstring>
struct __half { unsigned short x; };
static inline float __half2float(__half h) {
  unsigned int sign = (unsigned int)(h.x & 0x8000u) << 16;
  unsigned int e = (h.x >> 10) & 0x1fu, m = h.x & 0x3ffu, bits;
  float f;
  if (e == 0) { f = std::ldexp((float)m, -24); return sign ? -f : f; }
  if (e == 31) bits = sign | 0x7f800000u | (m << 13);
  else bits = sign | ((e - 15 + 127) << 23) | (m << 13);
  std::memcpy(&f, &bits, 4);
  return f;
}
static inline __half __float2half_rn(float f) {
  unsigned int x; std::memcpy(&x, &f, 4);
  unsigned short sign = (unsigned short)((x >> 16) & 0x8000u);
  unsigned int ax = x & 0x7fffffffu;
  __half h;
  if (ax > 0x7f800000u) { h.x = sign | 0x7e00u; return h; }        // NaN
  if (ax >= 0x47800000u) { h.x = sign | 0x7c00u; return h; }       // >= 65536: inf
  if (ax < 0x38800000u) {                                          // below 2^-14: subnormal
    float af; std::memcpy(&af, &ax, 4);
    h.x = sign | (unsigned short)std::nearbyint(af * 16777216.0f); // exact scaling, RNE
    return h;
  }
  unsigned int e = (ax >> 23) - 127 + 15, mant = ax & 0x7fffffu;
  unsigned int v = (e << 10) | (mant >> 13), rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) v += 1;       // may carry into inf
  h.x = sign | (unsigned short)v;
  return h;
}
"""

BF16 = r"""
#pragma once
#include <cstring>
struct __nv_bfloat16 { unsigned short x; };
static inline float __bfloat162float(__nv_bfloat16 h) {
  unsigned int bits = (unsigned int)h.x << 16; float f; std::memcpy(&f, &bits, 4); return f;
}
static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  unsigned int x; std::memcpy(&x, &f, 4);
  __nv_bfloat16 h;
  if ((x & 0x7fffffffu) > 0x7f800000u) { h.x = (unsigned short)((x >> 16) | 0x40u); return h; }
  x += 0x7fffu + ((x >> 16) & 1u);
  h.x = (unsigned short)(x >> 16);
  return h;
}
"""

_KERNEL = re.compile(
    r'extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(\s*(.*?)\)\s*\{', re.S
)


def kernel_params(source: str) -> tuple[str, list[tuple[str, bool]]]:
    """The kernel's name and its parameters as (C type, is a pointer), parsed from the source."""
    m = _KERNEL.search(source)
    if m is None:
        raise ValueError('no extern "C" __global__ kernel in the source')
    params = []
    for p in m.group(2).split(","):
        p = " ".join(p.replace("__restrict__", "").split())
        ctype = p.rsplit(" ", 1)[0].strip()
        params.append((ctype, "*" in ctype))
    return m.group(1), params


def _driver(name: str, params: list[tuple[str, bool]]) -> str:
    args = []
    np_ = ns = 0
    for ctype, is_ptr in params:
        if is_ptr:
            args.append(f"({ctype})ptrs[{np_}]")
            np_ += 1
        else:
            args.append(f"({ctype.replace('const ', '')})scalars[{ns}]")
            ns += 1
    call = ", ".join(args)
    return (
        f'extern "C" void emu_{name}(void** ptrs, const long long* scalars, unsigned grid, '
        f"unsigned block) {{\n"
        f"  gridDim.x = grid; gridDim.y = gridDim.z = 1;\n"
        f"  blockDim.x = block; blockDim.y = blockDim.z = 1;\n"
        f"  for (unsigned b = 0; b < grid; ++b) {{\n"
        f"    blockIdx.x = b; blockIdx.y = blockIdx.z = 0;\n"
        f"    for (unsigned t = 0; t < block; ++t) {{\n"
        f"      threadIdx.x = t; threadIdx.y = threadIdx.z = 0;\n"
        f"      {name}({call});\n"
        f"    }}\n  }}\n}}\n"
    )


def compiler() -> str | None:
    """The C++ compiler the emulation uses, or None when the machine has none."""
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


class Library:
    """The generated kernels of ``sources`` compiled into one shared library on the host."""

    def __init__(self, sources: Sequence[str], workdir: str | Path | None = None) -> None:
        cxx = compiler()
        if cxx is None:
            raise RuntimeError("no C++ compiler for the host emulation")
        self._tmp = tempfile.TemporaryDirectory() if workdir is None else None
        root = Path(workdir if workdir is not None else self._tmp.name)
        root.mkdir(parents=True, exist_ok=True)
        (root / "cuda_fp16.h").write_text(FP16)
        (root / "cuda_bf16.h").write_text(BF16)
        self.params: dict[str, list[tuple[str, bool]]] = {}
        parts = [HEADER]
        seen: set[str] = set()
        for src in sources:
            name, params = kernel_params(src)
            if name in seen:
                continue
            seen.add(name)
            self.params[name] = params
            parts.append(src)
            parts.append(_driver(name, params))
        text = "\n".join(parts)
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        cpp = root / f"fused_{digest}.cpp"
        so = root / f"fused_{digest}.so"
        cpp.write_text(text)
        cmd = [cxx, "-std=c++17", "-O0", "-fwrapv", "-fno-fast-math", "-shared", "-fPIC",
               f"-I{root}", str(cpp), "-o", str(so), "-lm"]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"the host compiler rejected the generated source:\n{res.stderr}")
        self.lib = ctypes.CDLL(str(so))

    def launch(
        self, name: str, arrays: Sequence[Any], scalars: Sequence[Any], grid: int, block: int
    ) -> None:
        """Run kernel ``name`` as a launch of ``grid`` blocks of ``block`` threads would, with
        these pointer arguments (numpy arrays, in order) and scalar arguments."""
        params = self.params[name]
        n_ptr = sum(1 for _, p in params if p)
        if len(arrays) != n_ptr or len(scalars) != len(params) - n_ptr:
            raise TypeError(f"{name} takes {n_ptr} arrays and {len(params) - n_ptr} scalars")
        ptrs = (ctypes.c_void_p * max(n_ptr, 1))(*[a.ctypes.data for a in arrays])
        sc = np.ascontiguousarray([int(s) for s in scalars], dtype=np.int64)
        fn = getattr(self.lib, f"emu_{name}")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        fn(ctypes.cast(ptrs, ctypes.c_void_p), sc.ctypes.data, int(grid), int(block))


def run_plan(lib: Library, plan: Any, inputs: Sequence[np.ndarray], grid: int = 3,
             block: int = 32) -> list[np.ndarray]:  # fmt: skip
    """Launch the generated kernel of ``plan`` (``ort_cuda.fusion``'s chain plan) over numpy
    ``inputs`` (``plan.inputs`` order) with the host layout the native path computes; a few
    small blocks, so that the grid-stride loop runs several rounds."""
    from ort_cuda import fusion

    source, name = fusion._emit(plan)
    arrays = [*inputs, *(np.ascontiguousarray(c) for c in plan.constants.values())]
    layout = fusion._layout(plan, arrays)
    if layout.fallback:
        raise ValueError("this layout runs op by op, not in the kernel")
    outs = [np.empty(layout.shape, dtype=plan.dtypes[o]) for o in plan.outputs]
    if layout.n:
        lib.launch(name, [*arrays, *outs], layout.scalars, grid, block)
    return outs


class Conversions:
    """The stand-in header's float16/bfloat16 conversions, callable on numpy arrays (so that the
    tests can compare them with numpy's float16 and ml_dtypes' bfloat16)."""

    def __init__(self, workdir: str | Path) -> None:
        src = HEADER + FP16.replace("#pragma once", "") + BF16.replace("#pragma once", "")
        src += r"""
extern "C" void to_half(const float* in, unsigned short* out, long long n) {
  for (long long i = 0; i < n; ++i) out[i] = __float2half_rn(in[i]).x;
}
extern "C" void to_bf16(const float* in, unsigned short* out, long long n) {
  for (long long i = 0; i < n; ++i) out[i] = __float2bfloat16_rn(in[i]).x;
}
extern "C" void from_half(const unsigned short* in, float* out, long long n) {
  for (long long i = 0; i < n; ++i) { __half h; h.x = in[i]; out[i] = __half2float(h); }
}
"""
        root = Path(workdir)
        cpp, so = root / "conversions.cpp", root / "conversions.so"
        cpp.write_text(src)
        cmd = [compiler(), "-std=c++17", "-O0", "-shared", "-fPIC", str(cpp), "-o", str(so)]
        subprocess.run(cmd, check=True, capture_output=True)
        self.lib = ctypes.CDLL(str(so))

    def _call(self, fn: str, x: np.ndarray, out_dtype: Any) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty(x.shape, out_dtype)
        f = getattr(self.lib, fn)
        f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_longlong]
        f(x.ctypes.data, out.ctypes.data, x.size)
        return out

    def to_half(self, x: np.ndarray) -> np.ndarray:
        """float32 -> float16 bits (uint16)."""
        return self._call("to_half", x.astype(np.float32), np.uint16)

    def to_bf16(self, x: np.ndarray) -> np.ndarray:
        """float32 -> bfloat16 bits (uint16)."""
        return self._call("to_bf16", x.astype(np.float32), np.uint16)

    def from_half(self, bits: np.ndarray) -> np.ndarray:
        """float16 bits (uint16) -> float32."""
        return self._call("from_half", bits.astype(np.uint16), np.float32)


# -- cupy's surface the native path uses, backed by the emulation ------------------------------
class _Function:
    def __init__(self, lib: Library, name: str) -> None:
        self.lib = lib
        self.name = name
        self.launches: list[tuple[tuple, tuple]] = []

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        self.launches.append((grid, block))
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        scalars = [a for a in args if not isinstance(a, np.ndarray)]
        # the emulation runs at most a few blocks: the kernel's loop covers the rest
        self.lib.launch(self.name, arrays, scalars, min(int(grid[0]), 4), int(block[0]))


class _Module:
    def __init__(self, owner: FakeCupy, code: str, options: tuple) -> None:
        owner.compiled.append((code, tuple(options)))
        name, _ = kernel_params(code)
        lib = owner.library
        # a library built from the same source already has the kernel (names hash the source)
        self.lib = lib if lib is not None and name in lib.params else Library([code], owner.workdir)
        self.owner = owner

    def get_function(self, name: str) -> _Function:
        fn = _Function(self.lib, name)
        self.owner.functions.append(fn)
        return fn


class _Device:
    def __init__(self, i: int = 0) -> None:
        self.id = i

    def __enter__(self) -> _Device:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class _Cuda:
    Device = _Device


class FakeCupy:
    """``RawModule``, ``empty`` and ``cuda.Device`` of cupy over numpy and the emulation;
    records every module compiled and every launch."""

    def __init__(self, workdir: str | Path, library: Library | None = None) -> None:
        self.workdir = Path(workdir)
        self.library = library
        self.compiled: list[tuple[str, tuple]] = []
        self.functions: list[_Function] = []
        self.cuda = _Cuda()

    def RawModule(self, code: str, options: tuple = (), **kw: Any) -> _Module:  # noqa: N802
        return _Module(self, code, options)

    @staticmethod
    def empty(shape: Any, dtype: Any = np.float32) -> np.ndarray:
        return np.empty(shape, dtype=dtype)


class _Stream:
    def synchronize(self) -> None:
        pass


class FakeNativeDevice:
    """A ``CudaDevice`` whose cupy is :class:`FakeCupy`: ``native`` is True, arrays are numpy.
    ``library``: kernels already compiled for the emulation (others are compiled on demand)."""

    native = True

    def __init__(self, workdir: str | Path, library: Library | None = None) -> None:
        import array_api_compat.numpy as xp

        self.cp = FakeCupy(workdir, library)
        self.xp = xp
        self.id = 0
        self.default_stream = _Stream()
        self.uploads = 0

    def to_device(self, array: np.ndarray, stream: Any) -> np.ndarray:
        self.uploads += 1
        return np.array(array, copy=True)
