"""Gauge, Counter and the bounded Histogram."""

from __future__ import annotations

import math
import random
import sys

import pytest

from cmmetrics import Counter, Gauge, Histogram, MetricsRegistry
from cmmetrics.sketch import LogSketch


def _exact_quantile(sorted_values: list[float], q: float) -> float:
    # Nearest rank, the definition the sketch estimates.
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def test_histogram_stays_bounded_after_a_million_observations():
    hist = Histogram("latency", registry=None)
    rng = random.Random(7)
    values = [rng.lognormvariate(3.0, 1.5) for _ in range(1_000_000)]
    for v in values:
        hist.observe(v)
    sketch = hist.sketch
    assert sketch.bucket_count <= sketch.max_buckets
    assert len(sketch._positive) == sketch.bucket_count  # only positive values: one store, no zero bucket
    assert sys.getsizeof(sketch._positive) < 100_000  # a dict of at most max_buckets ints, not of 10**6 values
    snap = hist.values()
    assert snap["count"] == 1_000_000
    assert snap["sum"] == pytest.approx(math.fsum(values), rel=1e-9)
    assert snap["min"] == min(values) and snap["max"] == max(values)
    values.sort()
    for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        exact = _exact_quantile(values, q)
        assert snap[key] == pytest.approx(exact, rel=sketch.relative_accuracy * 1.01), key


def test_bucket_limit_merges_the_smallest_magnitudes_first():
    sketch = LogSketch(relative_accuracy=0.01, max_buckets=64)
    values = [10.0**e for e in range(-30, 31)] * 3 + [1000.0 + i for i in range(500)]
    for v in values:
        sketch.add(v)
    assert sketch.bucket_count <= 64
    assert sketch.count == len(values)
    values.sort()
    # The top of the distribution keeps its 1 % accuracy; only tiny magnitudes were merged.
    assert sketch.quantile(0.99) == pytest.approx(_exact_quantile(values, 0.99), rel=0.0101)
    assert sketch.quantile(0.0) == values[0]  # clamped to the true minimum


def test_negative_and_zero_values():
    sketch = LogSketch()
    for v in (-100.0, -1.0, 0.0, 0.0, 1.0, 100.0):
        sketch.add(v)
    assert sketch.quantile(0.0) == -100.0
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == 100.0
    assert sketch.quantile(0.2) == pytest.approx(-1.0, rel=0.0101)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad):
    with pytest.raises(ValueError, match="only finite numbers"):
        LogSketch().add(bad)


def test_empty_histogram_snapshot():
    assert Histogram("empty", registry=None).values() == {
        "count": 0,
        "sum": 0.0,
        "min": None,
        "max": None,
        "mean": None,
        "p50": None,
        "p95": None,
        "p99": None,
    }


def test_counter_counts_and_refuses_to_decrease():
    counter = Counter("requests", registry=None)
    counter.inc()
    counter.inc(4)
    assert counter.values() == {"count": 5}
    with pytest.raises(ValueError, match="counter 'requests' can only increase"):
        counter.inc(-1)


def test_gauge_reads_update_func_or_set_value():
    assert Gauge("cpu", update_func=lambda: 50.0, registry=None).values() == {"value": 50.0}
    gauge = Gauge("queue", registry=None)
    gauge.set(3)
    assert gauge.metric_arg().values() == {"value": 3}


def test_constructors_register_and_replace_by_name():
    registry = MetricsRegistry()
    Gauge("g", update_func=lambda: 1, registry=registry)
    Gauge("g", update_func=lambda: 2, registry=registry)  # an endpoint calling Gauge(...) on every call
    (only,) = registry.metrics()
    assert only.value == 2


def test_get_or_create_keeps_counts_and_checks_types():
    registry = MetricsRegistry()
    registry.counter("hits").inc()
    registry.counter("hits").inc()
    assert registry.counter("hits").count == 2
    with pytest.raises(TypeError, match="metric 'hits' is already registered as a counter, not a histogram"):
        registry.histogram("hits")


def test_metric_names_must_be_strings():
    with pytest.raises(ValueError, match="non-empty string"):
        Counter("", registry=None)


def test_nearest_rank_on_small_samples():
    sketch = LogSketch()
    for v in range(1, 101):
        sketch.add(float(v))
    assert sketch.quantile(0.95) == pytest.approx(95.0, rel=0.0101)
    assert sketch.quantile(0.5) == pytest.approx(50.0, rel=0.0101)
