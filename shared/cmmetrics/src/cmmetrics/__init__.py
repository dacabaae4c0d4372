"""cmmetrics: structured logs and custom metrics for compute modules, in the shape Foundry reads.

The surface of Foundry's ``slslogging`` (usable with only the import line changed)::

    import logging
    from cmmetrics import install_metrics, MetricArg, Gauge, METRICS_REGISTRY

    install_metrics(origin_prefix="python:myservice")      # SLS JSON lines on stderr
    log = logging.getLogger("metrics")
    log.info(MetricArg("myGauge", 99.9))                   # one metric.1 line
    Gauge(name="processorUtilization", update_func=lambda: 50.0)
    METRICS_REGISTRY.emit_thread(delay_s=60.0)             # every metric, every minute, until exit

Line shapes: :mod:`cmmetrics.formatter`. Per-call statistics of every module (the cmfleet plugin):
:mod:`cmmetrics.calls`, :mod:`cmmetrics.prometheus`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names load on first use (PEP 562): cmfleet imports cmmetrics.cmfleet_plugin whenever it builds its plugin
# manager, and that must not pull logging/json into every `cmfleet --help`.
_EXPORTS = {
    "METRICS_REGISTRY": "cmmetrics.registry",
    "MetricsRegistry": "cmmetrics.registry",
    "Counter": "cmmetrics.metrics",
    "Gauge": "cmmetrics.metrics",
    "Histogram": "cmmetrics.metrics",
    "MetricArg": "cmmetrics.metrics",
    "ManualClock": "cmmetrics.clock",
    "RealClock": "cmmetrics.clock",
    "SlsFormatter": "cmmetrics.formatter",
    "install_metrics": "cmmetrics.formatter",
    "job_context": "cmmetrics.context",
    "runtime_params": "cmmetrics.context",
}
__all__ = [
    "METRICS_REGISTRY",
    "Counter",
    "Gauge",
    "Histogram",
    "ManualClock",
    "MetricArg",
    "MetricsRegistry",
    "RealClock",
    "SlsFormatter",
    "install_metrics",
    "job_context",
    "runtime_params",
]

if TYPE_CHECKING:
    from cmmetrics.clock import ManualClock, RealClock
    from cmmetrics.context import job_context, runtime_params
    from cmmetrics.formatter import SlsFormatter, install_metrics
    from cmmetrics.metrics import Counter, Gauge, Histogram, MetricArg
    from cmmetrics.registry import METRICS_REGISTRY, MetricsRegistry


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cmmetrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
