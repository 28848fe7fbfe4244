"""The queue in front of one model version: bounded, served by worker threads, with dynamic
batching for models that have a batch axis.

Each worker thread is one "instance" of the model (Triton's instance_group count): it takes the
next request (or, with dynamic batching, a batch of compatible requests) and runs the model's one
shared session; ``InferenceSession.run`` is thread-safe, so instances need no session of their own.
Requests arrive as :class:`concurrent.futures.Future` objects, which asyncio code awaits with
``asyncio.wrap_future`` without blocking its event loop.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import BatchingOptions
from .errors import InvalidRequest, ServingError, Unavailable

__all__ = ["Scheduler", "Job"]

log = logging.getLogger("ort_core.serve")

RunFn = Callable[[Sequence[str] | None, dict[str, np.ndarray]], list[Any]]


@dataclass(eq=False)
class Job:
    """One request in the queue: its feeds, the outputs it wants, and the future it waits on."""

    feeds: dict[str, np.ndarray]
    outputs: tuple[str, ...]
    rows: int
    key: tuple
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


class Scheduler:
    """Queue and workers of one model version.

    Args:
        label: ``"model:version"`` for messages and thread names.
        run: the session's ``run(output_names, feeds) -> list`` (thread-safe).
        output_names: all outputs of the model, in order.
        batching: the model's batching options.
        instances: worker threads (concurrent runs).
        max_queue_size: requests allowed to wait; one more is refused with :class:`Unavailable`.
        metrics: per-model instruments (``Metrics.model(...)``) or None.
    """

    def __init__(
        self,
        label: str,
        run: RunFn,
        output_names: Sequence[str],
        batching: BatchingOptions,
        instances: int,
        max_queue_size: int,
        metrics: Any = None,
    ) -> None:
        if instances < 1:
            raise ValueError(f"instances must be >= 1, got {instances}")
        if max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, got {max_queue_size}")
        self.label = label
        self._run = run
        self._output_names = tuple(output_names)
        self.batching = batching
        self.max_queue_size = max_queue_size
        self._metrics = metrics
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._gather_lock = threading.Lock()
        self._closing = False
        self._busy = 0
        self._workers = [
            threading.Thread(target=self._work, name=f"ort-core-serve {label} #{i}", daemon=True)
            for i in range(instances)
        ]
        for t in self._workers:
            t.start()

    # -- producers --------------------------------------------------------------------------
    def submit(self, feeds: dict[str, np.ndarray], outputs: Sequence[str] | None = None) -> Future:
        """Queue one request; the future resolves to ``{output name: array}``.

        Raises:
            Unavailable: the queue is full or the model is being unloaded.
        """
        wanted = tuple(outputs) if outputs else self._output_names
        rows = 1
        if self.batching.max_batch_size:
            rows = int(next(iter(feeds.values())).shape[0]) if feeds else 1
        key = (
            tuple(sorted((n, a.dtype.str, a.shape[1:]) for n, a in feeds.items())),
            wanted,
        )
        job = Job(feeds, wanted, rows, key)
        with self._cond:
            if self._closing:
                raise Unavailable(f"model {self.label} is being unloaded; retry on a ready model")
            if len(self._queue) >= self.max_queue_size:
                if self._metrics is not None:
                    self._metrics.rejected.inc()
                raise Unavailable(
                    f"model {self.label}: the queue is full ({self.max_queue_size} requests "
                    "waiting); retry later, or raise max_queue_size / add instances"
                )
            self._queue.append(job)
            if self._metrics is not None:
                self._metrics.queue_depth.set(len(self._queue))
            self._cond.notify()
        return job.future

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- lifecycle --------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> bool:
        """Refuse new requests, finish the queued and running ones, stop the workers.
        Returns False when ``timeout`` ran out first (the rest fail with Unavailable)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._workers:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        alive = any(t.is_alive() for t in self._workers)
        if alive:
            with self._cond:
                left = list(self._queue)
                self._queue.clear()
            for job in left:
                self._fail(job, Unavailable(f"model {self.label} was unloaded before this ran"))
        return not alive

    # -- workers ----------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._gather_lock:  # one worker gathers at a time, so batches are not split
                batch = self._gather()
            if batch is None:
                return
            self._execute(batch)

    def _gather(self) -> list[Job] | None:
        b = self.batching
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            if not b.dynamic:
                batch = [self._queue.popleft()]
            else:
                first = self._queue[0]
                target = max(b.preferred_batch_sizes) if b.preferred_batch_sizes else None
                target = min(target or b.max_batch_size, b.max_batch_size)
                deadline = first.enqueued + b.max_queue_delay_us / 1e6
                while not self._closing:
                    if self._compatible_rows(first) >= target:
                        break
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = self._take(first)
            if self._metrics is not None:
                self._metrics.queue_depth.set(len(self._queue))
            return batch

    def _compatible_rows(self, first: Job) -> int:
        limit = self.batching.max_batch_size
        rows = 0
        for job in self._queue:
            if job.key == first.key and rows + job.rows <= limit:
                rows += job.rows
        return rows

    def _take(self, first: Job) -> list[Job]:
        limit = self.batching.max_batch_size
        batch, rest, rows = [], collections.deque(), 0
        for job in self._queue:
            if job is first or (job.key == first.key and rows + job.rows <= limit):
                batch.append(job)
                rows += job.rows
            else:
                rest.append(job)
        self._queue = rest
        return batch

    def _execute(self, batch: list[Job]) -> None:
        live = [j for j in batch if j.future.set_running_or_notify_cancel()]
        if not live:
            return
        start = time.perf_counter()
        m = self._metrics
        if m is not None:
            for j in live:
                m.queue_time.observe(start - j.enqueued)
            m.batch_size.observe(sum(j.rows for j in live))
        try:
            names = live[0].outputs
            if len(live) == 1:
                values = self._run(list(names), live[0].feeds)
                results = [dict(zip(names, values))]
            else:
                feeds = {
                    n: np.concatenate([j.feeds[n] for j in live], axis=0) for n in live[0].feeds
                }
                values = self._run(list(names), feeds)
                results = self._split(names, values, [j.rows for j in live])
        except Exception as exc:  # noqa: BLE001 - every failure goes to the waiting clients
            err = self._client_error(exc)
            for j in live:
                self._fail(j, err)
            return
        finally:
            if m is not None:
                m.compute_time.observe(time.perf_counter() - start)
        for j, r in zip(live, results):
            j.future.set_result(r)

    def _split(self, names: Sequence[str], values: list[Any], rows: list[int]) -> list[dict]:
        total = sum(rows)
        cuts = np.cumsum(rows)[:-1]
        per_job: list[dict] = [{} for _ in rows]
        for name, value in zip(names, values):
            arr = np.asarray(value)
            if arr.ndim == 0 or arr.shape[0] != total:
                raise ServingError(
                    f"model {self.label}: output {name!r} has shape {list(arr.shape)}, not a "
                    f"batch axis of {total} rows; set max_batch_size 0 (no dynamic batching) "
                    "for this model"
                )
            for d, part in zip(per_job, np.split(arr, cuts, axis=0)):
                d[name] = part
        return per_job

    def _client_error(self, exc: Exception) -> ServingError:
        if isinstance(exc, ServingError):
            return exc
        from ort_core import errors

        if isinstance(exc, errors.InvalidArgument):
            return InvalidRequest(f"model {self.label}: {exc.message}")
        log.error("model %s: run failed", self.label, exc_info=exc)
        return ServingError(
            f"model {self.label}: the run failed ({type(exc).__name__}); the server log has "
            "the details"
        )

    @staticmethod
    def _fail(job: Job, err: Exception) -> None:
        if not job.future.done():
            try:
                job.future.set_exception(err)
            except Exception:  # noqa: BLE001 - cancelled in between: nobody waits
                pass
