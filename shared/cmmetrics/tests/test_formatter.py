"""Every line is one JSON object in the SDK's SlsFormatter shape; metric lines; unsafe params; log context."""

from __future__ import annotations

import io
import logging
import threading

import pytest
from compute_modules.logging import get_logger
from compute_modules.logging.common import COMPUTE_MODULES_ADAPTER_MANAGER
from compute_modules.logging.common import SlsFormatter as SdkSlsFormatter
from slslines import CONTEXT_KEYS, assert_documented_shape, parse_lines

from cmmetrics import MetricArg, SlsFormatter, install_metrics, job_context


def test_service_line_has_the_sdk_keys_and_values(capture, monkeypatch):
    monkeypatch.setenv("COMPUTE_SESSION_ID", "sess-123")
    capture.logger.info("hello %s", "world", extra={"params": {"n": 3}})
    (entry,) = capture.lines()
    assert_documented_shape(entry)
    assert entry["type"] == "service.1" and entry["level"] == "INFO" and entry["message"] == "hello world"
    assert entry["origin"].startswith("test_formatter.py:")
    assert entry["thread"] == threading.current_thread().name
    assert entry["params"]["n"] == 3 and entry["params"]["session_id"] == "sess-123"
    assert entry["safe"] is True


def test_same_keys_as_the_sdk_formatter():
    """Our line and the SDK's own SlsFormatter line for one record have the same keys and values (but time)."""
    record = logging.LogRecord("x", logging.WARNING, "/src/app.py", 7, "careful %d", (1,), None)
    record.params = {"process_id": "9", "job_id": "j", "session_id": "s"}
    ours = parse_lines(SlsFormatter().format(record))[0]
    sdk = parse_lines(SdkSlsFormatter().format(record))[0]
    assert set(ours) == set(sdk)
    assert {k: v for k, v in ours.items() if k != "time"} == {k: v for k, v in sdk.items() if k != "time"}


def test_metric_lines_for_each_type(capture):
    capture.logger.info(MetricArg("myGauge", 99.9))
    capture.logger.info(MetricArg("myCounter", 4, type="counter", tags={"zone": "a"}))
    capture.logger.info(MetricArg("myHistogram", {"count": 100, "max": 10}, type="histogram"))
    gauge, counter, histogram = capture.lines()
    for entry in (gauge, counter, histogram):
        assert_documented_shape(entry)
        assert entry["origin"] == "python:test"
    assert (gauge["metricName"], gauge["metricType"], gauge["values"]) == ("myGauge", "gauge", {"value": 99.9})
    assert counter["values"] == {"count": 4} and counter["tags"] == {"zone": "a"}
    assert histogram["values"] == {"count": 100, "max": 10} and histogram["metricType"] == "histogram"


def test_metric_arg_rejects_unknown_type():
    with pytest.raises(ValueError, match="unknown metric type 'summary': use one of gauge, counter, histogram"):
        MetricArg("x", 1, type="summary")


def test_unsafe_params_never_reach_params(capture):
    secret = "s3cr3t-token-value"
    capture.logger.info(
        "calling source",
        extra={"params": {"url": "https://api", "token": secret}, "unsafe_params": {"token": secret, "user": "bob"}},
    )
    capture.logger.info(MetricArg("m", 1), extra={"unsafeParams": {"apiKey": secret}})
    service, metric = capture.lines()
    for entry in (service, metric):
        assert_documented_shape(entry)
        assert "safe" not in entry
        assert secret not in str(entry["params"])
    assert service["params"]["url"] == "https://api" and "token" not in service["params"]
    assert service["unsafeParams"] == {"token": secret, "user": "bob"}
    assert metric["unsafeParams"] == {"apiKey": secret}


def test_sdk_logger_unsafe_params_stay_out_of_params(monkeypatch):
    """Through the SDK's own logger (its unsafe_params=), with install_metrics' formatter."""
    stream = io.StringIO()
    install_metrics(origin_prefix="python:svc", stream=stream)
    sdk_log = get_logger("cmmetrics-test-sdk")
    sdk_stream = io.StringIO()
    sdk_log.logger.handlers[0].setStream(sdk_stream)
    sdk_log.info("auth", params={"password": "hunter2", "ok": 1}, unsafe_params={"password": "hunter2"})
    sdk_log.info(MetricArg("viaSdk", 2, type="counter"))
    auth, metric = parse_lines(sdk_stream.getvalue())
    assert "password" not in auth["params"] and auth["params"]["ok"] == 1
    assert auth["unsafeParams"] == {"password": "hunter2"}
    assert metric["type"] == "metric.1" and metric["origin"] == "python:svc"
    assert stream.getvalue() == ""  # the root handler skips the SDK's loggers: no second copy of their lines


def test_job_id_from_the_sdk_log_context(capture):
    COMPUTE_MODULES_ADAPTER_MANAGER.update_process_id(4242)
    with job_context("job-77"):
        capture.logger.info(MetricArg("inJob", 1))
    capture.logger.info("after the job")
    inside, after = capture.lines()
    assert inside["params"]["job_id"] == "job-77" and inside["params"]["process_id"] == "4242"
    assert after["params"]["job_id"] == ""


def test_traceback_is_part_of_the_message(capture):
    try:
        raise ValueError("kaboom")
    except ValueError:
        capture.logger.exception("failed")
    (entry,) = capture.lines()
    assert entry["level"] == "ERROR"
    assert entry["message"].startswith("failed\nTraceback") and "ValueError: kaboom" in entry["message"]


def test_install_metrics_on_root_twice_gives_one_line_per_record(capsys):
    install_metrics(origin_prefix="python:a")
    install_metrics(origin_prefix="python:b")
    logging.getLogger("metrics").info(MetricArg("once", 1.0))
    logging.getLogger("metrics").debug("below INFO: dropped")
    lines = parse_lines(capsys.readouterr().err)
    ours = [e for e in lines if e.get("metricName") == "once"]
    assert len(ours) == 1 and ours[0]["origin"] == "python:b"
    assert CONTEXT_KEYS <= set(ours[0]["params"])
    assert not any(e.get("message") == "below INFO: dropped" for e in lines)


def test_install_metrics_rejects_a_bad_level():
    with pytest.raises(ValueError, match="not a logging level"):
        install_metrics(level="LOUD", stream=io.StringIO())
