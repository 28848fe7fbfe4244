"""The intra-op pool's spinning hand-off (ort_cpu._threads with ort_cpu._spin_jit).

Host logic, on the machine's own CPU: the compiled poll's protocol driven by hand (a posted GEMM
job run through the BLAS routine's address, a Python job handed back, a claim of another job's
number refused), and a spinning pool's GEMM and Python jobs against numpy, with spinning turned
on and off by runs and by onnxruntime's ``session.intra_op.allow_spinning``. Skipped where
numba cannot be imported or the CPU is not x86-64 (the pool then keeps its queue hand-off, which
test_intra_op_threads covers)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort_cpu import _threads
from ort_cpu.kernels import _blas

import ort_core as ort

pytestmark = pytest.mark.skipif(
    not _threads.spin_supported(), reason="no spinning hand-off here (needs numba on x86-64)"
)
needs_gemm = pytest.mark.skipif(_blas.find_gemm(np.float32) is None, reason="no direct BLAS GEMM")


@pytest.fixture
def spinning():
    """A pool of its own (not the process's shared one), spinning, inside a run."""
    pool = _threads.Pool(2)
    assert pool.start_spinning()
    _threads.enter(pool, pin_blas=_threads.can_set_threads())
    try:
        yield pool
    finally:
        _threads.leave()


def _spin():
    from ort_cpu import _spin_jit

    return _spin_jit


def _post(ctrl, spin, job, kind, pieces):
    ctrl[spin.KIND], ctrl[spin.PIECES], ctrl[spin.DONE] = kind, pieces, 0
    ctrl[spin.CLAIMED] = job << spin.INDEX_BITS
    ctrl[spin.POSTED] = job


@needs_gemm
def test_the_compiled_poll_runs_a_posted_gemm_job_through_the_routines_address():
    spin = _spin()
    gemm = _blas.find_gemm(np.float32)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 30)).astype(np.float32)
    b = rng.standard_normal((30, 50)).astype(np.float32)
    c = np.full((40, 50), 2.0, np.float32)
    ctrl, ints, floats = spin.tables(4)
    # two pieces: the column halves, the second accumulating (beta 1) into what c holds
    rows = gemm.pieces(a[None], b[None], c[None], False, False, 2)
    assert [r[4] for r in rows] == [32, 18]  # column blocks, a multiple of 16 wide but the last
    ints[:2] = rows
    floats[0], floats[1] = (1.0, 0.0), (1.0, 1.0)
    _post(ctrl, spin, 1, spin.GEMM, 2)
    # ran job 1, then stopped (SPIN 0), saying which job it saw last
    assert spin.serve(ctrl, ints, floats, 0, 0, 0, 0) == -1 - 1
    assert ctrl[spin.DONE] == 2
    np.testing.assert_allclose(c[:, :32], a @ b[:, :32], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c[:, 32:], a @ b[:, 32:] + 2.0, rtol=1e-5, atol=1e-5)


@needs_gemm
def test_the_compiled_poll_takes_transposed_operands_and_float64():
    spin = _spin()
    rng = np.random.default_rng(1)
    ctrl, ints, floats = spin.tables(2)
    at = rng.standard_normal((30, 20))  # (K, M), used transposed
    bt = rng.standard_normal((40, 30))  # (N, K), used transposed
    c = np.zeros((20, 40))
    rows = _blas.find_gemm(np.float64).pieces(at[None], bt[None], c[None], True, True, 2)
    ints[:2] = rows
    floats[:2] = (1.0, 0.0)
    _post(ctrl, spin, 7, spin.GEMM, 2)
    assert spin.serve(ctrl, ints, floats, 6, 0, 0, 0) == -1 - 7
    np.testing.assert_allclose(c, at.T @ bt.T, rtol=1e-12, atol=1e-12)


@needs_gemm
def test_a_claim_for_another_job_runs_nothing():
    """A worker still in a finished job's loop cannot claim a piece of the next job: the
    claim carries the job's number."""
    spin = _spin()
    a = np.ones((8, 8), np.float32)
    c = np.zeros((8, 8), np.float32)
    ctrl, ints, floats = spin.tables(1)
    ints[:1] = _blas.find_gemm(np.float32).pieces(a[None], a[None], c[None], False, False, 1)
    floats[0] = (1.0, 0.0)
    _post(ctrl, spin, 3, spin.GEMM, 1)
    ctrl[spin.CLAIMED] = 2 << spin.INDEX_BITS  # the claim word of job 2
    assert spin.serve(ctrl, ints, floats, 2, 0, 0, 0) == -1 - 3
    assert ctrl[spin.DONE] == 0 and not c.any()


def test_the_compiled_poll_hands_a_python_job_back():
    spin = _spin()
    ctrl, ints, floats = spin.tables(1)
    _post(ctrl, spin, 5, spin.PYTHON, 3)
    assert spin.serve(ctrl, ints, floats, 4, 0, 0, 0) == 5
    # nothing new posted and no run in progress: stops at once
    assert spin.serve(ctrl, ints, floats, 5, 10**9, 0, 0) == -1 - 5


@needs_gemm
@pytest.mark.parametrize("shape", [(64, 300, 900), (900, 300, 64)])  # split by columns / rows
def test_a_spinning_pool_splits_a_gemm_and_gets_numpys_result(spinning, shape, monkeypatch):
    """A product's blocks of columns (or rows) are cut, posted and run in one compiled call
    (_spin_jit.run_gemm2d), one per thread; read-only factors and a strided output too."""
    m, k, n = shape
    rng = np.random.default_rng(2)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = rng.standard_normal((m, n + 3)).astype(np.float32)[:, :n]
    a.flags.writeable = b.flags.writeable = False  # a model's weights arrive read-only
    want = c + a @ b
    gemm = _blas.find_gemm(np.float32)  # found (and checked, the first time) before the spy
    jobs = []
    run_gemm2d = spinning._spin.run_gemm2d
    monkeypatch.setattr(
        spinning._spin, "run_gemm2d", lambda *args: jobs.append(run_gemm2d(*args)) or jobs[-1]
    )
    gemm(a, b, c, 1.0)
    assert jobs == [2]  # one piece per thread, through the compiled hand-off
    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-3)


@needs_gemm
@pytest.mark.parametrize("count", [1, 5])  # fewer products than threads: blocks of columns
def test_a_spinning_pool_runs_a_stack_of_products(spinning, count):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((count, 100, 200)).astype(np.float32)
    bt = rng.standard_normal((count, 300, 200)).astype(np.float32)  # used transposed
    c = np.empty((count, 100, 300), np.float32)
    _blas.find_gemm_batch(np.float32)(a, bt, c, trans_b=True)
    np.testing.assert_allclose(c, a @ np.swapaxes(bt, 1, 2), rtol=1e-4, atol=1e-3)


@needs_gemm
@pytest.mark.parametrize("count, pooled", [(4, True), (1, False), (2, False)])
def test_a_stack_of_small_products_is_shared_when_there_is_work_enough(spinning, count, pooled):
    """Products below BATCH_MIN_MNK each (ShuffleNet's grouped 1x1s, attention's heads) are
    pieces on the pool when there are several and the stack reaches MIN_SPIN_WORK; one alone,
    or too little work, stays numpy's loop. numpy's result either way."""
    rng = np.random.default_rng(4)
    m, k, n = 40, 40, 196  # 0.3M multiply-adds each
    assert m * k * n <= _blas.BATCH_MIN_MNK
    assert 4 * m * k * n >= _threads.MIN_SPIN_WORK > 2 * m * k * n
    a = rng.standard_normal((count, m, k)).astype(np.float32)
    b = rng.standard_normal((count, k, n)).astype(np.float32)
    c = np.empty((count, m, n), np.float32)
    # found (and, the first time in a process, checked on a few products of its own) before
    # the spy counts this product's jobs
    gemm_batch = _blas.find_gemm_batch(np.float32)
    jobs = []
    run_gemm = spinning.run_gemm
    spinning.run_gemm = lambda ints, floats: jobs.append(len(ints)) or run_gemm(ints, floats)
    gemm_batch(a, b, c)
    assert jobs == ([count] if pooled else [])
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-3)


def test_a_spinning_pool_runs_python_pieces_and_raises_their_errors(spinning):
    seen, lock = [], threading.Lock()

    def piece(lo, hi):
        with lock:
            seen.append((lo, hi))

    _threads.split(1000, piece, cost=1e12, min_piece=8)
    assert sorted(seen) == [(0, 504), (504, 1000)]

    def bad(lo, hi):
        if lo:
            raise ValueError("piece failed")

    with pytest.raises(ValueError, match="piece failed"):
        _threads.split(10, bad, cost=1e12)
    # the pool still works after a failed job
    seen.clear()
    _threads.split(10, piece, cost=1e12)
    assert sorted(seen) == [(0, 5), (5, 10)]


def _cpu_ticks(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_workers_spin_after_work_only_while_runs_allow_it(monkeypatch):
    """Workers poll for a while after their last piece, across a run's end (as onnxruntime's
    do), then sleep; a sleep's time limit does not make them poll again; a run that does not
    allow spinning stops it."""
    spin = _spin()
    monkeypatch.setattr(_threads, "SLEEP_SECONDS", 0.002)  # a sleeping worker wakes often
    pool = _threads.Pool(2)
    assert pool.start_spinning()
    assert pool._ctrl[spin.SPIN] == 0
    _threads.enter(pool, pin_blas=False, spin=False)  # allow_spinning "0"
    assert pool._ctrl[spin.SPIN] == 0
    _threads.enter(pool, pin_blas=False)
    assert pool._ctrl[spin.SPIN] == 1
    gemm = _blas.find_gemm(np.float32)
    if gemm is not None and gemm.pieces is not None:  # a GEMM job the worker may run itself
        a = np.ones((64, 512), np.float32)
        gemm(a, a.T.copy(), np.empty((64, 64), np.float32), 0.0)
        gemm(a.T.copy(), a, np.empty((512, 512), np.float32), 0.0)
    _threads.leave()
    assert pool._ctrl[spin.SPIN] == 1  # still allowed after the run: workers linger
    _threads.leave()
    # after its polls the worker goes to sleep in the kernel and stops using its core, though
    # its sleep's time limit (2 ms here) wakes it 150 times in 0.3 s
    deadline = time.monotonic() + 10
    while pool._ctrl[spin.SLEEPERS] != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert pool._ctrl[spin.SLEEPERS] == 1
    worker = pool._workers[0].native_id
    if os.path.exists(f"/proc/self/task/{worker}/stat"):
        before = _cpu_ticks(worker)
        time.sleep(0.3)
        assert _cpu_ticks(worker) - before <= 3  # clock ticks (10 ms each)
    ran = []
    _threads.enter(pool, pin_blas=False, spin=False)
    assert pool._ctrl[spin.SPIN] == 0  # a run that does not allow spinning stops it
    try:
        _threads.split(2, lambda lo, hi: ran.append(threading.get_ident()), cost=1e12)
    finally:
        _threads.leave()
    assert len(ran) == 2


def test_a_sessions_quick_run_hooks_enter_its_pool_for_the_run_only():
    """:func:`_threads.run_hooks`' pair for the usual session (a spinning pool, BLAS left
    alone): the run's kernels see the pool, a run entered inside sees its own, and the end
    restores the previous pool and leaves the spin flag set; a session that pins BLAS or stops
    spinning gets the general pair."""
    spin = _spin()
    pool = _threads.Pool(2)
    assert pool.start_spinning()
    start, end = _threads.run_hooks(pool, False, True, False)
    assert start.__name__ == "quick_start"
    assert _threads.threads() == 1
    start(None)
    try:
        assert _threads.gemm_pool() is pool and _threads.threads() == 2
        assert pool._ctrl[spin.SPIN] == 1 and len(pool._spinning_runs) == 1
        _threads.enter(None, pin_blas=False)  # a one-thread session's run inside this one
        assert _threads.threads() == 1
        _threads.leave()
        assert _threads.gemm_pool() is pool
    finally:
        end(None)
    assert _threads.threads() == 1 and pool._spinning_runs == [] and pool._ctrl[spin.SPIN] == 1
    for flags in [(True, True, False), (False, True, True), (False, False, False)]:
        start, end = _threads.run_hooks(pool, *flags)
        assert start.__name__ == "start"
        start(None)
        assert _threads.gemm_pool() is pool
        end(None)
        assert _threads.threads() == 1 and pool._spinning_runs == []
    assert pool._ctrl[spin.SPIN] == 0  # the last run did not allow spinning


@needs_gemm
def test_concurrent_callers_share_a_spinning_pool():
    """One job at a time is posted; a caller that finds the pool busy runs its pieces itself."""
    pool = _threads.Pool(2)
    assert pool.start_spinning()
    gemm = _blas.find_gemm(np.float32)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((64, 256)).astype(np.float32)
    b = rng.standard_normal((256, 512)).astype(np.float32)
    want = a @ b
    errors = []

    def caller():
        _threads.enter(pool, pin_blas=False)
        try:
            for _ in range(200):
                c = np.empty((64, 512), np.float32)
                gemm(a, b, c, 0.0)
                if not np.allclose(c, want, rtol=1e-4, atol=1e-3):
                    errors.append("wrong product")
        finally:
            _threads.leave()

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)


def _matmul_model():
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((256, 512)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), rng.standard_normal((64, 256)).astype(np.float32)


@pytest.mark.parametrize("stop", [None, "0", "1"])
def test_force_spinning_stop_is_acted_on(stop):
    """onnxruntime's ``session.force_spinning_stop``: "1" stops the workers' polling when a run
    ends; by default they keep polling for the next run's first piece."""
    spin = _spin()
    model, x = _matmul_model()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    if stop is not None:
        so.add_session_config_entry("session.force_spinning_stop", stop)
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    (cpu,) = [ep for ep in sess._providers if ep.name == "CPUExecutionProvider"]
    assert cpu._pool.start_spinning()
    sess.run(None, {"x": x})
    assert cpu._pool._ctrl[spin.SPIN] == (0 if stop == "1" else 1)


@pytest.mark.parametrize("allow", ["0", "1"])
def test_allow_spinning_is_acted_on(allow):
    """onnxruntime's ``session.intra_op.allow_spinning``: "0" keeps the workers asleep between
    pieces; both give the same result."""
    model, x = _matmul_model()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.add_session_config_entry("session.intra_op.allow_spinning", allow)
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    (cpu,) = [ep for ep in sess._providers if ep.name == "CPUExecutionProvider"]
    assert cpu._spin is (allow == "1")
    got = sess.run(None, {"x": x})[0]
    onnxruntime = pytest.importorskip("onnxruntime")
    ref = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(got, ref.run(None, {"x": x})[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "c, m, group, hw, stride",
    [
        (64, 64, 64, 64, 1),  # depthwise, planar, stride 1
        (48, 48, 48, 95, 2),  # depthwise, planar, stride 2
        (384, 384, 384, 14, 1),  # depthwise, channels last
        (3, 24, 1, 112, 2),  # a dense stem: its output channels are shared
    ],
)
def test_direct_convolutions_split_on_a_spinning_pool_equal_one_thread(
    monkeypatch, c, m, group, hw, stride, dtype
):
    """The direct convolutions' groups (planar), channels (channels last) or a stem's output
    channels (or rows) are shared among the run's threads as compiled pieces on a spinning pool (only
    there: see ort_cpu._threads), with the bias and a fused Clip's bounds passed on; the result
    is the one-thread result bit for bit where both run the direct kernel (each output channel
    is computed whole by one thread), and the float64 reference's."""
    from ort_cpu.kernels import _conv_jit, conv

    rng = np.random.default_rng(6)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    cg = c // group
    w = numpy_helper.from_array(rng.standard_normal((m, cg, 3, 3)).astype(dtype), "w")
    b = numpy_helper.from_array(rng.standard_normal(m).astype(dtype), "b")
    lo, hi = (
        numpy_helper.from_array(np.array(-0.5, dtype), "lo"),
        numpy_helper.from_array(np.array(1.5, dtype), "hi"),
    )
    nodes = [
        helper.make_node(
            "Conv", ["x", "w", "b"], ["t"], group=group, pads=[1, 1, 1, 1], strides=[stride] * 2
        ),
        helper.make_node("Clip", ["t", "lo", "hi"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "dw", [helper.make_tensor_value_info("x", elem, [1, c, hw, hw])],
        [helper.make_tensor_value_info("y", elem, None)], [w, b, lo, hi],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((1, c, hw, hw)).astype(dtype)
    size = (hw - 1) // stride + 1
    assert size**2 * m * 9 * cg >= conv.DIRECT_SPLIT_WORK  # shared at two threads
    outs = []
    for threads in (1, 2):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        handed = []
        real = _threads.split_compiled

        def counting(total, address, argument, min_piece=1, real=real, handed=handed):
            done = real(total, address, argument, min_piece)
            handed.append((total, done))
            return done

        monkeypatch.setattr(_threads, "split_compiled", counting)
        outs.append(sess.run(None, {"x": x})[0])
        monkeypatch.setattr(_threads, "split_compiled", real)
        # a dense layer's output channels, OUTS at a time, or its output rows where the
        # blocks do not share out evenly (24 channels: 3 blocks of 8 for 2 threads; 4 of 6 share)
        dense = m if -(-m // _conv_jit.OUTS) % 2 == 0 else size
        assert handed == ([] if threads == 1 else [(group if group > 1 else dense, True)])
    if group > 1:
        np.testing.assert_array_equal(outs[1], outs[0])
    else:  # one thread runs a small stem as a GEMM (another order of the same sums)
        np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    # the layer in float64 numpy: nine shifted products per input channel of each group
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    wf = numpy_helper.to_array(w).astype(np.float64)
    want = np.broadcast_to(numpy_helper.to_array(b).reshape(1, m, 1, 1), (1, m, size, size))
    per = m // group  # outputs per group
    for i in range(3):
        for j in range(3):
            cells = xp[:, :, i : i + stride * size : stride, j : j + stride * size : stride]
            for k in range(cg):  # input channel k of each output's group
                src = cells[:, np.arange(m) // per * cg + k]
                want = want + wf[:, k, i, j].reshape(1, m, 1, 1) * src
    np.testing.assert_allclose(outs[1], np.clip(want, -0.5, 1.5), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_pieces_are_loaded_at_session_creation(monkeypatch, threads):
    """A session that will share its tree walks or depthwise convolutions among threads loads
    their compiled pieces when it is created, not in its first run; a one-thread session does
    not load them."""
    from ort_cpu.kernels import _conv_pieces, _ml_pieces

    asked = []
    for module in (_ml_pieces, _conv_pieces):
        real = module.address
        monkeypatch.setattr(
            module,
            "address",
            lambda kind, dtype, real=real: asked.append(dtype) or real(kind, dtype),
        )
    # a depthwise layer, and a tree ensemble
    c = 32
    w = numpy_helper.from_array(np.ones((c, 1, 3, 3), np.float32), "w")
    dw = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], group=c, pads=[1, 1, 1, 1])], "dw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w],
    )  # fmt: skip
    tree = helper.make_node(
        "TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", n_targets=1,
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
        nodes_values=[0.5, 0.0, 0.0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
        target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[1.0, 2.0],
    )  # fmt: skip
    forest = helper.make_graph(
        [tree], "trees", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    models = [
        helper.make_model(dw, opset_imports=[helper.make_opsetid("", 17)]),
        helper.make_model(
            forest,
            opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        ),
    ]
    for model in models:
        asked.clear()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        assert bool(asked) == (threads == 2), (model.graph.name, asked)
        assert set(asked) <= {np.float32}


def test_many_small_python_jobs_in_a_row_all_complete():
    """Thousands of two-piece Python jobs back to back, as a tree ensemble's run makes them: a
    worker late from one job must not run pieces of the next before it is posted (posting
    resets the count of finished pieces: the caller then waited forever)."""
    pool = _threads.Pool(2)
    assert pool.start_spinning()
    done = threading.Event()
    pieces = []

    def hammer():
        _threads.enter(pool, pin_blas=False)
        try:
            for _ in range(20000):
                _threads.split(2, lambda lo, hi: pieces.append(hi - lo), 1e12)
        finally:
            _threads.leave()
        done.set()

    threading.Thread(target=hammer, daemon=True).start()
    assert done.wait(60), "a job never completed"
    assert len(pieces) == 40000 and sum(pieces) == 40000


@needs_gemm
@pytest.mark.parametrize("layout", ["plain", "b transposed", "a transposed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_row_products_split_as_gemv_pieces(spinning, layout, dtype):
    """A product of one row (a decoder step's, a classifier's) goes to the workers as GEMV
    pieces: a one-row GEMM packs all of the matrix first."""
    gemm = _blas.find_gemm(dtype)
    if not gemm.gemv or _blas.find_gemm_batch(dtype) is None:  # resolved (and checked) now
        pytest.skip("the BLAS library's GEMV was not found or failed its check")
    rng = np.random.default_rng(9)
    k, n = 700, 1500
    a = rng.standard_normal((1, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    av = np.ascontiguousarray(a.T).T if layout == "a transposed" else a
    bv = np.ascontiguousarray(b.T).T if layout == "b transposed" else b
    jobs = []
    run_gemm = spinning.run_gemm
    spinning.run_gemm = lambda ints, floats: (
        jobs.append([r[0] for r in ints]) or run_gemm(ints, floats)
    )
    got = _blas.matmul(av, bv)
    assert len(jobs) == 1 and len(jobs[0]) == 2 and min(jobs[0]) >= 4  # two GEMV rows
    np.testing.assert_allclose(got, a @ b, rtol=1e-4, atol=1e-3)


@needs_gemm
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_long_one_row_products_split_by_blocks_of_rows(spinning, dtype, beta):
    """A one-row product over a long, row-major matrix (a decoder step's 3072 x 768 projection)
    gives each thread a contiguous block of the matrix's rows and its own partial row, summed
    at the end: a split by columns had every thread read part of every row and scaled 1.17x on
    two threads (the product is memory-bound)."""
    gemm = _blas.find_gemm(dtype)
    if not gemm.gemv or _blas.find_gemm_batch(dtype) is None:
        pytest.skip("the BLAS library's GEMV was not found or failed its check")
    rng = np.random.default_rng(10)
    k, n = 3000, 512  # at least MIN_SPIN_WORK multiply-adds
    a = rng.standard_normal((1, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((1, n)).astype(dtype)
    c = c0.copy()
    jobs = []
    run_gemm = spinning.run_gemm
    spinning.run_gemm = lambda ints, floats: (
        jobs.append((list(ints), list(floats))) or run_gemm(ints, floats)
    )
    gemm(a, b, c, beta)
    assert len(jobs) == 1
    rows, floats = jobs[0]
    assert [r[3] for r in rows] == [1500, 1500] and {r[4] for r in rows} == {n}
    assert rows[1][6] - rows[0][6] == 1500 * n * b.itemsize  # contiguous blocks of b's rows
    assert [f[1] for f in floats] == [beta, 0.0]  # beta once, on the first partial row
    np.testing.assert_allclose(c, a @ b + beta * c0, rtol=1e-4, atol=1e-3)


@needs_gemm
def test_winograd_products_are_gemm_pieces_of_a_spinning_pool(spinning, monkeypatch):
    """On a spinning pool a Winograd layer's 16 products go to the workers as GEMM pieces (no
    GIL; Python pieces calling the GEMM scaled 1.2x on two threads) and its transforms stay
    on the calling thread (compiled, below conv.WINOGRAD_SPLIT_CELLS; numpy's output transform
    offered to the pool as "channels", which its work does not pay for): the same bits as on
    one thread."""
    from ort_cpu.kernels import _conv_jit, conv

    rng = np.random.default_rng(12)
    c, m, hw = 128, 128, 15  # odd output sides: the last tiles are cropped
    x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((m, c, 3, 3)) * 0.05).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    wmat = conv.pack_weights(w, 1, np.dtype(np.float32))
    gemm = _blas.find_gemm(np.float32)
    assert _blas.find_gemm_batch(np.float32) is not None  # resolved (and self-checked) first
    jobs, splits = [], []
    real_run, real_split = spinning.run_gemm, _threads.split
    monkeypatch.setattr(spinning, "run_gemm", lambda *a: jobs.append(len(a[0])) or real_run(*a))
    monkeypatch.setattr(
        _threads, "split", lambda n, fn, *a: splits.append(fn.__name__) or real_split(n, fn, *a)
    )
    two = conv._conv_winograd(x, wmat, m, (hw, hw), (1, 1), b, gemm)
    compiled = _conv_jit.warm_winograd() is not None
    assert jobs == [16] and splits == ([] if compiled else ["channels"])
    _threads.enter(None, pin_blas=False)  # one thread
    try:
        one = conv._conv_winograd(x, wmat, m, (hw, hw), (1, 1), b, gemm)
    finally:
        _threads.leave()
    np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize(
    "a_shape, n",
    [((128, 768), 768), ((2, 64, 300), 200), ((200, 96), 64), ((16, 1024), 130), ((30, 50), 700)],
)
@pytest.mark.parametrize("pooled", [True, False])
def test_float32_products_run_on_the_register_tiles(a_shape, n, pooled, monkeypatch):
    """Host logic on the compiled kernels: a float32 product with K up to TILED_MAX_K, 64
    columns or more and MIN_SPIN_WORK multiply-adds (smaller ones are one np.dot) runs on the
    1x1 convolutions' register tiles (_blas._tiled), on one thread, or from MIN_SPIN_GEMM
    shared on a spinning pool (by blocks of 64 columns, or by tiles of rows where the blocks
    are few), read-only operands too, against numpy in float64; K past TILED_MAX_K, a
    transposed operand and float64 keep OpenBLAS, and so does every product where the tiles
    are AVX2's (they run here as the 1x1 convolutions' tiles do, whatever the CPU)."""
    from ort_cpu.kernels import _conv_jit

    if _conv_jit.warm_pointwise() is None:
        pytest.skip("compiled kernels are off")
    monkeypatch.setattr(_blas, "_WIDE", True)
    rng = np.random.default_rng(sum(a_shape) + n)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal((a_shape[-1], n)).astype(np.float32)
    a.flags.writeable = b.flags.writeable = False  # a model's weights arrive read-only
    assert _blas._tiles_take(a, b)
    handed = []
    original = _threads.split_compiled

    def split_compiled(total, address, argument, min_piece=1):
        handed.append(original(total, address, argument, min_piece))
        return handed[-1]

    monkeypatch.setattr(_threads, "split_compiled", split_compiled)
    pool = _threads.Pool(2) if pooled else None
    if pool is not None:
        assert pool.start_spinning()
    _threads.enter(pool, pin_blas=_threads.can_set_threads())
    try:
        got = _blas.matmul(a, b)
    finally:
        _threads.leave()
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    shared = pooled and a.size // a_shape[-1] * a_shape[-1] * n >= _threads.MIN_SPIN_GEMM
    assert handed == ([True] if shared else [])
    long_k = rng.standard_normal((a_shape[-1], _blas.TILED_MAX_K + 1)).astype(np.float32)
    assert not _blas._tiles_take(long_k, rng.standard_normal((_blas.TILED_MAX_K + 1, n)))
    assert not _blas._tiles_take(a, np.ascontiguousarray(b.T).T)
    monkeypatch.setattr(_blas, "_WIDE", False)
    assert not _blas._tiles_take(a, b)
    assert not _blas._tiles_take(a.astype(np.float64), b.astype(np.float64))
