"""Metric values and metric objects: ``MetricArg`` for one logged value, ``Gauge``/``Counter``/``Histogram``
for metrics a registry emits periodically.

A metric object registers itself in a registry when it is created (``METRICS_REGISTRY`` unless ``registry=``
says otherwise; ``registry=None`` keeps it private), replacing an earlier metric of the same name: calling
``Gauge(name="x", update_func=f)`` from an endpoint every time it runs is safe. Use
``METRICS_REGISTRY.counter(name)`` / ``.histogram(name)`` to get-or-create a metric that must keep its counts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from cmmetrics.sketch import DEFAULT_MAX_BUCKETS, DEFAULT_RELATIVE_ACCURACY, LogSketch

if TYPE_CHECKING:
    from cmmetrics.registry import MetricsRegistry

MetricType = Literal["gauge", "counter", "histogram"]
METRIC_TYPES: tuple[str, ...] = ("gauge", "counter", "histogram")
_DEFAULT = object()  # "the default registry", distinct from None ("no registry")


def _check_type(type: str) -> str:
    if type not in METRIC_TYPES:
        raise ValueError(f"unknown metric type {type!r}: use one of {', '.join(METRIC_TYPES)}")
    return type


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a metric name must be a non-empty string, got {name!r}")
    return name


class MetricArg:
    """One metric value to log: ``log.info(MetricArg("myGauge", 99.9))`` writes a ``metric.1`` line.

    ``value`` is a number or a mapping of named numbers (e.g. a histogram's ``{"count": 100, "max": 10}``);
    a plain number becomes ``{"value": v}`` (``{"count": v}`` for a counter).
    """

    __slots__ = ("name", "value", "type", "tags")

    def __init__(
        self, name: str, value: Any, type: MetricType = "gauge", tags: Mapping[str, str] | None = None
    ) -> None:
        self.name = _check_name(name)
        self.value = value
        self.type = _check_type(type)
        self.tags = dict(tags or {})

    def values(self) -> dict[str, Any]:
        """The ``values`` object of the metric line."""
        if isinstance(self.value, Mapping):
            return dict(self.value)
        return {"count" if self.type == "counter" else "value": self.value}

    def __str__(self) -> str:
        # What a formatter that does not know MetricArg (e.g. the SDK's) prints as the message.
        return f"metric {self.name} {self.type} {self.values()}"

    def __repr__(self) -> str:
        return f"MetricArg({self.name!r}, {self.value!r}, type={self.type!r})"


class _Metric:
    metric_type: str = "gauge"

    def __init__(self, name: str, registry: Any = _DEFAULT, tags: Mapping[str, str] | None = None) -> None:
        self.name = _check_name(name)
        self.tags = dict(tags or {})
        if registry is _DEFAULT:
            from cmmetrics.registry import METRICS_REGISTRY

            registry = METRICS_REGISTRY
        if registry is not None:
            registry.register(self)

    def values(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def metric_arg(self) -> MetricArg:
        """The current value as a ``MetricArg``, ready to log."""
        return MetricArg(self.name, self.values(), type=self.metric_type, tags=self.tags)  # type: ignore[arg-type]


class Gauge(_Metric):
    """A value read when the metric is emitted: ``Gauge(name="cpu", update_func=lambda: 50.0)``, or ``set(v)``."""

    metric_type = "gauge"

    def __init__(
        self,
        name: str,
        update_func: Callable[[], float] | None = None,
        registry: MetricsRegistry | None | Any = _DEFAULT,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.update_func = update_func
        self._value: float | None = None
        super().__init__(name, registry, tags)

    def set(self, value: float) -> None:
        """Set the value reported when there is no ``update_func``."""
        self._value = value

    @property
    def value(self) -> float | None:
        """The current value: ``update_func()`` if given, else the last ``set``."""
        return self.update_func() if self.update_func is not None else self._value

    def values(self) -> dict[str, Any]:
        return {"value": self.value}


class Counter(_Metric):
    """A monotonically increasing count: ``Counter("requests").inc()``."""

    metric_type = "counter"

    def __init__(
        self, name: str, registry: MetricsRegistry | None | Any = _DEFAULT, tags: Mapping[str, str] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._count = 0
        super().__init__(name, registry, tags)

    def inc(self, amount: int | float = 1) -> None:
        """Add ``amount`` (>= 0)."""
        if amount < 0:
            raise ValueError(f"counter {self.name!r} can only increase; inc({amount!r}) is negative")
        with self._lock:
            self._count += amount

    @property
    def count(self) -> int | float:
        return self._count

    def values(self) -> dict[str, Any]:
        return {"count": self._count}


class Histogram(_Metric):
    """A distribution in bounded memory: count, sum, min, max, mean and p50/p95/p99 estimates.

    Backed by :class:`cmmetrics.sketch.LogSketch`: quantiles within ``relative_accuracy`` (1 %) of an observed
    value, at most ``2 * max_buckets + 1`` counters however many values are observed.
    """

    metric_type = "histogram"

    def __init__(
        self,
        name: str,
        registry: MetricsRegistry | None | Any = _DEFAULT,
        tags: Mapping[str, str] | None = None,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        self.sketch = LogSketch(relative_accuracy, max_buckets)
        super().__init__(name, registry, tags)

    def observe(self, value: float) -> None:
        """Record one value (a finite number)."""
        self.sketch.add(value)

    def quantile(self, q: float) -> float | None:
        """Estimate of the ``q`` quantile, ``None`` before the first observation."""
        return self.sketch.quantile(q)

    @property
    def count(self) -> int:
        return self.sketch.count

    def values(self) -> dict[str, Any]:
        return self.sketch.snapshot()
