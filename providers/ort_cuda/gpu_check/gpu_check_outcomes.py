"""A pytest plugin for ``check.py``: appends one JSON line per test report to the file named by
``ORT_GPU_CHECK_OUTCOMES`` as it arrives (in the controller only under pytest-xdist), so the
outcomes of a suite stopped by its time cap are kept."""

from __future__ import annotations

import json
import os
from typing import Any

_out: Any = None


def pytest_configure(config: Any) -> None:
    global _out
    path = os.environ.get("ORT_GPU_CHECK_OUTCOMES")
    if path and not hasattr(config, "workerinput"):
        _out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in pytest_unconfigure


def pytest_unconfigure(config: Any) -> None:
    global _out
    if _out is not None and not hasattr(config, "workerinput"):
        _out.close()
        _out = None


def _message(report: Any) -> str:
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return str(longrepr[2])[:400]
    crash = getattr(longrepr, "reprcrash", None)
    text = getattr(crash, "message", None)
    if not text:
        lines = [ln for ln in str(getattr(report, "longreprtext", "")).splitlines() if ln.strip()]
        text = lines[-1] if lines else ""
    return text.strip()[:400]


def _write(record: dict[str, Any]) -> None:
    _out.write(json.dumps(record) + "\n")
    _out.flush()


def pytest_runtest_logreport(report: Any) -> None:
    if _out is None:
        return
    record = {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome}
    if report.failed or report.skipped:
        record["message"] = _message(report)
    _write(record)


def pytest_collectreport(report: Any) -> None:
    if _out is not None and report.failed:
        _write({"nodeid": report.nodeid, "when": "collect", "outcome": "failed",
                "message": _message(report)})  # fmt: skip
