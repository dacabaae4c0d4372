"""Fixtures of cmmetrics' tests: captured SLS lines, and logging/registry state restored after each test."""

from __future__ import annotations

import io
import logging
import sys
import uuid

import pytest
from slslines import CONTEXT_KEYS, LINE_KEYS, METRIC_KEYS, REPO, assert_documented_shape, parse_lines  # noqa: F401

from cmmetrics import METRICS_REGISTRY, SlsFormatter
from cmmetrics.calls import CALL_STATS, install_call_log, reset_call_log


class Capture:
    """A private logger whose SLS lines are kept in memory."""

    def __init__(self, origin_prefix: str | None = "python:test") -> None:
        self.buffer = io.StringIO()
        self.logger = logging.getLogger(f"cmmetrics-test.{uuid.uuid4().hex}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        handler = logging.StreamHandler(self.buffer)
        handler.setFormatter(SlsFormatter(origin_prefix))
        self.logger.addHandler(handler)

    def lines(self) -> list[dict]:
        return parse_lines(self.buffer.getvalue())

    def metrics(self, name: str | None = None) -> list[dict]:
        return [e for e in self.lines() if e["type"] == "metric.1" and (name is None or e["metricName"] == name)]


@pytest.fixture
def capture() -> Capture:
    return Capture()


@pytest.fixture(autouse=True)
def restore_logging_and_registry():
    """install_metrics changes the root logger and the SDK's formatter; tests must not leak that."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    common = sys.modules.get("compute_modules.logging.common")
    sdk_formatter = common.LOG_FORMATTER if common else None
    yield
    METRICS_REGISTRY.stop()
    METRICS_REGISTRY.clear()
    root.handlers[:] = handlers
    root.setLevel(level)
    common = sys.modules.get("compute_modules.logging.common")
    if common is not None:
        common.LOG_FORMATTER = sdk_formatter
        for adapter in common.COMPUTE_MODULES_ADAPTER_MANAGER.adapters.values():
            for handler in adapter.logger.handlers:
                handler.setFormatter(sdk_formatter or common.SLS_FORMATTER)
    reset_call_log()


@pytest.fixture
def call_lines():
    """Per-call lines of the cmfleet plugin, captured in memory; call statistics start empty."""
    CALL_STATS.reset()
    buffer = io.StringIO()
    install_call_log(buffer)
    yield lambda: parse_lines(buffer.getvalue())
    CALL_STATS.reset()
