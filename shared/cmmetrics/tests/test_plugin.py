"""The cmfleet plugin: every call of every module counted, timed and logged, through cmfleet's own registry."""

from __future__ import annotations

import json
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families
from slslines import REPO, assert_documented_shape, parse_lines

from cmfleet.discovery import Repository
from cmfleet.plugins import list_plugins, new_plugin_manager
from cmfleet.registry import load_registry
from cmmetrics.calls import CALL_STATS, CallStats, call_log_enabled, reset_call_log, snapshot
from cmmetrics.prometheus import content_type, prometheus_text


@pytest.fixture
def pm(monkeypatch):
    monkeypatch.delenv("CMFLEET_LOAD_PLUGINS", raising=False)
    return new_plugin_manager()


def test_plugin_is_loaded_from_the_entry_point(pm):
    (info,) = [p for p in list_plugins(pm) if p.name == "cmmetrics"]
    assert info.distribution == "cmmetrics"
    assert info.hooks == ["cmfleet_invoke", "cmfleet_replica_environment"]


def test_calls_and_errors_recorded_for_every_function(pm, call_lines):
    hello = load_registry(REPO / "modules" / "hello", pm=pm)
    assert hello.invoke("add", {"x": 1, "y": 2}, job_id="job-ok").value == 3
    assert hello.invoke("hello", {"name": "Ada"}).ok
    failed = hello.invoke("add", {"x": 1}, job_id="job-bad")
    assert not failed.ok and "KeyError" in failed.error_message
    stats = snapshot()["hello"]
    assert (stats["add"]["calls"], stats["add"]["errors"]) == (2, 1)
    assert (stats["hello"]["calls"], stats["hello"]["errors"]) == (1, 0)
    assert stats["add"]["p50_ms"] is not None and stats["add"]["p95_ms"] >= stats["add"]["p50_ms"] >= 0

    lines = call_lines()
    assert len(lines) == 3
    for line in lines:
        assert_documented_shape(line)
        assert line["params"]["event"] == "cmfleet.call" and line["params"]["module"] == "hello"
        assert isinstance(line["params"]["duration_ms"], float)
    ok, _, bad = lines
    assert (ok["params"]["function"], ok["params"]["job_id"], ok["params"]["outcome"]) == ("add", "job-ok", "ok")
    assert (bad["params"]["job_id"], bad["params"]["outcome"], bad["params"]["error"]) == (
        "job-bad",
        "error",
        "KeyError",
    )
    assert bad["message"].startswith("call hello.add error (KeyError) in ")
    app = (REPO / "modules" / "hello" / "app.py").read_text().splitlines()
    decorator = next(i for i, text in enumerate(app, 1) if text.startswith("def add")) - 1
    assert bad["origin"] == f"app.py:{decorator}"  # where hello's add is defined (its @function line)


def test_streaming_calls_end_when_the_stream_ends(pm, call_lines):
    streaming = load_registry(REPO / "modules" / "streaming", pm=pm)
    assert streaming.invoke("count", {"start": 0, "stop": 3}).value == [0, 1, 2]
    assert not streaming.invoke("words", {"text": 5}).ok  # fails while iterating, after the function returned
    stats = snapshot()["streaming"]
    assert (stats["count"]["calls"], stats["count"]["errors"]) == (1, 0)
    assert (stats["words"]["calls"], stats["words"]["errors"]) == (1, 1)
    assert [line["params"]["outcome"] for line in call_lines()] == ["ok", "error"]


def test_log_lines_inside_a_call_carry_its_job_id(pm, tmp_path, capture, call_lines):
    module = tmp_path / "logdemo"
    module.mkdir()
    (module / "app.py").write_text(
        textwrap.dedent(
            f"""
            import logging
            from compute_modules.annotations import function

            @function
            def work(context, event) -> str:
                logging.getLogger({capture.logger.name!r}).info("working on %s", event["n"])
                return "done"
            """
        ),
        encoding="utf-8",
    )
    registry = load_registry(module, pm=pm)
    assert registry.invoke("work", {"n": 4}, job_id="job-42").value == "done"
    (inside,) = capture.lines()
    assert inside["message"] == "working on 4" and inside["params"]["job_id"] == "job-42"
    (call,) = call_lines()
    assert call["params"]["job_id"] == "job-42" and call["params"]["module"] == "logdemo"


def test_runtime_rebuilds_the_stats_from_replica_lines(pm, call_lines):
    """What the local runtime does with replica stderr: the same numbers as the process that served the calls."""
    hello = load_registry(REPO / "modules" / "hello", pm=pm)
    for x in range(5):
        hello.invoke("add", {"x": x, "y": 1})
    hello.invoke("add", {})
    runtime = CallStats()
    stderr = [
        "not json at all",
        '{"type": "service.1", "message": "an ordinary line", "params": {}}',
        *(json.dumps(line) + "\n" for line in call_lines()),
        b'{"type": "metric.1", "metricName": "queueDepth", "metricType": "gauge", "values": {"value": 4}}',
    ]
    kinds = [runtime.observe_line(line, module="hello") for line in stderr]
    assert kinds == [None, None, *["call"] * 6, "metric"]
    ours, theirs = CALL_STATS.snapshot()["hello"]["add"], runtime.snapshot()["hello"]["add"]
    assert (theirs["calls"], theirs["errors"]) == (ours["calls"], ours["errors"]) == (6, 1)
    # Lines round durations to 1 µs (up to 0.5 µs off, which is over 3% of a 15 µs call), then both sides go through
    # the same sketch (relative error under 3%).
    assert abs(theirs["p95_ms"] - ours["p95_ms"]) <= 0.0005 + 0.03 * ours["p95_ms"]
    assert runtime.observe_entry({"params": {"event": "cmfleet.call", "function": "add"}}) is None  # no duration
    assert runtime.observe_entry(json.loads(json.dumps(call_lines()[0]))) == "call"
    assert runtime.snapshot()["hello"]["add"]["calls"] == 7
    assert runtime.custom_metrics() == [
        {"module": "hello", "name": "queueDepth", "type": "gauge", "values": {"value": 4}, "time": None}
    ]


def test_prometheus_exposition_parses():
    stats = CallStats()
    stats.record("hello", "add", 2.0, ok=True)
    stats.record("hello", "add", 4.0, ok=False)
    stats.observe_line(
        '{"type": "metric.1", "metricName": "lat", "metricType": "histogram", "values": {"count": 3, "max": 9}}',
        module="hello",
    )
    stats.observe_line('{"type": "metric.1", "metricName": "done", "metricType": "counter", "values": {"count": 2}}')
    families = {f.name: f for f in text_string_to_metric_families(prometheus_text(stats).decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    base = (("function", "add"), ("module", "hello"))
    assert samples[("cmfleet_calls_total", base)] == 2
    assert samples[("cmfleet_call_errors_total", base)] == 1
    assert samples[("cmfleet_call_duration_seconds_count", base)] == 2
    assert samples[("cmfleet_call_duration_seconds_sum", base)] == pytest.approx(0.006)
    assert samples[("cmfleet_call_duration_seconds", (*base, ("quantile", "0.95")))] == pytest.approx(0.004, rel=0.011)
    assert families["cmfleet_call_duration_seconds"].type == "summary"
    assert samples[("cmmetrics_histogram", (("metric", "lat"), ("module", "hello"), ("stat", "max")))] == 9
    assert samples[("cmmetrics_counter_total", (("metric", "done"), ("module", "")))] == 2
    assert content_type().startswith("text/plain; version=")


def test_replicas_get_the_call_log_switched_on(pm):
    unit = Repository.load(REPO).module("hello")
    environ = {"GET_JOB_URI": "https://localhost:8945/job"}
    pm.hook.cmfleet_replica_environment(module=unit, environ=environ)
    assert environ["CMMETRICS_CALL_LOG"] == "1"
    kept = {"CMMETRICS_CALL_LOG": "0"}
    pm.hook.cmfleet_replica_environment(module=unit, environ=kept)
    assert kept["CMMETRICS_CALL_LOG"] == "0"


@pytest.mark.parametrize(
    ("env", "enabled"),
    [({}, False), ({"GET_JOB_URI": "https://x/job"}, True), ({"CMMETRICS_CALL_LOG": "1"}, True),
     ({"GET_JOB_URI": "https://x/job", "CMMETRICS_CALL_LOG": "off"}, False)],
)  # fmt: skip
def test_call_log_switch(monkeypatch, env, enabled):
    for name in ("GET_JOB_URI", "CMMETRICS_CALL_LOG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert call_log_enabled() is enabled


def test_under_a_runtime_the_call_line_goes_to_stderr(pm, monkeypatch, capsys):
    monkeypatch.setenv("GET_JOB_URI", "https://localhost:8945/job")
    monkeypatch.delenv("CMMETRICS_CALL_LOG", raising=False)
    reset_call_log()
    load_registry(REPO / "modules" / "hello", pm=pm).invoke("add", {"x": 1, "y": 1}, job_id="job-stderr")
    (line,) = parse_lines(capsys.readouterr().err)
    assert (line["params"]["job_id"], line["params"]["outcome"]) == ("job-stderr", "ok")


def test_in_process_tools_stay_quiet_by_default(pm, monkeypatch, capsys):
    for name in ("GET_JOB_URI", "CMMETRICS_CALL_LOG"):
        monkeypatch.delenv(name, raising=False)
    reset_call_log()
    CALL_STATS.reset()
    assert load_registry(REPO / "modules" / "hello", pm=pm).invoke("add", {"x": 1, "y": 1}).ok
    assert capsys.readouterr().err == ""
    assert snapshot()["hello"]["add"]["calls"] == 1
