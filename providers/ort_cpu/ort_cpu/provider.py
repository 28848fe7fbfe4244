"""CPUExecutionProvider: numpy kernels from :mod:`ort_cpu.kernels`."""

from __future__ import annotations

import ctypes
import sys

import numpy as np

from ort_core.provider import Claim, KernelProvider

from . import _threads
from .kernels import registry

#: ops whose kernels multiply matrices through numpy's BLAS (the ones a spinning OpenBLAS worker
#: would follow with single-threaded work); subgraph bodies' kernels are created here too
BLAS_OPS = frozenset(
    "MatMul Gemm Conv ConvTranspose ConvInteger QLinearConv QLinearMatMul MatMulInteger Einsum "
    "FusedConv FusedGemm FusedMatMul MatMulIntegerToFloat DynamicQuantizeMatMul MatMulNBits QGemm "
    "Attention MultiHeadAttention GroupQueryAttention QAttention SparseToDenseMatMul DeformConv "
    "LSTM GRU RNN DynamicQuantizeLSTM LinearClassifier LinearRegressor SVMClassifier SVMRegressor "
    "Det TfIdfVectorizer".split()
)


#: weights (an ai.onnx.ml op's coefficients or support vectors, a MatMul's or Gemm's constant
#: right operand) below which a product does not make the session keep numpy's BLAS on one
#: thread during runs: OpenBLAS multiplies it on one thread anyway (up to 128 rows), and setting
#: and restoring its thread count cost 2.7-3 us a run, a quarter of a batch-1 scikit-learn
#: model's (LogisticRegression 11.6 -> 8.9 us)
SMALL_ML_WEIGHTS = 2048


def _small_ml_product(info) -> bool:
    """Whether ``info``'s node multiplies by fewer than :data:`SMALL_ML_WEIGHTS` weights: an
    ai.onnx.ml op, or a MatMul or Gemm whose right operand is such a constant (scikit-learn's
    PCA and scalers)."""
    if info.node.domain == "ai.onnx.ml":
        for name in ("coefficients", "support_vectors"):
            v = info.attr(name)
            if v is not None and len(v) >= SMALL_ML_WEIGHTS:
                return False
        return True
    if info.node.op_type in ("MatMul", "Gemm") and info.node.domain == "":
        b = info.constant(1)
        return b is not None and b.size < SMALL_ML_WEIGHTS
    return False


class CPUExecutionProvider(KernelProvider):
    """Runs nodes with numpy kernels on the host. Always available; the default fallback.

    ``SessionOptions.intra_op_num_threads`` is the number of threads a run's kernels share, as in
    onnxruntime (0, the default: one per core this process may use). The provider runs large
    products and other heavy kernels on its own pool of that many threads and keeps numpy's
    OpenBLAS on one thread while a run is in progress (:mod:`ort_cpu._threads` says why); numpy
    code outside runs keeps its BLAS threads. Where numpy's BLAS is not an OpenBLAS whose thread
    count can be set directly, the count limits the BLAS library's own threads through
    threadpoolctl instead (process-wide: the last session created with a count decides it).

    With ``use_per_session_threads = False`` the thread count comes from
    ``set_global_thread_pool_sizes`` instead.

    ``SessionOptions.enable_cpu_mem_arena`` (on by default, as in onnxruntime) makes the C
    allocator keep freed memory for reuse instead of returning it to the system after every run
    (see :func:`retain_freed_memory`); numpy allocates every intermediate tensor through it.
    """

    name = "CPUExecutionProvider"
    aliases = ("cpu",)
    registry = registry

    def __init__(self, options=None, session_options=None):
        super().__init__(options, session_options)
        threads = int(getattr(session_options, "intra_op_num_threads", 0) or 0)
        if session_options is not None and not getattr(
            session_options, "use_per_session_threads", True
        ):
            from ort_core.environment import global_thread_pool_sizes

            sizes = global_thread_pool_sizes()
            threads = sizes[0] if sizes else 0
        self.threads = threads if threads > 0 else _threads.default_threads()
        self._own_pool = _threads.can_set_threads()
        if self._own_pool:
            self._pool = _threads.pool(self.threads)
        else:
            self._pool = None
            if threads > 0:
                set_blas_threads(threads)
        # onnxruntime's switch for its pool's spinning (on unless "0")
        flag = getattr(session_options, "_flag", None)
        self._spin = flag is None or flag("session.intra_op.allow_spinning", "1")
        # and for its workers to stop polling as soon as a run ends ("1"; they linger otherwise)
        self._stop_spinning = flag is not None and flag("session.force_spinning_stop", "0")
        if getattr(session_options, "enable_cpu_mem_arena", True):
            retain_freed_memory()

    _uses_blas = False

    def get_capability(self, view):
        """Every node the kernels run, one by one, but squeeze-and-excitation blocks
        (:mod:`ort_cpu.squeeze_excite`) and Conv + HardSwish or QuickGelu pairs
        (:mod:`ort_cpu.conv_activation`), each claimed as a fused subgraph, at the EXTENDED
        optimization level and above where compiled kernels are on."""
        from . import conv_activation, squeeze_excite

        single = super().get_capability(view)
        level = int(getattr(self.session_options, "graph_optimization_level", 99))
        if level < 2 or not _jit_on() or not single:
            return single
        claimed = {id(c.nodes[0]) for c in single if not c.fused}
        groups = squeeze_excite.find(view, claimed)
        claimed -= {id(n) for g in groups for n in g}
        pairs = conv_activation.find(view, claimed)
        if not groups and not pairs:
            return single
        taken = {id(n) for g in groups + pairs for n in g}
        kept = [c for c in single if c.fused or id(c.nodes[0]) not in taken]
        return kept + [
            Claim.fused_group(g, f"{'Conv' + g[-1].op_type if g[0].op_type == 'Conv' else 'SqueezeExcite'}"
                                 f"_{g[-1].name or k}")
            for k, g in enumerate(groups + pairs)
        ]  # fmt: skip

    def compile(self, subgraph, opsets):
        """A fused subgraph this provider claimed: a squeeze-and-excitation block or a Conv +
        HardSwish or QuickGelu pair."""
        from . import conv_activation, squeeze_excite

        if subgraph.nodes[0].op_type == "Conv":
            return conv_activation.compile_pair(subgraph, opsets, self)
        return squeeze_excite.compile_block(subgraph)

    def create_kernel(self, info):
        if info.node.op_type in BLAS_OPS and not _small_ml_product(info):
            self._uses_blas = True
            if self._pool is not None:
                # the direct GEMM that splits products among the run's threads, found now (it
                # asks threadpoolctl which BLAS numpy loaded): found in the first run, it made
                # a two-thread first run 4-5 ms longer
                from .kernels import _blas

                _blas.find_gemm(np.float32)
        kernel = super().create_kernel(info)
        if self._pool is not None and self._spin and not self._pool.spinning:
            # once a kernel has compiled code, the pool switches to the compiled hand-off
            # (``ort_cpu._threads``, which loads numba even where the kernels come from the
            # saved library); a model whose kernels never need compiled code does not load it
            from ._jit import in_use

            if in_use():
                self._pool.start_spinning()
        return kernel

    def on_run_start(self, ctx) -> None:
        """The run's kernels share this session's threads; numpy's BLAS stays on one thread
        when one of them multiplies matrices (other sessions, e.g. tree ensembles at batch 1,
        pay nothing for it)."""
        if self._pool is not None or self._uses_blas:
            _threads.enter(self._pool, self._own_pool and self._uses_blas, self._spin)

    def wants_run_hooks(self) -> bool:
        """One thread and no BLAS kernel: the hooks would do nothing. Otherwise the session's
        runs call the two functions :func:`_threads.run_hooks` made for this provider's pool and
        flags (instance attributes over the methods: every run calls them, and the methods'
        tests and layer cost a third of a microsecond a run)."""
        if self._pool is None and not self._uses_blas:
            return False
        self.on_run_start, self.on_run_end = _threads.run_hooks(
            self._pool, self._own_pool and self._uses_blas, self._spin, self._stop_spinning
        )
        return True

    def on_run_end(self, ctx) -> None:
        if self._pool is not None or self._uses_blas:
            _threads.leave(self._stop_spinning)

    def release_free_memory(self) -> None:
        """Return the heap's free memory to the system (the run option
        ``memory.enable_memory_arena_shrinkage`` = "cpu:0" asks for it after a run)."""
        trim_freed_memory()


def _jit_on() -> bool:
    """Whether compiled kernels are on (the fused blocks need them)."""
    from ._jit import available

    return available()


def set_blas_threads(threads: int) -> None:
    """Limit numpy's BLAS to ``threads`` threads (no-op when threadpoolctl finds no BLAS)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_retaining = False


def trim_freed_memory() -> bool:
    """glibc's ``malloc_trim(0)``: give the heap's free pages back to the system. Returns whether
    it ran (a no-op on other C libraries)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = (ctypes.c_size_t,), ctypes.c_int
    trim(0)
    return True


def retain_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory in the process, the role of onnxruntime's CPU arena.

    By default glibc serves blocks above a moving threshold with their own mmap and gives the top
    of the heap back to the system once enough of it is free, so every run of a model re-faults
    (and the kernel re-zeroes) the pages of its intermediate tensors: thousands of page faults
    per run of a small CNN. With a fixed 32 MiB mmap threshold (glibc's maximum) and a 1 GiB trim
    threshold, freed tensors are reused by the next run. Peak memory is unchanged: the retained
    pages are the ones the previous run already touched. Process-wide, once; a no-op on other C
    libraries. Returns whether the allocator was tuned.
    """
    global _retaining
    if _retaining:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1 and mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    _retaining = ok
    return ok
