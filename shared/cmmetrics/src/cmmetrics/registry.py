"""The metrics registry and its emission thread.

``METRICS_REGISTRY.emit_thread(delay_s=60.0)`` starts one daemon thread that logs every registered metric as a
``metric.1`` line every ``delay_s`` seconds, on a fixed schedule (a slow emission does not shift later ones; whole
periods that were missed are skipped, never emitted in a burst). It stops at interpreter exit (``atexit``: the
stop event is set, the thread joined, and the metrics emitted one last time), and after ``fork`` the child starts
without the parent's thread, so ``emit_thread`` there starts its own.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import weakref
from typing import Any

from cmmetrics.clock import RealClock
from cmmetrics.metrics import Counter, Gauge, Histogram

EMIT_LOGGER = "cmmetrics.registry"
_REGISTRIES: weakref.WeakSet[MetricsRegistry] = weakref.WeakSet()


class Emitter:
    """The periodic emission loop of one registry; ``run`` is the thread's body."""

    def __init__(self, registry: MetricsRegistry, delay_s: float, clock: Any, logger: logging.Logger) -> None:
        self.registry = registry
        self.delay_s = delay_s
        self.clock = clock
        self.logger = logger
        self.emissions = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, name="cmmetrics-emitter", daemon=True)

    def run(self) -> None:
        """Emit every ``delay_s`` seconds of the clock until stopped."""
        next_due = self.clock.monotonic() + self.delay_s
        while not self.stop_event.is_set():
            remaining = next_due - self.clock.monotonic()
            if remaining > 0:
                if self.clock.wait(remaining, self.stop_event):
                    break
                continue
            self.registry.emit_all(self.logger)
            self.emissions += 1
            overrun = self.clock.monotonic() - next_due
            next_due += (math.floor(overrun / self.delay_s) + 1) * self.delay_s

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Set the stop event, end the pending wait and join the thread."""
        self.stop_event.set()
        self.clock.wake()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)


class MetricsRegistry:
    """Named metrics (``Gauge``, ``Counter``, ``Histogram``) and their periodic emission."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock if clock is not None else RealClock()
        self._lock = threading.Lock()
        self._metrics: dict[str, Any] = {}
        self._emitter: Emitter | None = None
        self._final_emit = True
        self._atexit_registered = False
        _REGISTRIES.add(self)

    # -- metrics -----------------------------------------------------------------------------------------

    def register(self, metric: Any) -> Any:
        """Add ``metric``, replacing any metric of the same name; returns it."""
        with self._lock:
            self._metrics[metric.name] = metric
        return metric

    def unregister(self, name: str) -> None:
        """Remove the metric called ``name`` (no error if there is none)."""
        with self._lock:
            self._metrics.pop(name, None)

    def get(self, name: str) -> Any:
        """The metric called ``name``, or ``None``."""
        with self._lock:
            return self._metrics.get(name)

    def metrics(self) -> list[Any]:
        """Every registered metric, in registration order."""
        with self._lock:
            return list(self._metrics.values())

    def clear(self) -> None:
        """Forget every metric (the emission thread, if any, keeps running)."""
        with self._lock:
            self._metrics.clear()

    def _get_or_create(self, cls: type, name: str, **kwargs: Any) -> Any:
        with self._lock:
            existing = self._metrics.get(name)
            if existing is not None:
                if not isinstance(existing, cls):
                    raise TypeError(
                        f"metric {name!r} is already registered as a {existing.metric_type}, not a "
                        f"{cls.metric_type}; pick another name"
                    )
                return existing
            metric = cls(name, registry=None, **kwargs)
            self._metrics[name] = metric
            return metric

    def gauge(self, name: str, update_func: Any = None) -> Gauge:
        """The gauge called ``name``, created if missing."""
        return self._get_or_create(Gauge, name, update_func=update_func)

    def counter(self, name: str) -> Counter:
        """The counter called ``name``, created if missing (keeps its count across calls)."""
        return self._get_or_create(Counter, name)

    def histogram(self, name: str, **kwargs: Any) -> Histogram:
        """The histogram called ``name``, created if missing."""
        return self._get_or_create(Histogram, name, **kwargs)

    # -- emission ----------------------------------------------------------------------------------------

    def emit_all(self, logger: logging.Logger | None = None) -> int:
        """Log every metric once as a ``metric.1`` line; returns how many were logged.

        A gauge whose ``update_func`` raises is reported as a WARNING line and skipped: one broken metric must
        not stop the others, nor the emission thread.
        """
        logger = logger or logging.getLogger(EMIT_LOGGER)
        emitted = 0
        for metric in self.metrics():
            try:
                arg = metric.metric_arg()
            except Exception as exc:  # noqa: BLE001 - user callbacks may raise anything
                logger.warning("metric %s could not be read: %r", metric.name, exc)
                continue
            logger.info(arg)
            emitted += 1
        return emitted

    def emit_thread(
        self, delay_s: float = 60.0, *, final_emit: bool = True, logger: logging.Logger | None = None
    ) -> Emitter:
        """Start (once) the thread that emits every metric every ``delay_s`` seconds; returns it.

        Calling it again while the thread runs only changes the period (from the next wait on). With
        ``final_emit`` the metrics are emitted one last time when the interpreter exits.
        """
        if not (isinstance(delay_s, int | float) and math.isfinite(delay_s) and delay_s > 0):
            raise ValueError(f"emit_thread(delay_s=...) must be a positive number of seconds, got {delay_s!r}")
        with self._lock:
            self._final_emit = final_emit
            if self._emitter is not None and self._emitter.running:
                self._emitter.delay_s = float(delay_s)
                return self._emitter
            emitter = Emitter(self, float(delay_s), self.clock, logger or logging.getLogger(EMIT_LOGGER))
            self._emitter = emitter
            if not self._atexit_registered:
                atexit.register(self._at_exit)
                self._atexit_registered = True
        emitter.thread.start()
        return emitter

    @property
    def emitter(self) -> Emitter | None:
        """The emission thread started by ``emit_thread``, if any."""
        return self._emitter

    def stop(self, *, final_emit: bool = False, timeout: float = 5.0) -> None:
        """Stop the emission thread (if running) and wait for it; optionally emit once more."""
        with self._lock:
            emitter, self._emitter = self._emitter, None
        if emitter is None:
            return
        was_running = emitter.running
        emitter.stop(timeout)
        if final_emit and was_running:
            self.emit_all(emitter.logger)

    def _at_exit(self) -> None:
        self.stop(final_emit=self._final_emit)

    def _forget_after_fork(self) -> None:
        # The child has no copy of the parent's thread; drop the handle so emit_thread starts a new one.
        self._lock = threading.Lock()
        self._emitter = None


def _after_fork_in_child() -> None:
    for registry in list(_REGISTRIES):
        registry._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

#: The process-wide registry: metrics created without ``registry=`` land here.
METRICS_REGISTRY = MetricsRegistry()
