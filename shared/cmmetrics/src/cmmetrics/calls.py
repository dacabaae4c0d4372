"""Per-function call statistics: recorded in process by the cmfleet plugin, or rebuilt from log lines.

Every call the plugin sees becomes one ``service.1`` line on the ``cmmetrics.calls`` logger::

    {"type": "service.1", "level": "INFO", ..., "message": "call hello.add ok in 0.412 ms",
     "params": {"process_id": "7615", "job_id": "j-1", "session_id": "sess-123", "event": "cmfleet.call",
                "module": "hello", "function": "add", "duration_ms": 0.412, "outcome": "ok"}, "safe": true}

(``"outcome": "error"`` adds ``"error": "<exception class>"``). The line is written to stderr when the process
runs under a runtime (``GET_JOB_URI`` is set: a Foundry container or a local replica) or when
``CMMETRICS_CALL_LOG=1``; ``CMMETRICS_CALL_LOG=0`` turns it off. In-process tools (``cmfleet invoke``, pytest)
only update :data:`CALL_STATS`.

Replicas are separate processes, so a runtime rebuilds the same statistics from their stderr:
``stats.observe_line(line, module=name)`` for every line, then ``stats.snapshot()`` for the console and
``cmmetrics.prometheus.prometheus_text(stats)`` for ``/metrics``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from cmmetrics.formatter import METRIC_TYPE, SlsFormatter, StderrHandler
from cmmetrics.sketch import LogSketch

CALL_EVENT = "cmfleet.call"
CALL_LOGGER = "cmmetrics.calls"
CALL_LOG_ENV = "CMMETRICS_CALL_LOG"
_ON, _OFF = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass
class FunctionStats:
    """Calls, errors and the duration distribution (milliseconds) of one function."""

    calls: int = 0
    errors: int = 0
    durations_ms: LogSketch = field(default_factory=LogSketch)

    def summary(self) -> dict[str, Any]:
        """``calls, errors, p50_ms, p95_ms, p99_ms, mean_ms, max_ms, sum_ms`` (durations ``None`` if no calls)."""
        snap = self.durations_ms.snapshot()
        return {
            "calls": self.calls,
            "errors": self.errors,
            "p50_ms": snap["p50"],
            "p95_ms": snap["p95"],
            "p99_ms": snap["p99"],
            "mean_ms": snap["mean"],
            "max_ms": snap["max"],
            "sum_ms": snap["sum"],
        }


class CallStats:
    """Per-module, per-function call statistics, plus the latest custom metric of each name. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: dict[tuple[str, str], FunctionStats] = {}
        self._metrics: dict[tuple[str, str], dict[str, Any]] = {}

    def record(self, module: str, function: str, duration_ms: float, ok: bool) -> None:
        """Count one call of ``module.function`` that took ``duration_ms`` and succeeded or not."""
        with self._lock:
            stats = self._functions.get((module, function))
            if stats is None:
                stats = self._functions[(module, function)] = FunctionStats()
            stats.calls += 1
            if not ok:
                stats.errors += 1
        stats.durations_ms.add(max(0.0, float(duration_ms)))

    def observe_line(self, line: str | bytes, module: str | None = None) -> str | None:
        """Feed one log line of a replica; returns ``"call"`` or ``"metric"`` if it was used, else ``None``.

        ``module`` names the replica's module, for metric lines (call lines carry their own). Lines that are
        not JSON, or JSON of another kind, are ignored, so a runtime can pass every stderr line.
        """
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        text = text.strip()
        if not text.startswith("{"):
            return None
        try:
            entry = json.loads(text)
        except ValueError:
            return None
        return self.observe_entry(entry, module)

    def observe_entry(self, entry: Any, module: str | None = None) -> str | None:
        """Like :meth:`observe_line` for a line the caller has already parsed (a JSON object)."""
        if not isinstance(entry, dict):
            return None
        params = entry.get("params")
        if isinstance(params, dict) and params.get("event") == CALL_EVENT:
            try:
                self.record(
                    str(params.get("module") or module or ""),
                    str(params["function"]),
                    float(params["duration_ms"]),
                    params.get("outcome") == "ok",
                )
            except (KeyError, TypeError, ValueError):
                return None
            return "call"
        if entry.get("type") == METRIC_TYPE and isinstance(entry.get("metricName"), str):
            with self._lock:
                self._metrics[(module or "", entry["metricName"])] = {
                    "type": entry.get("metricType", "gauge"),
                    "values": entry.get("values") if isinstance(entry.get("values"), dict) else {},
                    "time": entry.get("time"),
                }
            return "metric"
        return None

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{module: {function: {"calls", "errors", "p50_ms", "p95_ms", ...}}}``, sorted by name."""
        with self._lock:
            items = sorted(self._functions.items())
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (module, function), stats in items:
            out.setdefault(module, {})[function] = stats.summary()
        return out

    def custom_metrics(self) -> list[dict[str, Any]]:
        """The latest ``metric.1`` line of every (module, metric name) seen by :meth:`observe_line`."""
        with self._lock:
            items = sorted(self._metrics.items())
        return [{"module": m, "name": n, **value} for (m, n), value in items]

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._functions.clear()
            self._metrics.clear()


#: The statistics of this process (what the cmfleet plugin records into).
CALL_STATS = CallStats()
_call_log_lock = threading.Lock()
_call_log_on: bool | None = None  # decided on the first call (reading the environment on every call is slow)


def snapshot() -> dict[str, dict[str, dict[str, Any]]]:
    """Per-module, per-function statistics of the calls this process has served (see ``CallStats.snapshot``)."""
    return CALL_STATS.snapshot()


def call_log_enabled() -> bool:
    """Whether per-call lines go to stderr: ``CMMETRICS_CALL_LOG`` if set, else only under a runtime."""
    raw = os.environ.get(CALL_LOG_ENV, "").strip().lower()
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    return "GET_JOB_URI" in os.environ


def call_logger() -> logging.Logger:
    """The ``cmmetrics.calls`` logger (its own handler, not propagated: never printed twice)."""
    logger = logging.getLogger(CALL_LOGGER)
    logger.propagate = False
    return logger


def install_call_log(stream: TextIO | None = None) -> logging.Handler:
    """Write per-call lines to ``stream`` (default: the current stderr), replacing an earlier call-log handler."""
    global _call_log_on
    logger = call_logger()
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else StderrHandler()
    handler.setFormatter(SlsFormatter())
    with _call_log_lock:
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        _call_log_on = True
    return handler


def reset_call_log() -> None:
    """Remove the call-log handler and decide again (from the environment) on the next call."""
    global _call_log_on
    with _call_log_lock:
        call_logger().handlers.clear()
        _call_log_on = None


def _emit_line(
    module: str, function: str, job_id: str, duration_ms: float, error: BaseException | None, origin: str | None
) -> None:
    global _call_log_on
    if _call_log_on is None:
        if call_log_enabled():
            install_call_log()
        else:
            _call_log_on = False
    if not _call_log_on:
        return
    logger = call_logger()
    params: dict[str, Any] = {
        "job_id": job_id,
        "event": CALL_EVENT,
        "module": module,
        "function": function,
        "duration_ms": round(duration_ms, 3),
        "outcome": "ok" if error is None else "error",
    }
    if error is not None:
        params["error"] = type(error).__name__
    outcome = "ok" if error is None else f"error ({type(error).__name__})"
    extra = {"params": params, "sls_origin": origin}
    logger.info("call %s.%s %s in %.3f ms", module, function, outcome, duration_ms, extra=extra)


def origin_of(func: Any) -> str | None:
    """``file:line`` where ``func`` is defined (``None`` for callables without code)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


class CallTimer:
    """Times one call: ``finish(error)`` records it in :data:`CALL_STATS` and writes its line."""

    def __init__(
        self, module: str, function: str, job_id: str, stats: CallStats | None = None, origin: str | None = None
    ) -> None:
        self.module, self.function, self.job_id = module, function, str(job_id)
        self.origin = origin  # where the function is defined ("app.py:31"), the line's origin
        self.stats = stats if stats is not None else CALL_STATS
        self.started = time.perf_counter()
        self.done = False

    def __enter__(self) -> CallTimer:
        # The SDK's log context set to this call's job id, so lines logged inside carry it (a plain
        # attribute swap: this runs on every call of every function).
        self._sdk = sys.modules.get("compute_modules.logging.common")
        if self._sdk is not None:
            self._previous_job = self._sdk.get_thread_local_data("job_id", "")
            self._sdk.set_thread_local_data("job_id", self.job_id)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._sdk is not None:
            self._sdk.set_thread_local_data("job_id", self._previous_job)

    def finish(self, error: BaseException | None = None) -> None:
        """Record the call once (later calls do nothing)."""
        if self.done:
            return
        self.done = True
        duration_ms = (time.perf_counter() - self.started) * 1000.0
        self.stats.record(self.module, self.function, duration_ms, error is None)
        _emit_line(self.module, self.function, self.job_id, duration_ms, error, self.origin)

    def wrap_stream(self, items: Iterable[Any]) -> Iterator[Any]:
        """Yield ``items``, finishing the call when the stream ends, fails, or is closed by its reader."""
        try:
            yield from items
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                self.finish(exc)
            raise
        finally:
            self.finish(None)
