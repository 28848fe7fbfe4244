"""Host emulation of the CUDA C's per-thread logic: the provider's ``.cu`` sources compiled as C++
with g++ and run on the CPU, one fiber per CUDA thread.

This is not CUDA: no GPU, no NVRTC, no memory model. It runs the kernels' arithmetic and control
flow thread by thread, block after block, with what the sources use emulated on top:

* ``__global__``/``__device__``/``__forceinline__`` are plain C++; ``threadIdx``, ``blockIdx``,
  ``blockDim`` and ``gridDim`` are globals the scheduler sets before it resumes a thread;
* each CUDA thread of a block is a ``ucontext`` fiber; ``__syncthreads()`` parks it until every
  live thread of the block arrived, and the warp shuffles (``__shfl_xor_sync``) exchange values
  through a slot per thread between two warp barriers (threads that wait at different barriers
  are reported as an error, as the divergence they are);
* ``__shared__`` variables are statics (blocks run one after the other), the dynamic shared memory
  is one buffer (poisoned with 0xFF before each block), atomics are plain read-modify-writes;
* ``__half`` is ``_Float16`` and ``__nv_bfloat16`` 16 bits with round-to-nearest-even conversions
  (stub ``cuda_fp16.h``/``cuda_bf16.h``), bit-compatible with numpy's float16 and ml_dtypes'
  bfloat16, so the kernels read and write numpy arrays in place.

:class:`EmuDevice` stands in for ``CudaDevice`` with numpy as ``cp``: the provider's Python
wrappers (``ort_cuda.kernels.raw``) run unchanged on it, launch configuration included (block
sizes must be multiples of 32 up to 1024, dynamic shared memory at most 48 KiB, and every
scalar argument a numpy scalar of the parameter's exact size and kind: what cupy would pass).
Compiled libraries are cached by content under the temporary folder, shared by test workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ort_cuda.nvrtc import source

LABEL = "host emulation of the CUDA C's per-thread logic"
#: dynamic shared memory a block may use (CUDA's default without opting in)
SHARED_LIMIT = 48 * 1024
CXXFLAGS = ("-std=c++17", "-O0", "-shared", "-fPIC", "-w")

_FP16 = r"""
#pragma once
#include <cstring>
struct __half {
  _Float16 v;
};
inline float __half2float(__half h) { return (float)h.v; }
inline __half __float2half_rn(float f) { __half h; h.v = (_Float16)f; return h; }
inline __half __float2half(float f) { return __float2half_rn(f); }
"""

_BF16 = r"""
#pragma once
#include <cstring>
struct __nv_bfloat16 {
  unsigned short x;
};
inline float __bfloat162float(__nv_bfloat16 b) {
  unsigned int u = (unsigned int)b.x << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  unsigned int u;
  memcpy(&u, &f, 4);
  __nv_bfloat16 b;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    b.x = (unsigned short)((u >> 16) | 0x40u);  // quiet NaN
    return b;
  }
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  b.x = (unsigned short)(u >> 16);
  return b;
}
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
"""

_HEADER = r"""
// emulation of the CUDA C the ort_cuda sources use (see tests/providers/cuda/_emulate.py)
#include <cmath>
#include <math.h>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <utility>
#include <ucontext.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define ORT_EXTERN_SHARED extern

struct dim3 {
  unsigned x, y, z;
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;

alignas(16) unsigned char ort_smem[48 * 1024];

inline float __int_as_float(int v) { float f; memcpy(&f, &v, 4); return f; }
inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }

namespace emu {
enum State { RUN, BLOCK, WARP, DONE };
const size_t STACK = 128 * 1024;
struct Fiber {
  ucontext_t ctx;
  int state;
};
static Fiber fibers[1024];
static char* stacks[1024];
static ucontext_t sched;
static int current = 0, nthreads = 0;
static std::function<void()>* body = nullptr;
static char error[256] = "";
alignas(16) static unsigned char exch[1024][16];

static void set_thread(int t) {
  current = t;
  threadIdx.x = t % blockDim.x;
  threadIdx.y = (t / blockDim.x) % blockDim.y;
  threadIdx.z = t / (blockDim.x * blockDim.y);
}
static void entry(int t) {
  (*body)();
  fibers[t].state = DONE;
  swapcontext(&fibers[t].ctx, &sched);
}
inline void wait(int st) {
  const int t = current;
  fibers[t].state = st;
  swapcontext(&fibers[t].ctx, &sched);
}
static int run_block() {
  for (int t = 0; t < nthreads; ++t) {
    if (!stacks[t]) stacks[t] = (char*)malloc(STACK);
    getcontext(&fibers[t].ctx);
    fibers[t].ctx.uc_stack.ss_sp = stacks[t];
    fibers[t].ctx.uc_stack.ss_size = STACK;
    fibers[t].ctx.uc_link = nullptr;
    makecontext(&fibers[t].ctx, (void (*)())entry, 1, t);
    fibers[t].state = RUN;
  }
  for (;;) {
    for (int t = 0; t < nthreads; ++t) {
      if (fibers[t].state == RUN) {
        set_thread(t);
        swapcontext(&sched, &fibers[t].ctx);
      }
    }
    int done = 0;
    for (int t = 0; t < nthreads; ++t) done += fibers[t].state == DONE;
    if (done == nthreads) return 0;
    bool released = false;
    for (int w = 0; w < nthreads; w += 32) {
      bool any = false, all = true;
      for (int t = w; t < w + 32 && t < nthreads; ++t) {
        if (fibers[t].state == DONE) continue;
        any = true;
        if (fibers[t].state != WARP) all = false;
      }
      if (any && all) {
        for (int t = w; t < w + 32 && t < nthreads; ++t)
          if (fibers[t].state == WARP) fibers[t].state = RUN;
        released = true;
      }
    }
    if (!released) {
      bool all = true;
      for (int t = 0; t < nthreads; ++t)
        if (fibers[t].state != DONE && fibers[t].state != BLOCK) all = false;
      if (all) {
        for (int t = 0; t < nthreads; ++t)
          if (fibers[t].state == BLOCK) fibers[t].state = RUN;
        released = true;
      }
    }
    if (!released) {
      snprintf(error, sizeof(error),
               "block (%u, %u, %u): threads wait at different barriers (divergent "
               "__syncthreads or warp shuffle)", blockIdx.x, blockIdx.y, blockIdx.z);
      return 1;
    }
  }
}
static int launch(dim3 g, dim3 b, size_t shmem, std::function<void()> f) {
  error[0] = 0;
  const unsigned n = b.x * b.y * b.z;
  if (n == 0 || n > 1024 || n % 32 != 0) {
    snprintf(error, sizeof(error), "block of %u threads (1 to 1024, a multiple of 32 expected)", n);
    return 1;
  }
  if (shmem > sizeof(ort_smem)) {
    snprintf(error, sizeof(error), "%zu bytes of dynamic shared memory (at most %zu)", shmem,
             sizeof(ort_smem));
    return 1;
  }
  if (g.x == 0 || g.y == 0 || g.z == 0) {
    snprintf(error, sizeof(error), "empty grid");
    return 1;
  }
  gridDim = g;
  blockDim = b;
  nthreads = (int)n;
  body = &f;
  for (unsigned z = 0; z < g.z; ++z)
    for (unsigned y = 0; y < g.y; ++y)
      for (unsigned x = 0; x < g.x; ++x) {
        blockIdx.x = x;
        blockIdx.y = y;
        blockIdx.z = z;
        memset(ort_smem, 0xff, shmem);
        if (run_block()) return 1;
      }
  return 0;
}
}  // namespace emu

inline void __syncthreads() { emu::wait(emu::BLOCK); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::wait(emu::WARP); }

template <typename T>
T __shfl_xor_sync(unsigned, T v, int lane_mask, int width = 32) {
  static_assert(sizeof(T) <= 16, "shuffle of a large type");
  const int t = emu::current, lane = t & 31;
  memcpy(emu::exch[t], &v, sizeof(T));
  emu::wait(emu::WARP);
  int src = lane ^ lane_mask;
  if (src >= 32 || (src / width) != (lane / width)) src = lane;
  T r;
  memcpy(&r, emu::exch[(t & ~31) + src], sizeof(T));
  emu::wait(emu::WARP);
  return r;
}

// atomics: the threads of the emulation never run at the same time
template <typename U>
U atomicCAS(U* p, U expected, U desired) {
  const U old = *p;
  if (old == expected) *p = desired;
  return old;
}
template <typename T>
T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
T atomicMax(T* p, T v) {
  const T old = *p;
  if (v > old) *p = v;
  return old;
}
template <typename T>
T atomicMin(T* p, T v) {
  const T old = *p;
  if (v < old) *p = v;
  return old;
}
"""

_DRIVER_HEAD = r"""
// ---- launch entry points (generated) ----
template <typename... A, size_t... I>
static void emu_call(void (*f)(A...), void** args, std::index_sequence<I...>) {
  f(*reinterpret_cast<typename std::remove_reference<A>::type*>(args[I])...);
}
template <typename T>
constexpr int emu_kind() {
  return std::is_pointer<T>::value ? 0 : std::is_integral<T>::value ? 1
       : std::is_floating_point<T>::value ? 2 : 3;
}
template <typename... A>
static const int* emu_sizes(void (*)(A...)) {
  static const int s[] = {(int)sizeof(A)..., 0};
  return s;
}
template <typename... A>
static const int* emu_kinds(void (*)(A...)) {
  static const int k[] = {emu_kind<A>()..., -1};
  return k;
}
template <typename... A>
static int emu_nargs(void (*)(A...)) {
  return (int)sizeof...(A);
}
extern "C" const char* emu_error() { return emu::error; }
"""


def _driver_one(i: int, expr: str) -> str:
    return (
        f"static auto emu_fn_{i} = &{expr};\n"
        f'extern "C" int emu_nargs_{i}() {{ return emu_nargs(emu_fn_{i}); }}\n'
        f'extern "C" const int* emu_sizes_{i}() {{ return emu_sizes(emu_fn_{i}); }}\n'
        f'extern "C" const int* emu_kinds_{i}() {{ return emu_kinds(emu_fn_{i}); }}\n'
        f"template <typename... A>\n"
        f"static void emu_invoke_{i}(void (*f)(A...), void** args) {{\n"
        f"  emu_call(f, args, std::index_sequence_for<A...>{{}});\n"
        f"}}\n"
        f'extern "C" int emu_launch_{i}(unsigned gx, unsigned gy, unsigned gz, unsigned bx,\n'
        f"    unsigned by, unsigned bz, size_t shmem, void** args) {{\n"
        f"  return emu::launch(dim3{{gx, gy, gz}}, dim3{{bx, by, bz}}, shmem,\n"
        f"                     [&] {{ emu_invoke_{i}(emu_fn_{i}, args); }});\n"
        f"}}\n"
    )


def translation_unit(name: str, exprs: tuple[str, ...]) -> str:
    """The C++ text of ``cuda/<name>`` with the emulation header and a launch entry point per
    name expression."""
    drivers = "".join(_driver_one(i, e) for i, e in enumerate(exprs))
    return _HEADER + "\n" + source(name) + "\n" + _DRIVER_HEAD + drivers


def have_compiler() -> bool:
    return shutil.which("g++") is not None


def _cache_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"ort_cuda_emulation_{os.getuid()}"
    d.mkdir(exist_ok=True)
    return d


def build(name: str, exprs: tuple[str, ...]) -> Path:
    """Compile (or find cached) the emulation library of a source with these instantiations."""
    unit = translation_unit(name, exprs)
    key = hashlib.sha256("\0".join([unit, _FP16, _BF16, *CXXFLAGS]).encode()).hexdigest()[:24]
    folder = _cache_dir()
    lib = folder / f"{Path(name).stem}_{key}.so"
    if lib.exists():
        return lib
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.exists():
            return lib
        work = Path(tempfile.mkdtemp(dir=folder))
        try:
            inc = work / "include"
            inc.mkdir()
            (inc / "cuda_fp16.h").write_text(_FP16)
            (inc / "cuda_bf16.h").write_text(_BF16)
            cpp = work / f"{Path(name).stem}.cpp"
            cpp.write_text(unit)
            out = work / "lib.so"
            proc = subprocess.run(
                ["g++", *CXXFLAGS, f"-I{inc}", str(cpp), "-o", str(out)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"g++ could not compile the emulation of {name}:\n{proc.stderr}")
            os.replace(out, lib)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return lib


class EmuKernel:
    """One name expression of an emulated module, called as cupy's RawKernel is:
    ``kernel(grid, block, args, shared_mem=0)``."""

    def __init__(self, lib: ctypes.CDLL, i: int, expr: str, stats: dict[str, int]) -> None:
        self.expr = expr
        self._launch = getattr(lib, f"emu_launch_{i}")
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_size_t, ctypes.c_void_p]
        n = getattr(lib, f"emu_nargs_{i}")()
        for what in ("sizes", "kinds"):
            getattr(lib, f"emu_{what}_{i}").restype = ctypes.POINTER(ctypes.c_int)
        sizes = getattr(lib, f"emu_sizes_{i}")()
        kinds = getattr(lib, f"emu_kinds_{i}")()
        self.sizes = [sizes[j] for j in range(n)]
        self.kinds = [kinds[j] for j in range(n)]
        self._error = lib.emu_error
        self._error.restype = ctypes.c_char_p
        self._stats = stats

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        g = tuple(int(v) for v in grid) + (1,) * (3 - len(grid))
        b = tuple(int(v) for v in block) + (1,) * (3 - len(block))
        if len(args) != len(self.sizes):
            raise TypeError(f"{self.expr}: {len(args)} arguments for {len(self.sizes)} parameters")
        keep: list[Any] = []
        ptrs = (ctypes.c_void_p * max(1, len(args)))()
        for j, (a, size, kind) in enumerate(zip(args, self.sizes, self.kinds)):
            what = f"{self.expr}: argument {j}"
            if kind == 0:  # pointer
                if a is None:
                    cell = ctypes.c_void_p(0)
                elif isinstance(a, np.ndarray):
                    if not a.flags.c_contiguous:
                        raise TypeError(f"{what} is not C-contiguous")
                    cell = ctypes.c_void_p(a.ctypes.data)
                else:
                    raise TypeError(
                        f"{what}: a pointer parameter takes an array or None, not {type(a)}"
                    )
            else:
                if not isinstance(a, np.generic):
                    raise TypeError(f"{what}: pass a numpy scalar (cupy's type), not {type(a)}")
                if a.dtype.itemsize != size:
                    raise TypeError(f"{what}: {a.dtype} for a parameter of {size} bytes")
                if kind == 1 and a.dtype.kind not in "iub" or kind == 2 and a.dtype.kind != "f":
                    raise TypeError(f"{what}: {a.dtype} for a parameter of kind {kind}")
                cell = ctypes.create_string_buffer(a.tobytes(), size)
            keep.append(cell)
            ptrs[j] = ctypes.cast(ctypes.pointer(cell), ctypes.c_void_p)
        rc = self._launch(*g, *b, int(shared_mem), ctypes.cast(ptrs, ctypes.c_void_p))
        if rc != 0:
            raise RuntimeError(f"{self.expr}: {self._error().decode()}")
        self._stats[self.expr] = self._stats.get(self.expr, 0) + 1


class EmuModule:
    def __init__(self, name: str, exprs: tuple[str, ...], stats: dict[str, int]) -> None:
        self.name = name
        self.exprs = exprs
        self._lib = ctypes.CDLL(str(build(name, exprs)))
        self._kernels: dict[str, EmuKernel] = {}
        self._stats = stats

    def get_function(self, expr: str) -> EmuKernel:
        k = self._kernels.get(expr)
        if k is None:
            k = self._kernels[expr] = EmuKernel(
                self._lib, self.exprs.index(expr), expr, self._stats
            )
        return k


class NumpyXP:
    """numpy as the wrappers' ``cp``: cupy's sort is stable, and ``empty`` arrays are poisoned
    (all bits set) so that elements a kernel forgets to write show."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def argsort(a, axis=-1, kind=None):
        return np.argsort(a, axis=axis, kind="stable")

    @staticmethod
    def empty(shape, dtype=float):
        a = np.empty(shape, dtype)
        a.view(np.uint8).reshape(-1)[...] = 0xFF
        return a

    @staticmethod
    def asnumpy(a):
        return np.asarray(a)


class EmuDevice:
    """A stand-in CudaDevice whose modules are the host emulation (``native``: kernels that need
    CUDA build on it)."""

    native = True

    def __init__(self) -> None:
        self.cp = NumpyXP()
        self._modules: dict[tuple, EmuModule] = {}
        #: launches per name expression (the tests report what they exercised)
        self.launches: dict[str, int] = {}

    def module(self, name: str, name_expressions=(), options=()) -> EmuModule:
        key = (name, tuple(name_expressions))
        mod = self._modules.get(key)
        if mod is None:
            mod = self._modules[key] = EmuModule(name, tuple(name_expressions), self.launches)
        return mod

    def scope(self, stream=None):
        return contextlib.nullcontext()


class EmuProvider:
    """What a kernel builder reads of its provider: the device."""

    def __init__(self, dev: EmuDevice) -> None:
        self.cuda = dev
        self.xp = dev.cp
