"""Structured logs and custom metrics with cmmetrics: the two metric endpoints of Foundry's template, and a third
that records a latency histogram and a request counter.

Every line goes to stderr as one JSON object (``service.1`` or ``metric.1``), with the job id and the replica's
session id, as Foundry's log collection expects.
"""

import logging
import os
from dataclasses import dataclass

from compute_modules.annotations import function

from cmmetrics import METRICS_REGISTRY, Gauge, MetricArg, install_metrics

install_metrics(origin_prefix="python:metricsdemo")
metrics_log = logging.getLogger("metrics")


def processor_utilization() -> float:
    """The one-minute load average as a percentage of this machine's CPUs."""
    return round(100.0 * os.getloadavg()[0] / (os.cpu_count() or 1), 2)


@dataclass
class EmissionRequest:
    delay_s: float | None = None


@function
def periodically_emission_of_metrics(context, event: EmissionRequest) -> dict[str, str]:
    """Start (once per replica process) the thread that emits every metric every ``delay_s`` (default 60) s."""
    Gauge(name="processorUtilization", update_func=processor_utilization)
    METRICS_REGISTRY.emit_thread(delay_s=event.delay_s or 60.0)
    return {"result": "thread to start emitting metrics started"}


@function
def direct_emission_of_metric(context, event) -> dict[str, str]:
    """Log a gauge and a histogram as metric lines, right now."""
    metrics_log.info(MetricArg("myGauge", 99.9))
    metrics_log.info(MetricArg("myHistogram", {"count": 100, "max": 10}, type="histogram"))
    return {"result": "metric log successfully emitted"}


@dataclass
class Latencies:
    latency_ms: list[float]


@function
def record_latencies(context, event: Latencies) -> dict[str, float]:
    """Add ``latency_ms`` to the replica's ``requestLatencyMs`` histogram; log and return its summary."""
    if not event.latency_ms:
        raise ValueError('latency_ms must list at least one value, e.g. {"latency_ms": [12.5, 40.1]}')
    histogram = METRICS_REGISTRY.histogram("requestLatencyMs")
    requests = METRICS_REGISTRY.counter("requests")
    for value in event.latency_ms:
        histogram.observe(value)
        requests.inc()
    metrics_log.info(histogram.metric_arg())
    return histogram.values()
