"""One JSON object per line, in the shape of the official SDK's ``SlsFormatter``, plus ``metric.1`` lines.

Service line (identical keys to the SDK's; contract reference §4.5)::

    {"type": "service.1", "level": "INFO", "time": "2026-11-29T01:25:22.311403+00:00", "origin": "app.py:5",
     "thread": "MainThread", "params": {"process_id": "7615", "job_id": "a", "session_id": "sess-123"},
     "message": "start slow", "safe": true}

Metric line (a record whose message is a ``MetricArg``)::

    {"type": "metric.1", "level": "INFO", "time": "...", "origin": "python:myservice", "thread": "...",
     "params": {"process_id": "-1", "job_id": "", "session_id": "sess-123"}, "message": "myGauge",
     "metricName": "myGauge", "metricType": "gauge", "values": {"value": 99.9}, "tags": {}, "safe": true}

``origin`` is ``file:line`` of the logging call (``extra={"sls_origin": ...}`` overrides it); for a metric line it is
the ``origin_prefix`` given to ``install_metrics`` (``file:line`` without one).
``params`` always holds the SDK's log context (``process_id``, ``job_id``, ``session_id`` = the replica's
``COMPUTE_SESSION_ID``). Unsafe params (the SDK adapter's ``unsafe_params=``, or ``extra={"unsafe_params": {...}}``
on a standard logger) go to ``unsafeParams``, which replaces ``"safe": true``; their keys are removed from
``params`` whatever the caller passed there.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TextIO

from cmmetrics.context import runtime_params
from cmmetrics.metrics import MetricArg

SERVICE_TYPE = "service.1"
METRIC_TYPE = "metric.1"
#: Keys of every line; a line has either ``safe`` (true) or ``unsafeParams``.
LINE_KEYS = ("type", "level", "time", "origin", "thread", "params", "message")
METRIC_KEYS = ("metricName", "metricType", "values", "tags")
_HANDLER_MARK = "_cmmetrics_handler"


def _mapping(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


class SlsFormatter(logging.Formatter):
    """The SDK's ``SlsFormatter`` line shape, with ``MetricArg`` messages written as ``metric.1`` lines."""

    def __init__(self, origin_prefix: str | None = None) -> None:
        super().__init__()
        self.origin_prefix = origin_prefix
        self._text = logging.Formatter("%(message)s")  # as the SDK: message plus traceback, if any

    def format(self, record: logging.LogRecord) -> str:
        # The SDK's adapter already put the calling thread's context in record.params: it wins, as there.
        params = {**runtime_params(), **_mapping(getattr(record, "params", None))}
        unsafe = {**_mapping(getattr(record, "unsafeParams", None)), **_mapping(getattr(record, "unsafe_params", None))}
        for key in unsafe:
            params.pop(key, None)
        entry: dict[str, Any] = {
            "type": getattr(record, "service_type", SERVICE_TYPE),
            "level": record.levelname,
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "origin": getattr(record, "sls_origin", None) or f"{record.filename}:{record.lineno}",
            "thread": record.threadName or threading.current_thread().name,
            "params": params,
        }
        if isinstance(record.msg, MetricArg):
            metric = record.msg
            entry["type"] = METRIC_TYPE
            if self.origin_prefix:
                entry["origin"] = self.origin_prefix
            entry["message"] = metric.name
            entry["metricName"] = metric.name
            entry["metricType"] = metric.type
            entry["values"] = metric.values()
            entry["tags"] = metric.tags
        else:
            entry["message"] = self._text.format(record)
        if unsafe:
            entry["unsafeParams"] = unsafe
        else:
            entry["safe"] = True
        return json.dumps(entry, default=str)


class StderrHandler(logging.StreamHandler):
    """A stream handler writing to whatever ``sys.stderr`` is at the time of each line.

    The SDK's handler binds the stderr of the moment it was created; resolving it per line lets a test's
    captured stderr (pytest ``capsys``) or a redirected one see lines from loggers set up at import time.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class _SkipSdkLoggers(logging.Filter):
    """Drop records of the SDK's own loggers at the root: they already wrote their line with their handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        common = sys.modules.get("compute_modules.logging.common")
        return common is None or record.name not in common.COMPUTE_MODULES_ADAPTER_MANAGER.adapters


def install_metrics(
    origin_prefix: str | None = None,
    *,
    logger: logging.Logger | None = None,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    sdk_loggers: bool = True,
) -> logging.Handler:
    """Make ``logger`` (default: the root logger) write SLS JSON lines, metric lines included, to stderr.

    ``install_metrics(origin_prefix="python:myservice")`` then ``logging.getLogger("metrics").info(
    MetricArg("myGauge", 99.9))`` writes a ``metric.1`` line. Calling it again replaces the handler it added
    before (never two lines per record). The logger's level is lowered to ``level`` if it was higher, so INFO
    metric lines are not dropped. With ``sdk_loggers``, the SDK's own loggers (``compute_modules.logging.
    get_logger``) use the same formatter, so they accept ``MetricArg`` too. Returns the handler.
    """
    target = logger if logger is not None else logging.getLogger()
    formatter = SlsFormatter(origin_prefix)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else StderrHandler()
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    if target is logging.getLogger():
        handler.addFilter(_SkipSdkLoggers())
    for old in [h for h in target.handlers if getattr(h, _HANDLER_MARK, False)]:
        target.removeHandler(old)
    target.addHandler(handler)
    wanted = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(wanted, int):
        raise ValueError(f"install_metrics(level={level!r}): not a logging level; use e.g. 'INFO' or logging.INFO")
    if target.getEffectiveLevel() > wanted:
        target.setLevel(wanted)
    if sdk_loggers:
        try:
            from compute_modules.logging import setup_logger_formatter
        except ImportError:  # the SDK is not installed: only standard loggers
            pass
        else:
            setup_logger_formatter(formatter)
    return handler
