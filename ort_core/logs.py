"""Logging with onnxruntime's severities, default logger and callback.

onnxruntime logs through one process-wide default logger whose threshold is set by
``set_default_logger_severity`` (0 verbose, 1 info, 2 warning, 3 error, 4 fatal) and whose sink can be
replaced by ``set_default_logger_callback``. A session's ``SessionOptions.log_severity_level`` (and a
run's ``RunOptions.log_severity_level``) overrides the threshold for what that session (run) logs when
it is 0 or more; -1, the default, means "use the default logger's".

Where the messages go, in order:

1. a callback set with :func:`set_default_logger_callback` gets
   ``(severity, category, logid, code_location, message)``; an exception it raises is swallowed
   (logging never takes the caller down);
2. otherwise warnings and errors become Python warnings (``RuntimeWarning``), so they show up by
   default and can be filtered or turned into errors with the :mod:`warnings` machinery;
3. verbose and info messages go to the ``ort_core`` :mod:`logging` logger; when nobody configured a
   handler for it, they are written to stderr, as onnxruntime's default sink does. Nothing is ever
   written to stdout.
"""

from __future__ import annotations

import enum
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

__all__ = [
    "Severity",
    "log",
    "enabled",
    "set_default_logger_severity",
    "set_default_logger_verbosity",
    "set_default_logger_callback",
    "default_severity",
]


class Severity(enum.IntEnum):
    """onnxruntime's ``OrtLoggingLevel`` values."""

    VERBOSE = 0
    INFO = 1
    WARNING = 2
    ERROR = 3
    FATAL = 4


_LETTER = "VIWEF"
#: severity -> logging's level numbers (DEBUG, INFO, WARNING, ERROR, CRITICAL)
_PY_LEVEL = {0: 10, 1: 20, 2: 30, 3: 40, 4: 50}


def _python_logger() -> Any:
    """The ``ort_core`` logger when Python's logging is in use in this process, else None:
    without ``import logging`` no handler can exist, and importing it costs 2.5 ms of start-up."""
    logging = sys.modules.get("logging")
    return logging.getLogger("ort_core") if logging is not None else None


_lock = threading.Lock()
_state: dict[str, Any] = {"severity": 2, "verbosity": 0, "callback": None}


def _check_severity(value: Any, what: str) -> int:
    try:
        level = int(value)
    except (TypeError, ValueError):
        raise RuntimeError(
            f"{what} must be an integer from 0 (verbose) to 4 (fatal), got {value!r}."
        ) from None
    if isinstance(value, bool) or not 0 <= level <= 4:
        raise RuntimeError(
            f"{what} must be from 0 (verbose) to 4 (fatal), got {value!r}: 0 verbose, 1 info, "
            "2 warning, 3 error, 4 fatal."
        )
    return level


def set_default_logger_severity(severity: int) -> None:
    """Set the threshold of the default logger: 0 verbose, 1 info, 2 warning (the default), 3 error,
    4 fatal. Sessions whose ``log_severity_level`` is -1 log at this threshold.

    Raises:
        RuntimeError: the severity is not an integer from 0 to 4 (as onnxruntime).
    """
    level = _check_severity(severity, "The default logger severity")
    with _lock:
        _state["severity"] = level


def set_default_logger_verbosity(verbosity: int) -> None:
    """Set the verbosity of VERBOSE messages (higher shows more detail: ort-core logs per-node
    placement and kernel decisions at verbosity 1 and above). Only acts when the severity is 0."""
    try:
        value = int(verbosity)
    except (TypeError, ValueError):
        raise RuntimeError(f"The logger verbosity must be an integer, got {verbosity!r}.") from None
    with _lock:
        _state["verbosity"] = value


def set_default_logger_callback(callback: Callable[..., Any] | None, severity: int = 2) -> None:
    """Route every log message at or above ``severity`` to ``callback(severity, category, logid,
    code_location, message)``; ``None`` restores the default sinks. The callback's exceptions are
    swallowed.

    Raises:
        RuntimeError: ``callback`` is neither callable nor None, or ``severity`` is not 0 to 4.
    """
    if callback is not None and not callable(callback):
        raise RuntimeError(
            f"The logger callback must be a callable taking (severity, category, logid, "
            f"code_location, message) or None, got {type(callback).__name__}."
        )
    level = _check_severity(severity, "The logger callback severity")
    with _lock:
        _state["callback"] = callback
        if callback is not None:
            _state["severity"] = level


def default_severity() -> int:
    """The default logger's threshold."""
    return _state["severity"]


def default_verbosity() -> int:
    return _state["verbosity"]


def effective(level: int | None) -> int:
    """A session's or run's threshold: its own level when it is 0 to 4, else the default's."""
    if level is None or level < 0 or level > 4:
        return _state["severity"]
    return int(level)


def enabled(severity: int, level: int | None = None) -> bool:
    """Whether a message of ``severity`` would be logged under threshold ``level`` (-1/None: the
    default logger's)."""
    return severity >= effective(level)


def log(
    severity: int,
    message: str,
    *,
    logid: str = "",
    level: int | None = None,
    category: str = "ort-core",
    code_location: str = "",
    vlevel: int = 0,
    verbosity: int | None = None,
    warning_category: type[Warning] = RuntimeWarning,
    stacklevel: int = 2,
) -> None:
    """Log ``message`` at ``severity`` for a session or run whose threshold is ``level``.

    Args:
        severity: 0 verbose ... 4 fatal.
        message: the text.
        logid: the session's or run's ``logid``.
        level: the session's or run's ``log_severity_level`` (-1 or None: the default logger's).
        category: the message's category (``ort-core``, ``provider``, ...).
        code_location: where it comes from, e.g. ``session.py:resolve_providers``.
        vlevel: for verbose messages, the verbosity needed to show it (0: always at severity 0).
        verbosity: the session's or run's ``log_verbosity_level`` (the default's when larger).
        warning_category: the warning class used for warnings and errors without a callback.
        stacklevel: passed to :func:`warnings.warn` (counted from the caller of this function).
    """
    if severity < effective(level):
        return
    if vlevel and max(verbosity or 0, _state["verbosity"]) < vlevel:
        return
    callback = _state["callback"]
    if callback is not None:
        try:
            callback(int(severity), category, logid, code_location, message)
        except Exception:  # a user's callback must not break a session  # noqa: S110
            pass
        return
    if severity >= Severity.WARNING:
        warnings.warn(message, warning_category, stacklevel=stacklevel + 1)
        return
    logger = _python_logger()
    if logger is not None and logger.hasHandlers():
        logger.log(_PY_LEVEL[int(severity)], message)
        return
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    tag = f"{_LETTER[int(severity)]}:{category}" + (f":{logid}" if logid else "")
    sys.stderr.write(f"{stamp} [{tag}] {message}\n")
