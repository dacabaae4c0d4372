"""The emission thread: its schedule on an injected clock (no sleeps), idempotence, and a clean stop at exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from slslines import assert_documented_shape, parse_lines

from cmmetrics import Counter, Gauge, ManualClock, MetricsRegistry


def test_emits_every_delay_on_a_fixed_schedule(capture):
    clock = ManualClock(start=1000.0)
    registry = MetricsRegistry(clock=clock)
    Gauge("processorUtilization", update_func=lambda: 50.0, registry=registry)
    counter = Counter("jobs", registry=registry)
    emitter = registry.emit_thread(delay_s=60.0, logger=capture.logger)
    try:
        assert clock.wait_for_waits(1) == 1060.0  # first emission one period after the start
        clock.advance(59.0)
        assert capture.lines() == []  # not due yet
        clock.advance(1.0)
        assert clock.wait_for_waits(2) == 1120.0
        first = capture.lines()
        assert [(e["metricName"], e["values"]) for e in first] == [
            ("processorUtilization", {"value": 50.0}),
            ("jobs", {"count": 0}),
        ]
        counter.inc(3)
        clock.advance(150.0)  # now 1210: the 1120 and 1180 slots were missed while suspended
        # One emission for the overdue slot, then the schedule goes on at 1240: no burst of catch-up lines.
        assert clock.wait_for_waits(3) == 1240.0
        assert [e["values"] for e in capture.metrics("jobs")] == [{"count": 0}, {"count": 3}]
    finally:
        registry.stop()
    assert not emitter.running
    assert emitter.emissions == 2
    for entry in capture.lines():
        assert_documented_shape(entry)
        assert entry["origin"] == "python:test"
        assert entry["thread"] == "cmmetrics-emitter"


def test_emit_thread_twice_keeps_one_thread_and_takes_the_new_delay(capture):
    clock = ManualClock()
    registry = MetricsRegistry(clock=clock)
    Gauge("g", update_func=lambda: 1.0, registry=registry)
    first = registry.emit_thread(delay_s=60.0, logger=capture.logger)
    try:
        assert registry.emit_thread(delay_s=10.0) is first
        clock.wait_for_waits(1)
        clock.advance(60.0)
        assert clock.wait_for_waits(2) == 70.0  # the next period is the new 10 s
    finally:
        registry.stop()
    assert not first.running


def test_stop_ends_a_pending_wait_at_once():
    clock = ManualClock()
    registry = MetricsRegistry(clock=clock)
    emitter = registry.emit_thread(delay_s=3600.0)
    clock.wait_for_waits(1)
    registry.stop()
    assert not emitter.running and emitter.emissions == 0
    assert registry.emitter is None


def test_a_failing_gauge_is_reported_and_the_others_still_emitted(capture):
    registry = MetricsRegistry()

    def broken() -> float:
        raise RuntimeError("sensor offline")

    Gauge("broken", update_func=broken, registry=registry)
    Gauge("fine", update_func=lambda: 2.0, registry=registry)
    assert registry.emit_all(capture.logger) == 1
    warning, fine = capture.lines()
    assert warning["level"] == "WARNING" and "sensor offline" in warning["message"]
    assert fine["metricName"] == "fine"


@pytest.mark.parametrize("delay", [0, -1, float("inf"), "60"])
def test_bad_delay_is_refused(delay):
    with pytest.raises(ValueError, match="must be a positive number of seconds"):
        MetricsRegistry().emit_thread(delay_s=delay)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )


def test_thread_stops_at_interpreter_exit_with_a_last_emission():
    """The hour-long wait does not keep the process alive; atexit stops the thread and emits once more."""
    proc = _python(
        """
        import atexit
        from cmmetrics import install_metrics, Gauge, METRICS_REGISTRY
        started = []
        # atexit runs hooks last-in first-out: registered before emit_thread, this one runs after cmmetrics' hook.
        atexit.register(lambda: print("thread alive after stop:", started[0].running))
        install_metrics(origin_prefix="python:exit")
        Gauge(name="lastWords", update_func=lambda: 7.0)
        started.append(METRICS_REGISTRY.emit_thread(delay_s=3600.0))
        print("started", started[0].running)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["started True", "thread alive after stop: False"]
    (line,) = parse_lines(proc.stderr)
    assert (line["metricName"], line["values"], line["origin"]) == ("lastWords", {"value": 7.0}, "python:exit")


def test_a_forked_child_starts_its_own_thread():
    proc = _python(
        """
        import os
        from cmmetrics import METRICS_REGISTRY
        METRICS_REGISTRY.emit_thread(delay_s=3600.0)
        pid = os.fork()
        if pid == 0:
            ok = METRICS_REGISTRY.emitter is None and METRICS_REGISTRY.emit_thread(delay_s=3600.0).running
            METRICS_REGISTRY.stop()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), "parent", METRICS_REGISTRY.emitter.running)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "child 0 parent True"
