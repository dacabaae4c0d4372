"""Helpers shared by cmmetrics' tests: parsing SLS lines and the documented line shape.

A module of its own (not conftest) so tests import it unambiguously when pytest collects every unit at once.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
#: Keys every line carries (plus "safe" or "unsafeParams"); metric lines add METRIC_KEYS.
LINE_KEYS = {"type", "level", "time", "origin", "thread", "params", "message"}
METRIC_KEYS = {"metricName", "metricType", "values", "tags"}
CONTEXT_KEYS = {"process_id", "job_id", "session_id"}


def parse_lines(text: str) -> list[dict]:
    """Every non-empty line as JSON (fails the test if one is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_documented_shape(entry: dict) -> None:
    """The keys the README documents, for a service or a metric line."""
    assert LINE_KEYS <= set(entry), entry
    assert ("safe" in entry) != ("unsafeParams" in entry), entry
    assert CONTEXT_KEYS <= set(entry["params"]), entry
    if entry["type"] == "metric.1":
        assert METRIC_KEYS <= set(entry), entry
        assert entry["metricType"] in ("gauge", "counter", "histogram")
    else:
        assert entry["type"] == "service.1"
