"""A histogram sketch with bounded memory: logarithmic buckets with a fixed relative accuracy.

The value range is cut into buckets ``(gamma**(k-1), gamma**k]`` with ``gamma = (1 + a) / (1 - a)``, so every
quantile estimate is within the relative accuracy ``a`` of a value actually observed (the DDSketch idea). A
bucket is a dict entry ``key -> count``; when there are more than ``max_buckets`` keys for one sign, the buckets
nearest zero are merged into their neighbour, so memory never grows past ``2 * max_buckets + 1`` counters,
whatever the number of observations. Merging only coarsens the smallest magnitudes, which matters least for
latency percentiles.
"""

from __future__ import annotations

import math
import threading
from typing import Any

DEFAULT_RELATIVE_ACCURACY = 0.01
DEFAULT_MAX_BUCKETS = 1024


class LogSketch:
    """Count, sum, min, max and quantile estimates of a stream of numbers, in bounded memory. Thread-safe."""

    def __init__(
        self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY, max_buckets: int = DEFAULT_MAX_BUCKETS
    ) -> None:
        if not 0 < relative_accuracy < 1:
            raise ValueError(f"relative_accuracy must be between 0 and 1 (exclusive), got {relative_accuracy!r}")
        if max_buckets < 2:
            raise ValueError(f"max_buckets must be at least 2, got {max_buckets!r}")
        self.relative_accuracy = relative_accuracy
        self.max_buckets = max_buckets
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._inv_log_gamma = 1.0 / math.log(self._gamma)
        self._lock = threading.Lock()
        self._positive: dict[int, int] = {}
        self._negative: dict[int, int] = {}  # keyed by the magnitude's bucket
        self._zero = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Record one observation (a finite number)."""
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"cannot observe {value!r}: only finite numbers can be recorded")
        with self._lock:
            self.count += 1
            self.sum += v
            if v < self.min:
                self.min = v
            if v > self.max:
                self.max = v
            if v > 0:
                store = self._positive
            elif v < 0:
                store = self._negative
                v = -v
            else:
                self._zero += 1
                return
            key = math.ceil(math.log(v) * self._inv_log_gamma)
            store[key] = store.get(key, 0) + 1
            if len(store) > self.max_buckets:
                self._collapse(store)

    @staticmethod
    def _collapse(store: dict[int, int]) -> None:
        # Merge the bucket nearest zero into the next one: magnitudes near zero lose precision first.
        lowest = min(store)
        moved = store.pop(lowest)
        nxt = min(store)
        store[nxt] += moved

    @property
    def bucket_count(self) -> int:
        """How many counters the sketch holds right now (its memory, in buckets)."""
        return len(self._positive) + len(self._negative) + (1 if self._zero else 0)

    def _value_of(self, key: int) -> float:
        # The point of bucket (gamma**(k-1), gamma**k] with the smallest relative error to both ends.
        return 2 * self._gamma**key / (self._gamma + 1)

    def quantile(self, q: float) -> float | None:
        """Estimate of the ``q`` quantile (0 <= q <= 1); ``None`` before the first observation."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be between 0 and 1, got {q!r}")
        with self._lock:
            return self._quantile(q)

    def _quantile(self, q: float) -> float | None:
        if self.count == 0:
            return None
        if q == 0:
            return self.min  # the extremes are tracked exactly
        if q == 1:
            return self.max
        # Nearest rank: the smallest value with at least q * count observations at or below it.
        rank = max(1, math.ceil(round(q * self.count, 9)))  # round: 0.95 * 100 is 95.00000000000001
        seen = 0
        estimate = self.max
        for key in sorted(self._negative, reverse=True):  # most negative first
            seen += self._negative[key]
            if seen >= rank:
                estimate = -self._value_of(key)
                break
        else:
            seen += self._zero
            if seen >= rank:
                estimate = 0.0
            else:
                for key in sorted(self._positive):
                    seen += self._positive[key]
                    if seen >= rank:
                        estimate = self._value_of(key)
                        break
        # An estimate never leaves the observed range.
        return min(max(estimate, self.min), self.max)

    def snapshot(self) -> dict[str, Any]:
        """``count, sum, min, max, mean, p50, p95, p99`` (``None`` where nothing was observed yet)."""
        with self._lock:
            count = self.count
            return {
                "count": count,
                "sum": self.sum,
                "min": self.min if count else None,
                "max": self.max if count else None,
                "mean": self.sum / count if count else None,
                "p50": self._quantile(0.5),
                "p95": self._quantile(0.95),
                "p99": self._quantile(0.99),
            }
