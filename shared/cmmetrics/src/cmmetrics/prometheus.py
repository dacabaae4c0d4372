"""Prometheus text exposition of call statistics and custom metrics (prometheus-client, imported lazily).

    from cmmetrics.prometheus import content_type, prometheus_text
    body = prometheus_text(stats)          # bytes, for a /metrics response with Content-Type content_type()

Families (labels ``module``, ``function``; custom metrics ``module``, ``metric``):

* ``cmfleet_calls_total`` and ``cmfleet_call_errors_total``: counters.
* ``cmfleet_call_duration_seconds``: a summary with quantiles 0.5, 0.95 and 0.99, ``_sum`` and ``_count``.
* ``cmmetrics_gauge``, ``cmmetrics_counter_total``: the latest value of each custom gauge and counter seen in a
  ``metric.1`` line; ``cmmetrics_histogram{stat=...}``: each numeric value of a custom histogram line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cmmetrics.calls import CALL_STATS, CallStats

_QUANTILES = (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms"))


class CallStatsCollector:
    """A prometheus-client collector reading a :class:`CallStats` at every scrape."""

    def __init__(self, stats: CallStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

        labels = ["module", "function"]
        calls = CounterMetricFamily("cmfleet_calls", "Calls of each function of each module.", labels=labels)
        errors = CounterMetricFamily("cmfleet_call_errors", "Calls that ended in an error.", labels=labels)
        duration = Metric("cmfleet_call_duration_seconds", "Duration of each call, in seconds.", "summary")
        for module, functions in self.stats.snapshot().items():
            for function, s in functions.items():
                calls.add_metric([module, function], s["calls"])
                errors.add_metric([module, function], s["errors"])
                base = {"module": module, "function": function}
                for q, key in _QUANTILES:
                    if s[key] is not None:
                        duration.add_sample(duration.name, {**base, "quantile": q}, s[key] / 1000.0)
                duration.add_sample(duration.name + "_sum", base, s["sum_ms"] / 1000.0)
                duration.add_sample(duration.name + "_count", base, s["calls"])
        yield from (calls, errors, duration)

        gauges = GaugeMetricFamily("cmmetrics_gauge", "Latest value of each custom gauge.", labels=["module", "metric"])
        counters = CounterMetricFamily("cmmetrics_counter", "Latest custom counters.", labels=["module", "metric"])
        hists = GaugeMetricFamily(
            "cmmetrics_histogram", "Latest values of each custom histogram.", labels=["module", "metric", "stat"]
        )
        for m in self.stats.custom_metrics():
            values = {k: v for k, v in m["values"].items() if _number(v)}
            if m["type"] == "gauge" and "value" in values:
                gauges.add_metric([m["module"], m["name"]], values["value"])
            elif m["type"] == "counter" and "count" in values:
                counters.add_metric([m["module"], m["name"]], values["count"])
            elif m["type"] == "histogram":
                for stat, value in sorted(values.items()):
                    hists.add_metric([m["module"], m["name"], stat], value)
        yield from (f for f in (gauges, counters, hists) if f.samples)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def content_type() -> str:
    """The Content-Type of :func:`prometheus_text`'s output (prometheus-client's ``CONTENT_TYPE_LATEST``)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return CONTENT_TYPE_LATEST


def prometheus_text(stats: CallStats | None = None) -> bytes:
    """The Prometheus text exposition of ``stats`` (default: this process's :data:`CALL_STATS`)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(CallStatsCollector(stats if stats is not None else CALL_STATS))
    return generate_latest(registry)
