"""Per-module and per-function call metrics of ``cmfleet dev``, and the latest custom metric lines of each module.

Call metrics come from the runtime's own job records (every job that reaches a terminal state), so they cover
every module whatever its language or logging, and they measure what a caller sees: submission to result,
queue wait included. Calls, errors and cold starts are counted since the runtime started; p50/p95 are exact
nearest-rank percentiles over the last :data:`WINDOW` calls (bounded memory, and a dev console wants recent
latency rather than the whole run's).

Custom metrics are the ``metric.1`` lines modules write with cmmetrics (or Foundry's ``slslogging``) on their
output: the latest values of each (module, metric name) are kept.

Everything here runs on the runtime's event loop: no locks.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

WINDOW = 1024  # calls per function (and per module) kept for the percentiles
MAX_CUSTOM = 1000  # distinct (module, metric) pairs kept; a module inventing names forever cannot grow memory
METRIC_LINE_TYPE = "metric.1"
_QUANTILES = ((0.5, "p50_ms"), (0.95, "p95_ms"))


def nearest_rank(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of ascending ``sorted_values`` by nearest rank; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(round(q * len(sorted_values), 9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class CallSeries:
    """Calls, errors, cold starts and recent durations of one function (or of a whole module)."""

    __slots__ = ("calls", "errors", "cold_starts", "sum_ms", "recent", "states")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.cold_starts = 0
        self.sum_ms = 0.0
        self.recent: deque[float] = deque(maxlen=WINDOW)
        self.states: dict[str, int] = {}

    def add(self, duration_ms: float, state: str, cold_start: bool) -> None:
        """Count one finished call."""
        self.calls += 1
        if state != "succeeded":
            self.errors += 1
        if cold_start:
            self.cold_starts += 1
        self.states[state] = self.states.get(state, 0) + 1
        self.sum_ms += duration_ms
        self.recent.append(duration_ms)

    def summary(self) -> dict[str, Any]:
        """``calls, errors, cold_starts, p50_ms, p95_ms, mean_ms, states`` (percentiles None before a call)."""
        ordered = sorted(self.recent)
        out: dict[str, Any] = {"calls": self.calls, "errors": self.errors, "cold_starts": self.cold_starts}
        for q, key in _QUANTILES:
            value = nearest_rank(ordered, q)
            out[key] = round(value, 3) if value is not None else None
        out["mean_ms"] = round(self.sum_ms / self.calls, 3) if self.calls else None
        out["states"] = dict(self.states)
        return out


class RuntimeMetrics:
    """What the console's metrics panel and ``/metrics`` show."""

    def __init__(self, redact: Callable[[str], str] = lambda text: text) -> None:
        self.functions: dict[tuple[str, str], CallSeries] = {}
        self.modules: dict[str, CallSeries] = {}
        self.custom: dict[tuple[str, str], dict[str, Any]] = {}
        self.redact = redact

    def observe_job(self, job: Any) -> None:
        """Count a job that reached its terminal state (a ``scheduler.Job``)."""
        duration = float(job.duration_ms or 0.0)
        key = (job.module, job.function)
        function = self.functions.get(key)
        if function is None:
            function = self.functions[key] = CallSeries()
        module = self.modules.get(job.module)
        if module is None:
            module = self.modules[job.module] = CallSeries()
        function.add(duration, job.state, bool(job.cold_start))
        module.add(duration, job.state, bool(job.cold_start))

    def observe_line(self, module: str, raw: bytes) -> bool:
        """Keep a replica's output line if it is a ``metric.1`` line; True when it was one."""
        # the cheap test first (this runs for every line of every replica); find, not ``in`` (see http.target_path)
        if raw.find(b'"metric.1"') < 0:
            return False
        try:
            entry = json.loads(self.redact(raw.decode("utf-8", "replace")))
        except ValueError:
            return False
        if not isinstance(entry, dict) or entry.get("type") != METRIC_LINE_TYPE:
            return False
        name = entry.get("metricName")
        if not isinstance(name, str) or not name:
            return False
        key = (module, name)
        if key not in self.custom and len(self.custom) >= MAX_CUSTOM:
            return False
        values = entry.get("values") if isinstance(entry.get("values"), dict) else {}
        tags = entry.get("tags") if isinstance(entry.get("tags"), dict) else {}
        self.custom[key] = {
            "module": module,
            "name": name,
            "type": str(entry.get("metricType") or "gauge"),
            "values": values,
            "tags": tags,
            "time": entry.get("time"),
        }
        return True

    def snapshot(self, module_names: list[str] | None = None) -> dict[str, Any]:
        """The console's view: every module (those in ``module_names`` even without calls) with its functions."""
        names = list(dict.fromkeys([*(module_names or []), *self.modules]))
        modules = []
        for name in names:
            series = self.modules.get(name) or CallSeries()
            functions = [
                {"function": fn, **s.summary()} for (mod, fn), s in sorted(self.functions.items()) if mod == name
            ]
            modules.append({"module": name, **series.summary(), "functions": functions})
        custom = [self.custom[k] for k in sorted(self.custom)]
        return {"window": WINDOW, "modules": modules, "custom": custom}


class RuntimeCollector:
    """A prometheus-client collector over the runtime's state, read at every scrape."""

    def __init__(self, metrics: RuntimeMetrics, runtime: Any) -> None:
        self.metrics = metrics
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

        labels = ["module", "function"]
        calls = CounterMetricFamily("cmfleet_calls", "Finished calls of each function.", labels=labels)
        errors = CounterMetricFamily(
            "cmfleet_call_errors", "Calls that failed, timed out or were lost with their replica.", labels=labels
        )
        cold = CounterMetricFamily("cmfleet_cold_starts", "Calls that had to wait for a replica start.", labels=labels)
        jobs = CounterMetricFamily(
            "cmfleet_jobs", "Finished jobs by terminal state.", labels=["module", "function", "state"]
        )
        duration = Metric(
            "cmfleet_call_duration_seconds",
            f"Submission to result, queue included; quantiles over the last {WINDOW} calls.",
            "summary",
        )
        for (module, function), series in sorted(self.metrics.functions.items()):
            calls.add_metric([module, function], series.calls)
            errors.add_metric([module, function], series.errors)
            cold.add_metric([module, function], series.cold_starts)
            for state, count in sorted(series.states.items()):
                jobs.add_metric([module, function, state], count)
            ordered = sorted(series.recent)
            base = {"module": module, "function": function}
            for q, _ in _QUANTILES:
                value = nearest_rank(ordered, q)
                if value is not None:
                    duration.add_sample(duration.name, {**base, "quantile": str(q)}, value / 1000.0)
            duration.add_sample(duration.name + "_sum", base, series.sum_ms / 1000.0)
            duration.add_sample(duration.name + "_count", base, series.calls)
        yield from (calls, errors, cold, jobs, duration)
        yield from self._runtime_state()
        custom = GaugeMetricFamily(
            "cmfleet_module_metric",
            "Latest values of the metric.1 lines modules log (cmmetrics), one sample per value.",
            labels=["module", "metric", "type", "stat"],
        )
        for m in (self.metrics.custom[k] for k in sorted(self.metrics.custom)):
            for stat, value in sorted(m["values"].items()):
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    custom.add_metric([m["module"], m["name"], m["type"], str(stat)], value)
        yield custom

    def _runtime_state(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        queued = GaugeMetricFamily("cmfleet_queued_jobs", "Jobs waiting for a replica.", labels=["module"])
        running = GaugeMetricFamily("cmfleet_running_jobs", "Jobs running on a replica.", labels=["module"])
        replicas = GaugeMetricFamily("cmfleet_replicas", "Replicas by state.", labels=["module", "state"])
        manager = getattr(self.runtime, "manager", None)
        for name, mod in sorted((manager.modules if manager is not None else {}).items()):
            queue = mod.queue
            queued.add_metric([name], len(queue.queue))
            running.add_metric([name], queue.running)
            states: dict[str, int] = {}
            for replica in queue.replicas:
                if replica.external and replica.state != "ready":
                    continue  # the hand-started slot counts only while a process uses it
                states[replica.state] = states.get(replica.state, 0) + 1
            for state, count in sorted(states.items()):
                replicas.add_metric([name, state], count)
        yield from (queued, running, replicas)


def prometheus_text(metrics: RuntimeMetrics, runtime: Any, accept: str = "") -> tuple[bytes, str]:
    """The exposition of ``metrics`` and the runtime's queues and replicas, and its Content-Type: Prometheus
    text 0.0.4 by default, or what the scraper's ``Accept`` header asks for (prometheus-client's negotiation)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(metrics, runtime))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
