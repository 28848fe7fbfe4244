"""The scheduler on its own: dynamic batching merges and splits correctly, the queue is bounded,
closing drains queued requests."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ort_core import InferenceSession
from ort_core.serve.config import BatchingOptions
from ort_core.serve.errors import InvalidRequest, Unavailable
from ort_core.serve.scheduler import Scheduler

from .conftest import mlp_model


@pytest.fixture(scope="module")
def session():
    return InferenceSession(mlp_model().SerializeToString())


def recording(session, sizes):
    def run(names, feeds):
        sizes.append(feeds["x"].shape[0])
        return session.run(names, feeds)

    return run


def test_dynamic_batching_merges_and_splits(session):
    sizes: list[int] = []
    batching = BatchingOptions(8, True, (4, 8), max_queue_delay_us=500_000)
    sched = Scheduler("mlp:1", recording(session, sizes), ["y"], batching, 1, 64)
    try:
        rng = np.random.default_rng(2)
        xs = [rng.standard_normal((n, 4)).astype(np.float32) for n in (1, 2, 1, 3, 1)]
        futures = [sched.submit({"x": x}) for x in xs]
        results = [f.result(10)["y"] for f in futures]
    finally:
        sched.close(10)
    for x, y in zip(xs, results):
        # each request gets its own rows back; a row may round an ulp apart from its run alone
        # (numpy 2.4's OpenBLAS, 0.3.31, multiplies a lone row with other kernels than a batch: numpy
        # itself gives rows 0, 3 and 7 of this batch different last bits), as in onnxruntime
        np.testing.assert_allclose(y, session.run(None, {"x": x})[0], rtol=1e-6, atol=1e-7)
    assert sum(sizes) == 8 and max(sizes) > 3  # merged into a batch of the preferred size


def test_batch_never_exceeds_max_batch_size(session):
    sizes: list[int] = []
    batching = BatchingOptions(4, True, (), max_queue_delay_us=200_000)
    sched = Scheduler("mlp:1", recording(session, sizes), ["y"], batching, 1, 64)
    try:
        futures = [sched.submit({"x": np.ones((3, 4), np.float32)}) for _ in range(4)]
        for f in futures:
            assert f.result(10)["y"].shape == (3, 3)
    finally:
        sched.close(10)
    assert sizes == [3, 3, 3, 3]


def test_without_dynamic_batching_each_request_runs_alone(session):
    sizes: list[int] = []
    sched = Scheduler("mlp:1", recording(session, sizes), ["y"], BatchingOptions(8), 2, 64)
    try:
        for f in [sched.submit({"x": np.ones((2, 4), np.float32)}) for _ in range(5)]:
            f.result(10)
    finally:
        sched.close(10)
    assert sizes == [2] * 5


def test_full_queue_is_unavailable_and_close_drains():
    gate = threading.Event()
    ran = []

    def run(names, feeds):
        gate.wait(10)
        ran.append(1)
        return [feeds["x"]]

    sched = Scheduler("m:1", run, ["x"], BatchingOptions(), 1, 2)
    first = sched.submit({"x": np.zeros(1)})
    deadline = time.monotonic() + 5
    while sched.queued and time.monotonic() < deadline:  # the worker took the first one
        time.sleep(0.01)
    queued = [sched.submit({"x": np.zeros(1)}) for _ in range(2)]
    with pytest.raises(Unavailable, match="queue is full"):
        sched.submit({"x": np.zeros(1)})
    closer = threading.Thread(target=sched.close, args=(10,))
    closer.start()
    time.sleep(0.05)
    with pytest.raises(Unavailable, match="unloaded"):
        sched.submit({"x": np.zeros(1)})
    gate.set()
    closer.join(10)
    assert not closer.is_alive()
    for f in [first, *queued]:
        assert f.result(1)["x"].shape == (1,)
    assert len(ran) == 3


def test_run_errors_reach_every_waiting_request():
    def run(names, feeds):
        from ort_core.errors import InvalidArgument

        raise InvalidArgument("bad value in node n0 (Add)")

    sched = Scheduler("m:1", run, ["y"], BatchingOptions(), 1, 4)
    try:
        with pytest.raises(InvalidRequest, match="node n0"):
            sched.submit({"x": np.zeros(1)}).result(10)
    finally:
        sched.close(10)
