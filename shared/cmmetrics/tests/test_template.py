"""Foundry's template example runs with only its import line changed (slslogging -> cmmetrics)."""

from __future__ import annotations

import importlib.util
import logging

import pytest
from slslines import assert_documented_shape, parse_lines

from cmmetrics import METRICS_REGISTRY, ManualClock, RealClock

# The example of Foundry's compute-module template, verbatim (issue 6).
FOUNDRY_TEMPLATE = """\
import logging
from slslogging import install_metrics, MetricArg, Gauge, METRICS_REGISTRY
install_metrics(origin_prefix="python:myservice")
metrics_log = logging.getLogger("metrics")

def periodically_emission_of_metrics(context, event):
    Gauge(name="processorUtilization", update_func=lambda: 50.0)
    METRICS_REGISTRY.emit_thread(delay_s=60.0)
    return {'result': "thread to start emitting metrics started"}

def direct_emission_of_metric(context, event):
    log.info(MetricArg("myGauge", 99.9))
    log.info(MetricArg("myHistogram", {"count": 100, "max": 10}, type="histogram"))
    return {'result': "metric log successfully emitted"}
"""
ORIGINAL_IMPORT = "from slslogging import install_metrics, MetricArg, Gauge, METRICS_REGISTRY"
OUR_IMPORT = "from cmmetrics import install_metrics, MetricArg, Gauge, METRICS_REGISTRY"


@pytest.fixture
def template(tmp_path):
    """The template, with only its import line changed, imported as a module from a file."""
    source = FOUNDRY_TEMPLATE.replace(ORIGINAL_IMPORT, OUR_IMPORT)
    assert [a for a, b in zip(FOUNDRY_TEMPLATE.splitlines(), source.splitlines(), strict=True) if a != b] == [
        ORIGINAL_IMPORT
    ]
    path = tmp_path / "template_app.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("template_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_periodic_emission_endpoint(template, capsys):
    clock = ManualClock()
    METRICS_REGISTRY.clock = clock  # the template's own thread, on a clock the test moves
    try:
        result = template.periodically_emission_of_metrics({"jobId": "j-1"}, {})
        assert result == {"result": "thread to start emitting metrics started"}
        assert METRICS_REGISTRY.emitter.running and METRICS_REGISTRY.emitter.delay_s == 60.0
        assert clock.wait_for_waits(1) == 60.0
        clock.advance(60.0)
        clock.wait_for_waits(2)
    finally:
        METRICS_REGISTRY.stop()
        METRICS_REGISTRY.clock = RealClock()
    lines = parse_lines(capsys.readouterr().err)
    (gauge,) = [e for e in lines if e.get("metricName") == "processorUtilization"]
    assert_documented_shape(gauge)
    assert (gauge["type"], gauge["origin"], gauge["values"]) == ("metric.1", "python:myservice", {"value": 50.0})


def test_direct_emission_endpoint(template, capsys):
    # The template's snippet calls `log` but only defines `metrics_log`: verbatim, the function fails there.
    with pytest.raises(NameError, match="name 'log' is not defined"):
        template.direct_emission_of_metric({"jobId": "j-2"}, {})
    # Given the logger the full template file defines, it emits both metric lines.
    template.log = logging.getLogger("app")
    assert template.direct_emission_of_metric({"jobId": "j-2"}, {}) == {"result": "metric log successfully emitted"}
    lines = [e for e in parse_lines(capsys.readouterr().err) if e["type"] == "metric.1"]
    for entry in lines:
        assert_documented_shape(entry)
    assert [(e["metricName"], e["metricType"], e["values"]) for e in lines] == [
        ("myGauge", "gauge", {"value": 99.9}),
        ("myHistogram", "histogram", {"count": 100, "max": 10}),
    ]
