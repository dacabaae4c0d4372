"""The console's metrics without a runtime: job records in, console JSON and Prometheus text out."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cmfleet.runtime.console.metrics import MAX_CUSTOM, WINDOW, RuntimeMetrics, nearest_rank, prometheus_text
from cmfleet.runtime.scheduler import FAILED, SUCCEEDED, TIMED_OUT, Job, ModuleQueue, Replica

# A metric line as cmmetrics' SlsFormatter writes it (see cmmetrics/formatter.py), secret in a tag.
METRIC_LINE = json.dumps(
    {
        "type": "metric.1",
        "level": "INFO",
        "time": "2026-11-29T01:25:22.311403+00:00",
        "origin": "python:myservice",
        "thread": "MainThread",
        "params": {"process_id": "-1", "job_id": "", "session_id": "sess-123"},
        "message": "myHistogram",
        "metricName": "myHistogram",
        "metricType": "histogram",
        "values": {"count": 100, "max": 10, "label": "not a number"},
        "tags": {"key": "hunter2-secret"},
        "safe": True,
    }
).encode()


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def finished(loop, module: str, function: str, state: str, duration_ms: float, cold: bool = False) -> Job:
    job = Job(module, function, b"{}", loop)
    job.state, job.duration_ms, job.cold_start = state, duration_ms, cold
    return job


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 0.5) == 50.0
    assert nearest_rank(values, 0.95) == 95.0
    assert nearest_rank([7.0], 0.95) == 7.0
    assert nearest_rank([], 0.5) is None


def test_calls_errors_and_percentiles_per_function_and_module(loop):
    metrics = RuntimeMetrics()
    for ms in range(1, 21):
        metrics.observe_job(finished(loop, "hello", "add", SUCCEEDED, float(ms), cold=ms == 1))
    metrics.observe_job(finished(loop, "hello", "hello", FAILED, 100.0))
    metrics.observe_job(finished(loop, "hello", "hello", TIMED_OUT, 200.0))
    snap = metrics.snapshot(["hello", "idle"])
    hello, idle = snap["modules"]
    add, greet = hello["functions"]
    assert (add["function"], add["calls"], add["errors"], add["cold_starts"]) == ("add", 20, 0, 1)
    assert (add["p50_ms"], add["p95_ms"]) == (10.0, 19.0)
    assert (greet["calls"], greet["errors"], greet["states"]) == (2, 2, {"failed": 1, "timed_out": 1})
    assert (hello["calls"], hello["errors"], hello["p95_ms"]) == (22, 2, 100.0)  # rank ceil(0.95 * 22) = 21
    # a module without calls is listed, with no percentiles
    assert (idle["module"], idle["calls"], idle["p50_ms"], idle["functions"]) == ("idle", 0, None, [])


def test_percentiles_cover_a_bounded_window_of_recent_calls(loop):
    metrics = RuntimeMetrics()
    total = WINDOW * 4
    for ms in range(1, total + 1):
        metrics.observe_job(finished(loop, "m", "f", SUCCEEDED, float(ms)))
    series = metrics.functions[("m", "f")]
    assert len(series.recent) == WINDOW and series.calls == total
    oldest_kept = total - WINDOW + 1
    assert series.summary()["p50_ms"] == oldest_kept + WINDOW // 2 - 1
    assert series.summary()["mean_ms"] == (total + 1) / 2  # the mean covers every call


def test_metric_lines_are_kept_redacted_and_bounded():
    metrics = RuntimeMetrics(redact=lambda text: text.replace("hunter2-secret", "***"))
    assert metrics.observe_line("svc", b'{"type": "service.1", "message": "hello"}') is False
    assert metrics.observe_line("svc", b'not json "metric.1"') is False
    assert metrics.observe_line("svc", b'{"type": "metric.1", "values": {}}') is False  # no metric name
    assert metrics.observe_line("svc", METRIC_LINE) is True
    (custom,) = metrics.snapshot()["custom"]
    assert custom["module"] == "svc" and custom["name"] == "myHistogram" and custom["type"] == "histogram"
    assert custom["values"]["count"] == 100 and custom["tags"] == {"key": "***"}
    for i in range(MAX_CUSTOM + 50):
        metrics.observe_line("svc", METRIC_LINE.replace(b'"myHistogram"', f'"m{i}"'.encode()))
    assert len(metrics.custom) == MAX_CUSTOM
    # a name already known is still updated when the table is full
    assert metrics.observe_line("svc", METRIC_LINE) is True


def test_prometheus_text_parses_with_calls_durations_state_and_custom_metrics(loop):
    metrics = RuntimeMetrics()
    for ms in (10.0, 20.0, 30.0):
        metrics.observe_job(finished(loop, "hello", "add", SUCCEEDED, ms))
    metrics.observe_job(finished(loop, "hello", "add", FAILED, 5.0))
    metrics.observe_line("svc", METRIC_LINE)
    queue = ModuleQueue("hello", queue_limit=10, timeout=5.0)
    queue.replicas = [Replica("hello-1", "hello", 2, state="ready"), Replica("hello-2", "hello", 2, state="starting")]
    queue.replicas.append(Replica("hello-manual", "hello", 1, external=True, state="stopped"))  # not counted
    runtime = SimpleNamespace(manager=SimpleNamespace(modules={"hello": SimpleNamespace(queue=queue)}))

    body, content_type = prometheus_text(metrics, runtime)
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    label = {"module": "hello", "function": "add"}
    assert [(s.labels, s.value) for s in families["cmfleet_calls"].samples] == [(label, 4.0)]
    assert [s.value for s in families["cmfleet_call_errors"].samples] == [1.0]
    durations = {(s.name, s.labels.get("quantile")): s.value for s in families["cmfleet_call_duration_seconds"].samples}
    assert durations[("cmfleet_call_duration_seconds", "0.5")] == 0.01
    assert durations[("cmfleet_call_duration_seconds", "0.95")] == 0.03
    assert durations[("cmfleet_call_duration_seconds_count", None)] == 4
    assert durations[("cmfleet_call_duration_seconds_sum", None)] == pytest.approx(0.065)
    replicas = {s.labels["state"]: s.value for s in families["cmfleet_replicas"].samples}
    assert replicas == {"ready": 1.0, "starting": 1.0}
    custom = {s.labels["stat"]: s.value for s in families["cmfleet_module_metric"].samples}
    assert custom == {"count": 100.0, "max": 10.0}  # the non-numeric value is left out

    body, content_type = prometheus_text(metrics, runtime, accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text") and body.rstrip().endswith(b"# EOF")
