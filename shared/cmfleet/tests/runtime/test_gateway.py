"""The gateway against real SDK replicas: calls, errors, validation, async jobs, streaming, listings, logs, sources."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import httpx
from runtime_support import wait_for


def test_sync_call_returns_the_result_with_job_headers(fleet_runtime):
    rt, client = fleet_runtime
    r = client.post("/api/modules/basic/functions/add", json={"x": 10, "y": 20})
    assert r.status_code == 200
    assert r.json() == 30
    job_id = r.headers["x-cmfleet-job-id"]
    assert r.headers["x-cmfleet-replica"] == "basic-1"
    assert r.headers["x-cmfleet-cold-start"] == "false"
    assert float(r.headers["x-cmfleet-duration-ms"]) > 0
    record = client.get(f"/api/jobs/{job_id}").json()
    assert record["state"] == "succeeded"
    assert record["replica"] == "basic-1"
    assert set(record) == {
        "id", "module", "function", "state", "replica", "cold_start", "submitted_at", "started_at",
        "finished_at", "duration_ms", "error",
    }  # fmt: skip


def test_typed_event_is_validated_against_the_posted_schema(fleet_runtime):
    rt, client = fleet_runtime
    assert client.post("/api/modules/basic/functions/typed_add", json={"x": 1, "y": 2}).json() == 3
    r = client.post("/api/modules/basic/functions/typed_add", json={"x": "one"})
    assert r.status_code == 422
    paths = {f["path"] for f in r.json()["fields"]}
    assert paths == {"$.x", "$.y"}
    assert "typed_add" in r.json()["error"]


def test_bad_requests_are_refused_with_the_reason(fleet_runtime):
    rt, client = fleet_runtime
    r = client.post("/api/modules/basic/functions/add", content=b'{"x": 1,')
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post("/api/modules/nope/functions/add", json={})
    assert r.status_code == 404 and set(r.json()["known"]) >= {"basic", "other"}
    r = client.post("/api/modules/basic/functions/nope", json={})
    assert r.status_code == 404 and "add" in r.json()["known"] and "nope" in r.json()["error"]
    r = client.post("/api/modules/basic/functions/add", content=b'{"x": "' + b"a" * 5000 + b'"}')
    assert r.status_code == 413


def test_sdk_error_result_becomes_500_with_its_message(fleet_runtime):
    rt, client = fleet_runtime
    r = client.post("/api/modules/basic/functions/fail", json={"why": "because"})
    assert r.status_code == 500
    body = r.json()
    assert "kaboom because" in body["error"] and body["job_id"] == r.headers["x-cmfleet-job-id"]
    assert client.get(f"/api/jobs/{body['job_id']}").json()["state"] == "failed"


def test_a_python_error_reads_the_same_short_shape_in_the_answer_and_the_job_record(fleet_runtime):
    rt, client = fleet_runtime
    r = client.post("/api/modules/basic/functions/fail", json={"why": "because"})
    body = r.json()
    job_id = body["job_id"]
    app = (rt.runtime.root / "modules" / "basic" / "app.py").read_text().splitlines()
    line = next(i for i, text in enumerate(app, 1) if 'raise ValueError("kaboom "' in text)
    assert body == {
        "error": "ValueError: kaboom because",  # type and message, one line
        "traceback": "Traceback (most recent call last):\n"
        f'  File "app.py", line {line}, in fail\n    {app[line - 1].strip()}',
        "hint": f"the replica's log lines of this job: GET /api/logs?job={job_id}",
        "job_id": job_id,
    }
    record = client.get(f"/api/jobs/{job_id}").json()
    fields = ("error", "traceback", "hint")
    assert {k: record[k] for k in fields} == {k: body[k] for k in fields}
    assert [j for j in client.get("/api/jobs?module=basic").json() if j["id"] == job_id][0]["error"] == body["error"]
    # the whole traceback stays in the replica's log lines of the job
    logged = wait_for(
        lambda: [x for x in client.get(f"/api/logs?job={job_id}").json() if "Traceback" in x["message"]],
        what="the job's traceback in the log",
    )
    assert "kaboom because" in logged[0]["message"] and "pluggy" in logged[0]["message"]


def test_timeout_gives_504_and_frees_the_slot(fleet_runtime):
    rt, client = fleet_runtime
    late = client.get("/api/health").json()["late_answers"]
    r = client.post("/api/modules/basic/functions/slow", json={"seconds": 6})
    assert r.status_code == 504
    assert "timed out after 4 s" in r.json()["error"]
    mods = {m["name"]: m for m in client.get("/api/modules").json()}
    assert mods["basic"]["running"] == 0  # the runtime no longer counts the job against the replica
    assert client.post("/api/modules/basic/functions/add", json={"x": 1, "y": 1}).json() == 2
    # the function still answers after its 6 s: accepted, ignored and counted (within this test, not a later one)
    wait_for(lambda: client.get("/api/health").json()["late_answers"] == late + 1, what="the late answer")


def test_async_job_status_and_result(fleet_runtime):
    rt, client = fleet_runtime
    r = client.post("/api/modules/other/functions/echo/jobs", json={"a": 1})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert r.headers["location"] == f"/api/jobs/{job_id}"
    result = client.get(f"/api/jobs/{job_id}/result", params={"wait": 20})
    assert result.status_code == 200 and result.json()["event"] == {"a": 1}
    assert client.get(f"/api/jobs/{job_id}").json()["state"] == "succeeded"
    recent = client.get("/api/jobs", params={"limit": 3, "module": "other"}).json()
    assert recent[0]["id"] == job_id and all(j["module"] == "other" for j in recent)
    assert client.get("/api/jobs/not-a-job").status_code == 404


def test_streamed_items_arrive_one_by_one_as_ndjson(fleet_runtime):
    rt, client = fleet_runtime
    lines = []
    states_at_first_item = []
    with client.stream(
        "POST",
        "/api/modules/basic/functions/ticks",
        json={"n": 4, "delay": 0.4},
        headers={"Accept": "application/x-ndjson"},
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        job_id = r.headers["x-cmfleet-job-id"]
        for line in r.iter_lines():
            if not lines:
                states_at_first_item.append(client.get(f"/api/jobs/{job_id}").json()["state"])
            lines.append(json.loads(line))
    assert lines == [0, 1, 2, 3]  # integers too: one chunk is one item, however the digits would run together
    assert states_at_first_item == ["running"]  # the first item reached us while the function was still going
    assert client.post("/api/modules/basic/functions/records", json={"n": 3}).json() == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_stream_that_breaks_fails_with_a_message(fleet_runtime):
    rt, client = fleet_runtime
    r = client.post("/api/modules/basic/functions/breaks?stream=1", json={})
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines[:2] == [1, 2]
    assert lines[-1]["state"] == "failed" and "aborted mid-stream" in lines[-1]["error"]
    r = client.post("/api/modules/basic/functions/unserialisable", json={})
    assert r.status_code == 500 and "not JSON serializable" in r.json()["error"]


def test_listings(fleet_runtime):
    rt, client = fleet_runtime
    mods = {m["name"]: m for m in client.get("/api/modules").json()}
    basic = mods["basic"]
    assert basic["schemas_posted"] is True
    assert {"add", "typed_add", "ticks", "environment"} <= set(basic["functions"])
    assert (basic["min_replicas"], basic["max_replicas"], basic["concurrency"]) == (1, 1, 2)
    (replica,) = basic["replicas"]
    assert set(replica) == {"id", "state", "pid", "session_id", "running", "capacity", "started_at", "restarts", "cpus"}
    assert replica["state"] == "ready" and replica["capacity"] == 2
    fns = {f["name"]: f for f in client.get("/api/modules/basic/functions").json()}
    assert fns["ticks"]["streaming"] is True and fns["add"]["streaming"] is False
    assert {f["source"] for f in fns.values()} == {"posted"}
    assert fns["typed_add"]["input_schema"]["required"] == ["x", "y"]
    assert fns["typed_add"]["schema"]["functionName"] == "typed_add"
    health = client.get("/api/health").json()
    # the scheduler's own count (the shared runtime's other tests cause late answers on purpose: test_timeout...)
    assert health["status"] == "ok" and health["late_answers"] == rt.call(lambda: rt.runtime.scheduler.late_answers)
    assert "cmfleet dev" in client.get("/").text


def test_replica_environment_follows_the_contract(fleet_runtime):
    rt, client = fleet_runtime
    out = client.post("/api/modules/basic/functions/environment", json={}).json()
    env = out["env"]
    port = rt.runtime.runtime_port
    prefix = f"https://localhost:{port}/interactive-module/api/internal-query/"
    assert env["GET_JOB_URI"] == prefix + "job"
    assert env["POST_RESULT_URI"] == prefix + "results"
    assert env["POST_SCHEMA_URI"] == prefix + "schemas"
    assert env["RESTART_NOTIFICATION_URI"] == prefix + "restart-notification"
    assert env["RUNTIME_HOST"] == "localhost" and env["RUNTIME_PORT"] == str(port)
    assert env["MAX_CONCURRENT_TASKS"] == "2"
    assert env["CONNECTIONS_TO_OTHER_PODS_CA_PATH"] == env["DEFAULT_CA_PATH"]
    assert "BEGIN CERTIFICATE" in Path(env["DEFAULT_CA_PATH"]).read_text()
    token = Path(env["MODULE_AUTH_TOKEN"]).read_bytes()
    assert token and not token.endswith(b"\n")
    assert oct(Path(env["MODULE_AUTH_TOKEN"]).stat().st_mode & 0o777) == "0o600"
    assert "localhost" in env["NO_PROXY"]
    assert out["size"] < 40  # a small environment: requests scans it on every call
    other = client.post("/api/modules/other/functions/echo", json={}).json()
    assert other["session"] != env["COMPUTE_SESSION_ID"]


def test_sources_reach_the_context_and_stay_out_of_logs(fleet_runtime):
    rt, client = fleet_runtime
    out = client.post("/api/modules/basic/functions/sources", json={}).json()
    assert out["names"] == ["WeatherApi"]  # OtherApi is configured for module "other" only
    assert out["sha256"] == hashlib.sha256(b"sup3r-s3cret-value").hexdigest()
    assert out["url"] == "https://weather.example.com/api"
    assert out["configuration"] == {"kind": "rest"}
    env = client.post("/api/modules/basic/functions/environment", json={}).json()["env"]
    creds = Path(env["SOURCE_CREDENTIALS"])
    assert json.loads(creds.read_text()) == {"WeatherApi": {"apiKey": "sup3r-s3cret-value"}}
    assert oct(creds.stat().st_mode & 0o777) == "0o600"

    r = client.post("/api/modules/basic/functions/chatty", json={"name": "n1"})
    job_id = r.headers["x-cmfleet-job-id"]

    def job_logs():
        return client.get("/api/logs", params={"job": job_id}).json()

    records = wait_for(job_logs, what="the job's log line")
    assert any("working on n1 with key ***" in rec["message"] for rec in records)
    everything = client.get("/api/logs", params={"limit": 10000}).text
    assert "sup3r-s3cret-value" not in everything
    plain = client.get("/api/logs", params={"module": "basic", "replica": "basic-1"}).json()
    assert any(rec["message"] == "plain stdout line" and rec["stream"] == "stdout" for rec in plain)


def test_log_stream_delivers_lines_live(fleet_runtime):
    rt, client = fleet_runtime
    received: list[dict] = []

    def listen():
        with httpx.stream("GET", rt.url + "/api/logs/stream", params={"module": "basic"}, timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))
                    if any(rec["message"] == "plain stdout line" for rec in received):
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    wait_for(lambda: rt.call(lambda: len(rt.runtime.logs.subscribers)), what="the SSE subscriber")
    client.post("/api/modules/basic/functions/chatty", json={"name": "live"})
    listener.join(30)
    assert any(rec["message"] == "plain stdout line" for rec in received)


def test_a_module_that_cannot_import_fails_its_jobs_with_the_cause(fleet_runtime):
    rt, client = fleet_runtime
    r = client.post("/api/modules/broken/functions/nothing", json={})
    assert r.status_code == 500
    assert "could not start" in r.json()["error"] and "module_that_does_not_exist" in r.json()["error"]
    assert r.headers["x-cmfleet-cold-start"] == "true"
