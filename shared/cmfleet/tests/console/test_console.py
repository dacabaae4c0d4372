"""The web console in a real headless chromium against a real ``cmfleet dev`` (official SDK replicas).

The tests share one page and one runtime (module fixtures) and pass in any order: each makes the calls whose jobs,
log lines and metrics it checks, and compares counts with the runtime's own job list; only ``cold`` (scaled to
zero) is called by one test alone, whose first call must be a cold start.
"""

from __future__ import annotations

import json
import os
import re

from console_support import SOURCE_SECRET, result_json, run_and_wait, select, wait_for
from playwright.sync_api import expect


def test_modules_show_replica_state_and_the_token_leaves_the_address_bar(console, dev_server):
    typed = console.locator('.module[data-module="typed"]')
    replica = typed.locator('tr.replica[data-replica="typed-1"]')
    expect(replica).to_contain_text("ready")
    expect(replica).to_contain_text("0/1")  # running/capacity
    expect(replica).to_contain_text("↻0")  # restarts
    expect(typed.locator(".badge.warm")).to_have_text("warm")
    for module in ("streaming", "observed"):
        expect(console.locator(f'.module[data-module="{module}"] tr.replica')).to_contain_text("ready")
    expect(console.locator('button.fn[data-module="streaming"][data-fn="count"]')).to_be_visible()
    assert "token" not in console.url
    html = console.content()
    assert dev_server.token not in html and SOURCE_SECRET not in html
    # without the token the gateway refuses the console and its API
    assert dev_server.client.get("/", headers={"Authorization": ""}).status_code == 401


def test_a_cold_module_runs_its_first_call_as_a_cold_start(console, dev_server):
    cold = console.locator('.module[data-module="cold"]')  # replicas 0:1, called by this test only
    expect(cold.locator(".badge.cold")).to_have_text("cold")
    expect(cold).to_contain_text("no replica running")
    expect(cold).to_contain_text("replicas 0–1")
    select(console, "cold", "add")
    expect(console.locator("#query-note")).to_contain_text("free-form")  # no replica has posted schemas yet
    rows = console.locator("#kv-rows .kv-row")
    rows.nth(0).locator(".kv-key").fill("x")
    rows.nth(0).locator(".kv-value").fill("10")
    console.click("#add-field")
    rows.nth(1).locator(".kv-key").fill("y")
    rows.nth(1).locator(".kv-value").fill("20")
    job_id = run_and_wait(console)
    assert result_json(console) == 30
    expect(console.locator("#job-state")).to_have_text("succeeded")
    expect(console.locator("#job-replica")).to_have_text("cold-1")
    expect(console.locator("#job-cold")).to_contain_text("yes")
    expect(console.locator("#job-duration")).to_have_text(re.compile(r"^\d+(\.\d+)? ms$"))
    record = dev_server.client.get(f"/api/jobs/{job_id}").json()
    assert record["replica"] == "cold-1" and record["state"] == "succeeded" and record["cold_start"] is True
    assert console.locator("#job-duration").inner_text() == f"{record['duration_ms']} ms"
    # the module is warm now, its replica listed
    expect(cold.locator(".badge.warm")).to_have_text("warm")
    expect(cold.locator('tr.replica[data-replica="cold-1"]')).to_contain_text("ready")
    # the next call finds the replica running
    run_and_wait(console)
    expect(console.locator("#job-cold")).to_have_text("no")


def test_raw_json_editor_and_form_stay_in_step(console):
    select(console, "hello", "add")
    expect(console.locator("#query-note")).to_contain_text("Untyped event")  # hello's replica posted its schemas
    console.locator("#kv-rows .kv-key").first.fill("x")
    console.locator("#kv-rows .kv-value").first.fill("1.5")
    console.click("#tab-json")
    assert json.loads(console.locator("#raw-json").input_value()) == {"x": 1.5}
    console.fill("#raw-json", '{"x": 1.5, "y": 2}')
    run_and_wait(console)
    assert result_json(console) == 3.5
    console.click("#tab-form")  # the JSON's fields come back as form rows
    expect(console.locator("#kv-rows .kv-key")).to_have_count(2)
    assert console.locator("#kv-rows .kv-value").nth(1).input_value() == "2"


def test_typed_form_has_date_fields_and_marks_optional_ones(console):
    select(console, "typed", "summarize_order")
    assert console.locator("#f-delivery").get_attribute("type") == "date"
    assert console.locator("#f-placed_at").get_attribute("type") == "datetime-local"
    assert console.locator("#f-quantities").evaluate("e => e.tagName") == "TEXTAREA"  # arrays as JSON text
    expect(console.locator('.field[data-path="$.note"] .opt')).to_have_text("optional")
    expect(console.locator('.field[data-path="$.order_id"] .req')).to_have_text("*")
    console.fill("#f-order_id", "o-7")
    console.fill("#f-placed_at", "2026-03-01T09:30:00")
    console.fill("#f-delivery", "2026-03-04")
    console.fill("#f-unit_price", "2.50")
    console.fill("#f-quantities", "[1, 3]")
    console.fill("#f-tags", '{"rush": "yes"}')
    run_and_wait(console)
    result = result_json(console)
    assert result["total_units"] == 4 and result["total_price"] == 10.0
    assert result["delivery_weekday"] == "Wednesday" and result["days_to_delivery"] == 3
    assert result.get("note") is None  # the optional note was left empty, so omitted

    select(console, "typed", "next_day")
    console.fill("#f-sensor", "s1")
    console.fill("#f-taken_on", "2026-02-28")
    console.fill("#f-values", "[1.5, 2.5]")  # threshold left empty: required but nullable, sent as null
    run_and_wait(console)
    # the SDK posts a date result as bare text (not a JSON string): the console shows the body as it came
    assert console.locator("#result-body").inner_text() == "2026-03-01"


def test_schema_errors_show_next_to_their_fields(console):
    select(console, "typed", "next_day")
    console.fill("#f-sensor", "s1")
    console.fill("#f-values", '["high"]')  # taken_on left empty
    console.click("#run")
    taken_on = console.locator('.field[data-path="$.taken_on"]')
    expect(taken_on.locator(".field-error")).to_contain_text("'taken_on' is a required property")
    expect(taken_on).to_have_class(re.compile(r"\binvalid\b"))
    values = console.locator('.field[data-path="$.values"] .field-error')
    expect(values).to_contain_text("'high' is not of type 'number'")
    expect(console.locator("#errors")).to_contain_text("does not match the schema (2 problems)")
    # every problem sits next to its field: nothing listed under the message (once rendered as "null")
    expect(console.locator("#errors")).to_have_text("The event does not match the schema (2 problems).")
    expect(console.locator('.field[data-path="$.sensor"] .field-error')).to_have_text("")
    # a field that is not valid JSON is caught before the call
    console.fill("#f-values", "[1,")
    console.click("#run")
    expect(console.locator('.field[data-path="$.values"] .field-error')).to_contain_text("not valid JSON")


def test_streaming_function_shows_its_items(console, dev_server):
    select(console, "streaming", "count")
    console.fill("#f-start", "3")
    console.fill("#f-stop", "8")
    job_id = run_and_wait(console)
    assert result_json(console) == [3, 4, 5, 6, 7]
    expect(console.locator("#job-state")).to_have_text("succeeded")
    expect(console.locator("#job-replica")).to_have_text("streaming-1")
    assert dev_server.client.get(f"/api/jobs/{job_id}").json()["function"] == "count"


def test_a_job_shows_its_own_log_lines(console, dev_server):
    select(console, "observed", "record")
    # an optional boolean is a true/false/empty choice; a nested object is a JSON text field; both optional
    assert console.locator("#f-urgent").evaluate("e => e.tagName") == "SELECT"
    assert console.locator("#f-place").evaluate("e => e.tagName") == "TEXTAREA"
    expect(console.locator('.field[data-path="$.place"] .opt')).to_have_text("optional")
    console.fill("#f-sensor", "s1")
    console.fill("#f-value", "2.5")
    console.select_option("#f-urgent", "true")
    console.fill("#f-place", '{"site": "lab", "floor": 2}')
    job_id = run_and_wait(console)
    assert result_json(console) == {"value": 2.5, "urgent": True, "place": "lab/2"}
    # the SDK's logger wrote an SLS line with this job id; lines may reach the runtime just after the result
    line = console.locator("#job-logs .log-line").filter(has_text="recorded s1=2.5")
    expect(line).to_have_count(1)
    expect(line.locator(".job-link")).to_have_attribute("title", job_id)
    expect(line.locator(".src")).to_have_text("observed/observed-1")
    shown = console.locator("#job-logs .log-line .job-link").evaluate_all("links => links.map(a => a.title)")
    assert set(shown) == {job_id}  # only this job's lines


def test_streaming_items_appear_as_they_arrive(console):
    select(console, "observed", "drip")
    console.fill("#f-n", "2")
    console.fill("#f-delay", "1.5")
    console.click("#run")
    # the first item is on screen while the replica is still producing the second
    expect(console.locator("#run-status")).to_have_text(re.compile(r"^1 item so far"))
    assert json.loads(console.locator("#result-body").inner_text()) == [0]
    assert console.locator("#run").is_disabled()
    expect(console.locator("#run")).to_be_enabled()
    assert result_json(console) == [0, 1]
    expect(console.locator("#job-state")).to_have_text("succeeded")


def test_a_failing_function_shows_its_error_job_and_state(console):
    select(console, "typed", "check_reading")
    console.fill("#f-sensor", "s1")
    console.fill("#f-taken_on", "2026-02-28")
    console.fill("#f-values", "[]")  # the mean of nothing: ZeroDivisionError in the replica
    job_id = run_and_wait(console)
    # the error in cmfleet.errors' shape: type and message, where to look next, the module's own frames
    expect(console.locator("#errors")).to_contain_text("500: ZeroDivisionError: division by zero")
    expect(console.locator("#errors .hint")).to_contain_text(f"/api/logs?job={job_id}")
    result = console.locator("#result-body")
    expect(result).to_contain_text('File "app.py", line')
    for tool in ("compute_modules", "pluggy", "site-packages", "/cmfleet/"):
        expect(result).not_to_contain_text(tool)
    expect(console.locator("#job-state")).to_have_text("failed")
    expect(console.locator("#job-replica")).to_have_text("typed-1")
    expect(console.locator("#result-body")).to_have_class(re.compile(r"\berror\b"))
    expect(console.locator(f'#jobs tr[data-job="{job_id}"] .badge')).to_have_text("failed")


def test_recent_jobs_list_the_runs_and_open_one(console, dev_server):
    added = dev_server.client.post("/api/modules/hello/functions/add", json={"x": 10, "y": 20})
    counted = dev_server.client.post("/api/modules/streaming/functions/count", json={"start": 0, "stop": 2})
    assert added.status_code == 200 and counted.status_code == 200
    add_id, count_id = added.headers["X-Cmfleet-Job-Id"], counted.headers["X-Cmfleet-Job-Id"]
    row = console.locator(f'#jobs tr[data-job="{add_id}"]')
    expect(row).to_contain_text("hello.add")
    expect(row.locator(".badge")).to_have_text("succeeded")
    expect(console.locator(f'#jobs tr[data-job="{count_id}"]')).to_contain_text("streaming.count")
    row.click()
    expect(console.locator("#job-id")).to_have_text(add_id)
    expect(console.locator("#result-body")).to_have_text("30")


def test_live_log_stream_receives_lines_of_the_chosen_module(console, dev_server):
    console.select_option("#log-module", "observed")
    expect(console.locator("#log-status")).to_have_text("live")
    seen = dev_server.client.post("/api/modules/observed/functions/record", json={"sensor": "live", "value": 1})
    # the SDK logs the failure of this call in typed's replica: a line the filtered view must not show
    other = dev_server.client.post(
        "/api/modules/typed/functions/check_reading",
        json={"sensor": "s", "taken_on": "2026-01-01", "values": [], "threshold": None},
    )
    assert seen.status_code == 200 and other.status_code == 500
    line = console.locator("#live-logs .log-line").filter(has_text="recorded live=1.0")
    expect(line.locator(".job-link")).to_have_attribute("title", seen.headers["X-Cmfleet-Job-Id"])
    other_id = other.headers["X-Cmfleet-Job-Id"]
    other_lines = wait_for(
        lambda: dev_server.client.get("/api/logs", params={"job": other_id}).json(), what="typed's error line"
    )
    expect(console.locator(f'#live-logs .job-link[title="{other_id}"]')).to_have_count(0)
    sources = set(console.locator("#live-logs .src").all_inner_texts())
    assert sources and all(src.startswith("observed/") for src in sources)
    console.select_option("#log-module", "")  # all modules again: typed's lines are in the backlog
    expect(console.locator(f'#live-logs .job-link[title="{other_id}"]')).to_have_count(len(other_lines))


def make_metric_calls(dev_server, reading: float) -> list[dict]:
    """A succeeded hello.add, two failed typed.check_reading and an observed.record of ``reading`` (the newest
    lastReading once its metric line arrived); returns the runtime's job list after them."""
    client = dev_server.client
    assert client.post("/api/modules/hello/functions/add", json={"x": 1, "y": 2}).status_code == 200
    for _ in range(2):
        event = {"sensor": "s", "taken_on": "2026-01-01", "values": [], "threshold": None}  # ZeroDivisionError
        assert client.post("/api/modules/typed/functions/check_reading", json=event).status_code == 500
    assert client.post("/api/modules/observed/functions/record", json={"sensor": "m", "value": reading}).is_success

    def latest_reading() -> bool:
        custom = client.get("/console/api/metrics").json()["custom"]
        return any(c["name"] == "lastReading" and c["values"].get("value") == reading for c in custom)

    wait_for(latest_reading, what=f"the lastReading={reading} metric line")
    return client.get("/api/jobs", params={"limit": 1000}).json()


def test_metrics_panel_shows_calls_errors_and_percentiles(console, dev_server):
    jobs = make_metric_calls(dev_server, 17.0)
    adds = sum(1 for j in jobs if j["module"] == "hello" and j["function"] == "add")
    row = console.locator('#metrics tr.metric-function[data-module="hello"][data-fn="add"]')
    expect(row.locator(".calls")).to_have_text(str(adds))
    expect(row.locator(".err-count")).to_have_text("0")
    p50, p95 = (float(c) for c in row.locator("td.num").all_inner_texts()[2:4])
    assert 0 < p50 <= p95
    hello_calls = sum(1 for j in jobs if j["module"] == "hello")
    expect(console.locator('#metrics tr.metric-module[data-module="hello"] .calls')).to_have_text(str(hello_calls))
    failing = console.locator('#metrics tr.metric-function[data-module="typed"][data-fn="check_reading"]')
    failed = sum(1 for j in jobs if j["function"] == "check_reading" and j["state"] == "failed")
    assert failed >= 2  # this test's calls, and any other test's
    expect(failing.locator(".err-count")).to_have_text(str(failed))
    expect(failing.locator(".err-count")).to_have_class(re.compile(r"\bbad\b"))
    gauge = console.locator('#custom-metrics tr[data-module="observed"][data-metric="lastReading"]')
    expect(gauge).to_contain_text("value=17")  # the latest line: this test's reading


def test_prometheus_metrics_count_every_call_per_function(dev_server):
    from prometheus_client.parser import text_string_to_metric_families

    assert dev_server.client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    jobs = make_metric_calls(dev_server, 23.0)
    resp = dev_server.client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    calls = {(s.labels["module"], s.labels["function"]): s.value for s in families["cmfleet_calls"].samples}
    expected: dict[tuple[str, str], int] = {}
    for job in jobs:
        expected[(job["module"], job["function"])] = expected.get((job["module"], job["function"]), 0) + 1
    assert calls == expected
    # per module: another module has an "add" too (cold's, called by another test in any order)
    states = {
        tuple(s.labels[k] for k in ("module", "function", "state")): s.value for s in families["cmfleet_jobs"].samples
    }
    failed = sum(1 for j in jobs if (j["module"], j["function"], j["state"]) == ("typed", "check_reading", "failed"))
    added = sum(1 for j in jobs if (j["module"], j["function"], j["state"]) == ("hello", "add", "succeeded"))
    assert failed >= 2 and states[("typed", "check_reading", "failed")] == failed
    assert states[("hello", "add", "succeeded")] == added
    errors = {(s.labels["module"], s.labels["function"]): s.value for s in families["cmfleet_call_errors"].samples}
    assert errors[("typed", "check_reading")] == failed and errors[("hello", "add")] == 0
    quantiles = {
        s.labels["quantile"]
        for s in families["cmfleet_call_duration_seconds"].samples
        if s.labels.get("function") == "add" and "quantile" in s.labels
    }
    assert quantiles == {"0.5", "0.95"}
    replicas = {(s.labels["module"], s.labels["state"]): s.value for s in families["cmfleet_replicas"].samples}
    assert replicas[("hello", "ready")] == 1
    custom = {(s.labels["metric"], s.labels["stat"]): s.value for s in families["cmfleet_module_metric"].samples}
    assert custom == {("lastReading", "value"): 23.0}


def test_the_page_loads_nothing_from_elsewhere_and_raises_no_script_error(console, dev_server):
    console.reload()
    expect(console.locator('.module[data-module="hello"] tr.replica')).to_contain_text("ready")
    select(console, "observed", "record")
    console.fill("#f-sensor", "s2")
    console.fill("#f-value", "4")
    run_and_wait(console)
    expect(console.locator("#job-logs .log-line").filter(has_text="recorded s2=4.0")).to_have_count(1)
    assert console.requested and all(url.startswith(dev_server.url + "/") for url in console.requested)
    assert console.js_errors == []
    shot = os.environ.get("CMFLEET_CONSOLE_SCREENSHOT")  # a picture of the console for a human to look at
    if shot:
        console.screenshot(path=shot, full_page=True)
