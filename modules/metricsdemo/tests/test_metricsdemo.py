"""metricsdemo through cm_invoke: the emitted stderr lines are parsed and checked, timing on a manual clock."""

import json

import pytest

from cmmetrics import METRICS_REGISTRY, ManualClock, RealClock

LINE_KEYS = {"type", "level", "time", "origin", "thread", "params", "message", "safe"}
METRIC_KEYS = {"metricName", "metricType", "values", "tags"}


def metric_lines(stderr: str) -> list[dict]:
    """Every stderr line parsed as JSON; the metric lines, each checked for the documented keys."""
    entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    metrics = [e for e in entries if e["type"] == "metric.1"]
    for entry in metrics:
        assert LINE_KEYS | METRIC_KEYS <= set(entry), entry
        assert {"process_id", "job_id", "session_id"} <= set(entry["params"])
        assert entry["origin"] == "python:metricsdemo"
    return metrics


@pytest.fixture(autouse=True)
def fresh_registry():
    """The registry is process-wide: each test starts without metrics, thread, or fake clock."""
    yield
    METRICS_REGISTRY.stop()
    METRICS_REGISTRY.clear()
    METRICS_REGISTRY.clock = RealClock()


@pytest.mark.cm_in_process  # reads this process's stderr and metrics registry
def test_direct_emission(cm_invoke, capsys, monkeypatch):
    monkeypatch.setenv("COMPUTE_SESSION_ID", "replica-7")
    result = cm_invoke("metricsdemo", "direct_emission_of_metric", {}, jobId="job-direct")
    assert result == {"result": "metric log successfully emitted"}
    gauge, histogram = metric_lines(capsys.readouterr().err)
    assert (gauge["metricName"], gauge["metricType"], gauge["values"]) == ("myGauge", "gauge", {"value": 99.9})
    assert (histogram["metricName"], histogram["values"]) == ("myHistogram", {"count": 100, "max": 10})
    for line in (gauge, histogram):
        assert line["params"]["job_id"] == "job-direct" and line["params"]["session_id"] == "replica-7"


@pytest.mark.cm_in_process  # reads this process's stderr and metrics registry
def test_periodic_emission_thread(cm_invoke, capsys):
    clock = ManualClock()
    METRICS_REGISTRY.clock = clock
    result = cm_invoke("metricsdemo", "periodically_emission_of_metrics", {"delay_s": 5})
    assert result == {"result": "thread to start emitting metrics started"}
    assert clock.wait_for_waits(1) == 5.0
    assert metric_lines(capsys.readouterr().err) == []  # nothing before the first period
    clock.advance(5.0)
    assert clock.wait_for_waits(2) == 10.0
    clock.advance(5.0)
    assert clock.wait_for_waits(3) == 15.0
    lines = metric_lines(capsys.readouterr().err)
    assert [e["metricName"] for e in lines] == ["processorUtilization"] * 2
    for line in lines:
        assert line["thread"] == "cmmetrics-emitter" and line["params"]["job_id"] == ""  # not tied to a job
        assert isinstance(line["values"]["value"], float) and line["values"]["value"] >= 0
    # A second call keeps the one thread.
    emitter = METRICS_REGISTRY.emitter
    cm_invoke("metricsdemo", "periodically_emission_of_metrics", {})
    assert METRICS_REGISTRY.emitter is emitter and emitter.delay_s == 60.0
    METRICS_REGISTRY.stop()
    assert not emitter.running


@pytest.mark.cm_in_process  # reads this process's stderr and metrics registry
def test_record_latencies_accumulates(cm_invoke, capsys):
    first = cm_invoke("metricsdemo", "record_latencies", {"latency_ms": [10.0, 20.0, 30.0]})
    assert (first["count"], first["sum"], first["min"], first["max"]) == (3, 60.0, 10.0, 30.0)
    second = cm_invoke("metricsdemo", "record_latencies", {"latency_ms": [1000.0]})
    assert second["count"] == 4 and second["max"] == 1000.0
    assert second["p50"] == pytest.approx(20.0, rel=0.011)
    assert METRICS_REGISTRY.counter("requests").count == 4
    lines = metric_lines(capsys.readouterr().err)
    assert [(e["metricName"], e["values"]["count"]) for e in lines] == [
        ("requestLatencyMs", 3),
        ("requestLatencyMs", 4),
    ]


def test_empty_latencies_is_an_error_result(cm_module):
    outcome = cm_module("metricsdemo").invoke("record_latencies", {"latency_ms": []})
    assert not outcome.ok
    assert "latency_ms must list at least one value" in outcome.error_message
