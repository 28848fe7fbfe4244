"""The context of one run: what providers and kernels may keep per run (a stream per provider),
which thread started it, and its RunOptions.

A session makes a :class:`RunContext` for every run, hands it to each provider's
``on_run_start(ctx)``/``on_run_end(ctx)`` and ``to_device``/``to_host`` copies, and makes it the
*current* run while the run's steps execute (kernels that launch work on a stream ask
:func:`current_run`; the steps of ``ExecutionMode.ORT_PARALLEL`` see their run's context on the
pool's threads too). Two runs on two threads have two contexts, so a provider that takes a stream
per run in ``on_run_start`` and releases it in ``on_run_end`` keeps ``run()`` thread-safe.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
from typing import Any

__all__ = ["RunContext", "current_run"]

_ids = itertools.count(1)
_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "ort_core_run", default=None
)


class RunContext:
    """One run of one session."""

    __slots__ = ("run_options", "thread", "id", "streams")

    def __init__(self, run_options: Any = None) -> None:
        #: the run's RunOptions (None when the caller gave none)
        self.run_options = run_options
        #: the thread that called run()
        self.thread = threading.get_ident()
        #: a number unique to this run in the process
        self.id = next(_ids)
        #: per provider name: the stream (queue, command list...) the provider chose for this run
        self.streams: dict[str, Any] = {}

    def stream(self, provider: Any) -> Any:
        """The stream ``provider`` (an instance or its name) set for this run, or None."""
        return self.streams.get(provider if isinstance(provider, str) else provider.name)

    def __repr__(self) -> str:
        return f"<RunContext {self.id} thread={self.thread} streams={sorted(self.streams)}>"


def current_run() -> RunContext | None:
    """The context of the run executing on this thread (None outside a run)."""
    return _current.get()


def enter(ctx: RunContext) -> contextvars.Token:
    """Make ``ctx`` the current run; give the token to :func:`leave` when the run ends (a pair
    of calls rather than a context manager: this is on every run's path)."""
    return _current.set(ctx)


def leave(token: contextvars.Token) -> None:
    _current.reset(token)
