"""The CPU provider's intra-op threads: its own pool, with BLAS kept on the calling thread.

onnxruntime runs a session's kernels on one intra-op pool of ``intra_op_num_threads`` threads
(by default one per core). The CPU provider does the same with this module instead of leaving
the parallelism to numpy's OpenBLAS, for a measured reason: after a threaded GEMM, OpenBLAS's
workers keep spinning on their cores for about 2**28 cycles (a tenth of a second) waiting for
the next one, and every single-threaded step that follows (the compiled depthwise convolutions,
numpy's elementwise loops) then shares its core with a spinning thread. On the 2-core benchmark
machine that made MobileNetV2 3.5x and ResNet-50 2.5x slower at 2 threads than at 1. Where the
spin time cannot be changed from a running process (OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT``
once, when numpy loads it), the provider keeps OpenBLAS on one thread for the length of each
run and splits the large products itself:

- :class:`Pool` holds ``threads - 1`` worker threads that run pieces of one kernel's work; the
  calling thread runs pieces too, claiming them one at a time with the workers, so a worker
  whose core is busy elsewhere delays nothing. Work handed to the pool releases the GIL (BLAS
  through ctypes or numpy, compiled kernels with ``nogil``), so pieces run at the same time.
- Two hand-offs. Until numba is loaded, workers wait on a queue and the caller on an event:
  15-30 us to wake each on the 2-core virtual machines measured, about 55 us per split. Once a
  kernel has compiled code (numba's, or the saved library's, :mod:`._aot`), the pool spins
  (:meth:`Pool.start_spinning`, :mod:`._spin_jit`; Linux on x86-64): during a run, idle
  workers poll for work in compiled code without the GIL, for at most :data:`SPIN_POLLS`
  polls, and run GEMM pieces there themselves through the BLAS routine's address, while the
  caller polls for the last piece (about 2 us per split, so GEMVs from :data:`MIN_SPIN_WORK`
  multiply-adds and GEMMs from :data:`MIN_SPIN_GEMM` are split instead of
  :data:`MIN_PARALLEL_WORK`; at 2 threads against the
  queue: MobileNetV2 0.79-0.86x, ShuffleNetV2 0.82-0.89x, SqueezeNet 0.81-0.88x, Inception-v2
  0.92x, ResNet-50 1.0x).
  Compiled kernels hand their pieces over the same way (:func:`split_compiled`: numba
  ``cfunc`` pieces the workers call by address), as the tree walks and the direct
  convolutions do. Pieces of Python work take the GIL (30-60 us to hand over). As
  onnxruntime's, workers keep polling after a run ends, up to :data:`SPIN_POLLS` polls after
  their last piece, so the next run's first split finds them awake; then, and in sessions
  that set onnxruntime's ``session.intra_op.allow_spinning`` to "0", idle workers sleep on a
  futex, also in compiled code, so a worker woken for a compiled piece never waits for the
  GIL. After an idle gap longer than the polls the first split still pays the worker's
  wake-up: a model of one large GEMM then runs 1.2-1.3x its one-thread time at 2 threads
  (MobileNetV2, of many, 0.78x).
- :func:`enter` and :func:`leave` (the provider's ``on_run_start``/``on_run_end``) make the
  session's pool the calling thread's for the run and set numpy's OpenBLAS to one thread while
  any run is in progress (a count shared by concurrent runs), then give it back its thread
  count: numpy code outside runs keeps its threads.
- :func:`split` is how kernels use it: ``split(total, fn, cost)`` calls ``fn(lo, hi)`` over
  pieces of ``range(total)``, in parallel when the work pays for the hand-off and for sharing
  operands across cores (:data:`MIN_PARALLEL_WORK`), serially otherwise, or when no pool is
  active (one thread, a run on an inter-op thread, a call from a piece already running in
  parallel).

Only compute-bound work is split on a queue pool (the GEMMs of :mod:`.kernels._blas`, the row
blocks of the per-tap and im2col convolutions, the compiled tree-ensemble walks, exp-heavy
elementwise blocks). Memory-bound kernels stay on the calling thread there: the compiled
depthwise convolutions and FusedConv's epilogue; split with the queue's hand-off they made
MobileNetV2 and ShuffleNetV2 15-30% slower at 2 threads than at 1. On a spinning pool the
direct convolutions' groups and channels are split too, as compiled pieces
(:mod:`.kernels._conv_pieces`), and so are the int8 products' tiles (:mod:`.kernels._vnni`),
the attention softmax's heads and the erf GELU's rows (:mod:`.kernels._exp_jit`), and large
float32 activations, adds, subtractions and products (:mod:`.kernels._elementwise_pieces`).

Where numpy's BLAS is not an OpenBLAS whose thread count this module can set directly, nothing
is split and the provider limits the BLAS library's own threads through threadpoolctl instead,
as before.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import queue
import sys
import threading
from collections.abc import Callable

__all__ = [
    "Pool", "default_threads", "enter", "gemm_pool", "leave", "pool", "spin_supported",
    "bounds", "spinning", "split", "split_compiled", "threads", "will_split",
]  # fmt: skip

#: multiply-adds below which a product runs on one thread. The hand-off to a waiting worker
#: costs 20-50 us, but inside a model a split product pays more: its operands were just written
#: by the previous kernel in the calling core's cache, and each thread's half runs 1.3-1.5x
#: slower than it would alone. Interleaved in one process at 2 threads against 1 (medians):
#: from 2**21 on, MobileNetV2 took 1.27x and ShuffleNetV2 1.40x the one-thread time; from 2**23
#: 0.87x and 1.04x, with ResNet-50 at 0.73x and BERT-base at 0.80x.
MIN_PARALLEL_WORK = 1 << 23

#: multiply-adds from which a GEMM is split on a spinning pool (:meth:`Pool.run_gemm`), where the
#: hand-off costs about 2 us instead of 50
MIN_SPIN_WORK = 1 << 20
#: and from which a product of several rows is (a one-row product, a GEMV, reads its matrix from
#: memory and gains from two cores' bandwidth from MIN_SPIN_WORK): a run waits for the slower
#: core's half. Interleaved with onnxruntime in one process, two threads, Zen 4, in blocks of
#: ten runs after 20 ms idle (where the second core is often slow to start), median us
#: splitting from 2**20 / 2**22: gru_h128_s64 (input projections of 2.0 and 3.1M) 544 / 467,
#: 520 / 494, 643 / 574 (2**40), lstm_h128_s64 (2.6 and 4.2M) 663 / 636; the CNNs within
#: 2% either way (MobileNetV2 6297 / 5770 and 7023 / 6911, SqueezeNet 6297 / 6057 and
#: 5393 / 5452, Inception-v1 25046 / 25658, YOLO-n 85230 / 86306). In the benchmark's
#: geometry (20 ms of runs after 50 ms idle) the same: gru_h128_s64 445 / 441, lstm_h128_s64
#: 520 / 529
MIN_SPIN_GEMM = 1 << 22


class _Local(threading.local):
    """This thread's state in one list, ``state``: ``[pool, nested, *stack]``: the run's pool
    (None outside a run or with one thread), whether the thread runs a piece of a split already
    (a piece that splits again runs its parts serially), then the runs it entered (a run may
    start inside another's kernel). One list, so that a run's start and end and a kernel's
    question about its threads each read the thread-local once (every run at two threads pays
    them: six reads and writes of a thread-local's attributes cost 0.3 us a run)."""

    def __init__(self) -> None:
        self.state: list = [None, False]


_local = _Local()


class _Job:
    """One kernel's pieces, claimed one at a time by whichever thread is free (the caller too),
    so a worker that wakes late (its core busy elsewhere) finds the work done instead of holding
    the caller up: with no worker free the caller runs every piece itself."""

    __slots__ = ("fn", "bounds", "claims", "left", "lock", "done", "error", "spin", "ctrl", "seq")

    def __init__(
        self, fn: Callable[[int, int], object], bounds: list[tuple[int, int]], spin=None, ctrl=None
    ) -> None:
        self.fn, self.bounds = fn, bounds
        self.claims = itertools.count()  # next() is atomic under the GIL
        self.left = len(bounds)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None
        # on a spinning pool, finished pieces are counted in its ctrl array instead (the
        # caller polls it without the GIL), and seq is the job's number there
        self.spin, self.ctrl, self.seq = spin, ctrl, -1

    def work(self) -> None:
        n = len(self.bounds)
        while (i := next(self.claims)) < n:
            try:
                self.fn(*self.bounds[i])
            except BaseException as e:  # handed to the caller, which raises it
                self.error = self.error or e
            if self.spin is not None:
                self.spin.finish(self.ctrl)
                continue
            with self.lock:
                self.left -= 1
                if self.left == 0:
                    self.done.set()


#: polls (about 25 ns each) a worker of a spinning pool makes after its last piece before it
#: sleeps, even while a run is in progress: 1 ms (10 ms measured the same on MobileNetV2,
#: ResNet-50 and Inception-v2 at 2 threads), so a run that stops splitting (a long serial
#: stretch) gives its core back soon
SPIN_POLLS = 40_000

#: GEMM pieces a spinning pool's tables hold (a larger job runs through Python pieces)
SPIN_PIECES = 256

#: longest sleep of an idle worker of a spinning pool before it looks at the pool again (a job
#: posted wakes it at once)
SLEEP_SECONDS = 0.05


class Pool:
    """``size - 1`` worker threads plus the caller.

    Workers start out blocking on a queue between jobs (a hand-off costs 15-30 us to wake a
    worker and as much again to wake the caller when the last piece is done).
    :meth:`start_spinning` switches the pool to the compiled hand-off of :mod:`._spin_jit`,
    once numba is loaded: during a run that allows spinning, idle workers poll for work
    instead of sleeping, run GEMM pieces without the GIL, and the caller polls for their
    completion (a hand-off of about 2 us)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._inboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(1, size)]
        self._spin = None  # the _spin_jit module once spinning
        self._posting = threading.Lock()  # one job at a time on the spinning path
        self._spinning_runs: list = []  # one entry per run in progress that lets workers spin
        self._spin_flag = 0  # the value last written to the ctrl table's SPIN
        self._runs_lock = threading.Lock()
        self._job: _Job | None = None
        self._workers = [
            threading.Thread(target=self._work, args=(i,), name=f"ort_cpu-intra-op-{i + 1}",
                             daemon=True)
            for i in range(size - 1)
        ]  # fmt: skip
        for w in self._workers:
            w.start()

    # -- the spinning hand-off -------------------------------------------------------------------
    def start_spinning(self) -> bool:
        """Switch to the compiled hand-off (idempotent); False where it cannot be used (see
        :func:`spin_supported`, or no libc ``syscall``). Called at session creation once a kernel
        has compiled code: it loads numba (the spinning loop is numba's code)."""
        if self._spin is not None:
            return True
        if not spin_supported():
            return False
        from . import _spin_jit

        syscall = _spin_jit.syscall_address()
        if not syscall:
            return False
        _spin_jit.warm()
        with self._posting:
            if self._spin is None:
                self._ctrl, self._ints, self._floats = _spin_jit.tables(SPIN_PIECES)
                self._syscall = syscall
                self._timespec = _spin_jit.timespec(SLEEP_SECONDS)  # kept alive here
                self._timespec_at = self._timespec.ctypes.data
                self._spin = _spin_jit
                for inbox in self._inboxes:  # move blocked workers onto the new loop
                    inbox.put(None)
        return True

    @property
    def spinning(self) -> bool:
        return self._spin is not None

    def _post(self, kind: int, pieces: int) -> None:
        """Publish a job (the tables or ``self._job`` already hold it) and wake sleeping
        workers. Under ``_posting``."""
        self._spin.post(self._ctrl, kind, pieces, self._syscall)

    def run_gemm(self, ints: list, floats: list) -> bool:
        """Run GEMM pieces (rows of :mod:`._spin_jit`'s tables) on the workers and the calling
        thread; False (nothing run) when the pool is not spinning, is busy with another
        caller's job, or the pieces do not fit its tables."""

        n = len(ints)

        def job(ctrl, table_ints, table_floats, syscall) -> None:
            table_ints[:n] = ints
            table_floats[:n] = floats
            self._post(self._spin.GEMM, n)
            self._spin.run_gemm(ctrl, table_ints, table_floats)

        return self._exclusive(n, job)

    def run_native(
        self, address: int, argument: int, total: int, parts: int, multiple: int
    ) -> bool:
        """Run the compiled piece at ``address`` over ``range(total)`` in ``parts`` pieces (see
        :func:`split_compiled`), the rows written, posted and run in one compiled call
        (:func:`._spin_jit.run_native`); False as :meth:`run_gemm`."""
        spin = self._spin
        return spin is not None and self._exclusive(
            parts, spin.run_native, address, argument, total, parts, multiple
        )

    def run_gemm2d(self, variant, address, flags, a, b, c, beta: float) -> bool:
        """``c = a @ b + beta * c`` as GEMM pieces on the workers and the calling thread, one
        block of columns (or rows) per thread, cut and posted in compiled code
        (:func:`._spin_jit.run_gemm2d`); False as :meth:`run_gemm`."""
        spin = self._spin
        return spin is not None and self._exclusive(
            self.size, spin.run_gemm2d, variant, address, flags, a, b, c, beta, self.size
        )

    def _exclusive(self, pieces: int, job, *args) -> bool:
        """``job(ctrl, ints, floats, syscall, *args)`` with the pool this caller's while it
        posts and runs a job of ``pieces`` rows; False (nothing run) when the pool is not
        spinning, is busy with another caller's job, or ``pieces`` does not fit its tables."""
        if self._spin is None or pieces > SPIN_PIECES or not self._posting.acquire(blocking=False):
            return False
        try:
            job(self._ctrl, self._ints, self._floats, self._syscall, *args)
        finally:
            self._posting.release()
        return True

    def spin_runs(self, delta: int, stop: bool = False) -> None:
        """A run that lets workers spin starts (+1) or ends (-1), or one that does not starts
        (0). Workers poll after a piece while spinning is allowed: from the start of a run that
        allows it until a run that does not starts, or one that ``stop``s spinning ends, with
        none that allows it in progress."""
        runs = self._spinning_runs  # list append and pop are atomic: no lock counts the runs
        if delta > 0:
            runs.append(None)
        elif delta < 0:
            runs.pop()
        if self._spin is None or not (delta >= 0 or stop) or self._spin_flag == (1 if runs else 0):
            return  # the usual run's start: SPIN is set already (runs leave it set)
        with self._runs_lock:  # not _posting: a job in flight must not hold a run's start up
            # two runs changing it at once may leave it unset during a spinning run: the pool's
            # hand-off then wakes sleeping workers, slower but the same results
            self._spin_flag = 1 if runs else 0
            self._ctrl[self._spin.SPIN] = self._spin_flag

    # -- workers ---------------------------------------------------------------------------------
    def _work(self, i: int) -> None:
        _local.state[1] = True  # a piece that splits again runs its parts serially
        inbox = self._inboxes[i]
        seen = 0
        while True:
            spin = self._spin
            if spin is not None:
                # polls, runs GEMM pieces and sleeps in compiled code; back here only for a
                # job of Python pieces
                seen = spin.serve(
                    self._ctrl, self._ints, self._floats, seen, SPIN_POLLS, self._syscall,
                    self._timespec_at,
                )  # fmt: skip
                job = self._job
                # only the job serve() saw posted: one set up but not yet posted would have
                # its count of finished pieces reset by its posting (and its caller wait on)
                if job is not None and job.seq == seen:
                    job.work()
                continue
            item = inbox.get()  # a job (queue hand-off), or None: the pool started spinning
            if item is not None:
                item.work()

    def map(self, fn: Callable[[int, int], object], bounds: list[tuple[int, int]]) -> None:
        """``fn(lo, hi)`` for every piece, on the workers and the calling thread. Returns when
        all are done; re-raises the first exception a piece raised."""
        if self._spin is not None:
            self._map_spinning(fn, bounds)
            return
        job = _Job(fn, bounds)
        for i in range(min(self.size - 1, len(bounds) - 1)):
            self._inboxes[i].put(job)
        state = _local.state
        state[1] = True
        try:
            job.work()
        finally:
            state[1] = False
        job.done.wait()  # pieces other threads claimed: they use the caller's buffers
        if job.error is not None:
            raise job.error

    def _map_spinning(self, fn: Callable[[int, int], object], bounds: list[tuple[int, int]]):
        state = _local.state
        state[1] = True
        try:
            if not self._posting.acquire(blocking=False):  # another caller's job in flight
                for lo, hi in bounds:
                    fn(lo, hi)
                return
            try:
                job = _Job(fn, bounds, self._spin, self._ctrl)
                job.seq = int(self._ctrl[self._spin.POSTED]) + 1  # the number posting gives it
                self._job = job
                self._post(self._spin.PYTHON, len(bounds))
                job.work()
                self._spin.wait_done(self._ctrl, len(bounds))  # without the GIL
            finally:
                self._job = None
                self._posting.release()
        finally:
            state[1] = False
        if job.error is not None:
            raise job.error


def spin_supported() -> bool:
    """Whether pools can spin here: numba loads (:mod:`ort_cpu._jit`), the CPU is x86-64 (the
    polling loop uses its ``pause`` instruction) and the system Linux (idle workers sleep on a
    futex)."""
    import platform

    from . import _jit

    return (
        sys.platform.startswith("linux")
        and platform.machine().lower() in ("x86_64", "amd64")
        and _jit.available()
    )


def will_split(provider) -> bool:
    """Whether the kernels a session's ``provider`` (the CPU provider, at kernel creation)
    creates may hand compiled pieces to a spinning pool: more than one thread, spinning
    allowed, and pools spin here. Their builders then compile (or load) those pieces at
    session creation instead of in the first run."""
    return (
        getattr(provider, "threads", 1) > 1
        and getattr(provider, "_spin", False)
        and getattr(provider, "_pool", None) is not None
        and spin_supported()
    )


_pools: dict[int, Pool] = {}
_pools_lock = threading.Lock()


def default_threads() -> int:
    """onnxruntime's default intra-op thread count: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pool(size: int) -> Pool | None:
    """The process's pool of ``size`` threads (shared by sessions asking for the same count), or
    None for one thread."""
    if size <= 1:
        return None
    with _pools_lock:
        p = _pools.get(size)
        if p is None:
            p = _pools[size] = Pool(size)
        return p


# numpy's OpenBLAS on one thread while runs are in progress
_blas_lock = threading.Lock()
_blas_runs = 0
_blas_saved = 0


def enter(p: Pool | None, pin_blas: bool = True, spin: bool = True) -> None:
    """Start of a run on this thread: ``p`` is the pool :func:`split` uses until :func:`leave`,
    and numpy's OpenBLAS runs on one thread meanwhile (when ``pin_blas``); the pool's workers
    poll for work during the run where it spins (when ``spin``: onnxruntime's
    ``session.intra_op.allow_spinning``). Every run pays this: the usual case (a spinning run
    while the pool's flag is set already) only counts the run."""
    global _blas_runs, _blas_saved
    state = _local.state
    spun = p if spin else None
    state.append((state[0], pin_blas, spun))
    state[0] = p
    if spun is not None and p._spin_flag:
        p._spinning_runs.append(None)
    elif p is not None:
        p.spin_runs(1 if spin else 0)
    if pin_blas:
        fns = _thread_setter()
        with _blas_lock:
            if _blas_runs == 0 and fns is not None:
                _blas_saved = fns[1]()
                if _blas_saved != 1:
                    fns[0](1)
            _blas_runs += 1


def leave(stop_spinning: bool = False) -> None:
    """End of the run :func:`enter` started on this thread; ``stop_spinning``: the pool's
    workers stop polling now unless another run lets them (onnxruntime's
    ``session.force_spinning_stop``), instead of lingering for their polls."""
    global _blas_runs
    state = _local.state
    state[0], pinned, spun = state.pop()
    if spun is not None:
        if stop_spinning:
            spun.spin_runs(-1, True)
        else:
            spun._spinning_runs.pop()  # a run's end leaves the flag as it is
    if pinned:
        with _blas_lock:
            _blas_runs -= 1
            if _blas_runs == 0 and _blas_saved > 1:  # one thread then: it stays as it is
                _thread_setter()[0](_blas_saved)


def run_hooks(
    p: Pool | None, pin_blas: bool, spin: bool, stop_spinning: bool
) -> tuple[Callable[[object], None], Callable[[object], None]]:
    """A session's ``(on_run_start, on_run_end)``: :func:`enter` and :func:`leave` with these
    arguments. The usual session's (a pool that spins, BLAS left alone, no stop) keeps only the
    previous pool on the stack; the two functions pair with each other only."""
    if p is None or pin_blas or not spin or stop_spinning:

        def start(ctx: object) -> None:
            enter(p, pin_blas, spin)

        def end(ctx: object) -> None:
            leave(stop_spinning)

        return start, end
    local, runs = _local, p._spinning_runs

    def quick_start(ctx: object) -> None:
        state = local.state
        state.append(state[0])
        state[0] = p
        if p._spin_flag:
            runs.append(None)
        else:
            p.spin_runs(1)

    def quick_end(ctx: object) -> None:
        state = local.state
        state[0] = state.pop()
        runs.pop()  # a run's end leaves the flag as it is

    return quick_start, quick_end


def threads() -> int:
    """How many threads :func:`split` may use on this thread now (1 when it runs serially)."""
    state = _local.state
    p = state[0]
    if p is None or state[1]:
        return 1
    return p.size


def spinning() -> bool:
    """Whether :func:`split` would hand pieces to a spinning pool now (see :class:`Pool`)."""
    return gemm_pool() is not None


def gemm_pool() -> Pool | None:
    """The run's pool when GEMM pieces can be handed to it now (it spins, and this is not a
    piece already running in parallel), else None: see :meth:`Pool.run_gemm`."""
    state = _local.state
    p = state[0]
    if p is None or state[1] or p._spin is None:
        return None
    return p


def split(total: int, fn: Callable[[int, int], object], cost: float, min_piece: int = 1) -> None:
    """``fn(lo, hi)`` over ``range(total)`` cut into contiguous pieces, one per thread of the
    run's pool, when ``cost`` (the whole work in multiply-adds or comparable steps) pays for the
    hand-off; otherwise ``fn(0, total)``. Pieces hold at least ``min_piece`` items (a multiple
    of it, except the last), so vector kernels keep whole blocks."""
    size = threads()
    if size <= 1 or total < 2 * min_piece or cost < MIN_PARALLEL_WORK:
        fn(0, total)
        return
    # one piece per thread (a thread that starts late leaves its piece to the others)
    pieces = bounds(total, min(size, total // min_piece), min_piece)
    if len(pieces) == 1:
        fn(0, total)
        return
    _local.state[0].map(fn, pieces)


def split_compiled(
    total: int, address: int, argument: int, min_piece: int = 1, per_thread: int = 1
) -> bool:
    """The compiled piece at ``address`` (a numba ``cfunc`` of signature ``void(int64 argument,
    int64 lo, int64 hi)``) over ``range(total)``, cut as :func:`split` cuts it, on the run's
    spinning pool: the workers call it without the GIL (a Python piece makes a worker wait
    for the GIL, 30-60 us here). False, with nothing run, where the run has no spinning pool
    free (one thread, a nested piece, another caller's job in flight) or ``total`` is one
    piece: the caller then runs the work itself. The caller judges whether the work pays.
    ``per_thread`` pieces for each thread (claimed one at a time, so that a core that is slow
    to start or slower leaves more of them to the others), where a piece costs little beyond
    its items."""
    p = gemm_pool()
    if p is None or total < 2 * min_piece:
        return False
    parts = min(p.size * per_thread, total // min_piece, SPIN_PIECES)
    return parts > 1 and p.run_native(address, argument, total, parts, min_piece)


def bounds(total: int, parts: int, multiple: int = 1) -> list[tuple[int, int]]:
    """``range(total)`` in at most ``parts`` contiguous pieces, each a multiple of ``multiple``
    long but the last."""
    step = -(-total // parts)
    step = -(-step // multiple) * multiple
    return [(lo, min(lo + step, total)) for lo in range(0, total, step)]


# -- numpy's OpenBLAS: where it is, and its thread count -----------------------------------------
def blas_paths() -> list[str]:
    """The OpenBLAS libraries threadpoolctl finds loaded in this process."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [i["filepath"] for i in threadpool_info() if i.get("internal_api") == "openblas"]


def _numpy_core():
    """A ctypes handle on numpy's compiled core module. Symbols looked up through it resolve as
    they do for numpy (the dynamic linker searches the module, then the libraries it was
    linked with), so its BLAS symbols are numpy's own BLAS's, whatever else is loaded."""
    try:
        from numpy._core import _multiarray_umath as core
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as core
    try:
        return ctypes.CDLL(core.__file__)
    except OSError:
        return None


def blas_libraries() -> list:
    """ctypes handles to look BLAS symbols up in, numpy's own BLAS first (through
    :func:`_numpy_core`), then each OpenBLAS threadpoolctl lists.

    The order matters: a process may hold two OpenBLAS builds (numba imports scipy, whose wheels
    bundle their own), and the direct GEMM (:mod:`.kernels._blas`) and the thread count
    (:func:`blas_threads`) must be the same library's. With the GEMM taken from scipy's and
    numpy's pinned to one thread, the "one-thread" runs of the convolutions used both cores
    and two-thread runs three threads, one of them OpenBLAS's worker spinning on the core the
    pool's second thread needed."""
    libs = []
    core = _numpy_core()
    if core is not None:
        libs.append(core)
    for path in blas_paths():
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


_THREAD_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)
_thread_fns: list = []


def _thread_setter():
    """(set, get) of the thread count of numpy's OpenBLAS, or None where they cannot be found."""
    if not _thread_fns:
        with _pools_lock:
            if not _thread_fns:
                found = None
                for lib in blas_libraries():
                    for set_name, get_name in _THREAD_SYMBOLS:
                        set_fn, get_fn = getattr(lib, set_name, None), getattr(lib, get_name, None)
                        if set_fn is not None and get_fn is not None:
                            # no argtypes: a Python int goes as a C int anyway, and converting
                            # through them doubled the call (0.25 against 0.13 us; runs that
                            # multiply matrices make three calls)
                            set_fn.restype, get_fn.restype = None, ctypes.c_int
                            found = (set_fn, get_fn)
                            break
                    if found:
                        break
                _thread_fns.append(found)
    return _thread_fns[0]


def can_set_threads() -> bool:
    """Whether :func:`blas_threads` can change numpy's BLAS thread count directly."""
    return _thread_setter() is not None


def blas_threads(n: int) -> int:
    """Set numpy's OpenBLAS to ``n`` threads; return the count it had (0 when it cannot be
    set). A call costs well under a microsecond: no thread is started or stopped."""
    fns = _thread_setter()
    if fns is None:
        return 0
    set_fn, get_fn = fns
    before = get_fn()
    if before != n:
        set_fn(n)
    return before
