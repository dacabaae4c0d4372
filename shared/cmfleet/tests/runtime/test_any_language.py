"""Any language: a module whose replicas run Palantir's TypeScript SDK (``@palantir/compute-module`` from npm,
unchanged) under Node.js, configured with ``command = ["node", "index.js"]``. The runtime gives it the same
environment and protocol as the Python SDK, limits its concurrency (the TS SDK pulls every job it can get), reads
its error shape and its raw streamed chunks, and serves the functions it registers without a schema when the
module declares them (``functions``)."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from runtime_support import add_typescript_module, copy_fleet, print_env, ready_replicas, start_runtime, wait_for

DEV = """
[tool.cmfleet.dev.modules.tsmod]
command = ["node", "index.js"]
replicas = "1:1"
concurrency = 1
functions = ["fail", "wait", "secret", { name = "hello", streaming = true }, { name = "quote", streaming = true }]
"""
SOURCE = """
[sources.TsApi]
secrets = { apiKey = "ts-s3cret" }
modules = ["tsmod"]
"""


@pytest.fixture(scope="module")
def ts_runtime(tmp_path_factory, nodejs):
    root = copy_fleet(tmp_path_factory.mktemp("fleet") / "repo", DEV)
    add_typescript_module(root, pyproject=False)  # known by its command setting alone: index.js, package.json
    with (root / "cmfleet.local.toml").open("a") as fh:
        fh.write(SOURCE)
    rt = start_runtime(root, ["tsmod"], poll_hold=1.0, timeout=30)
    client = httpx.Client(base_url=rt.url, timeout=30)
    wait_for(lambda: ready_replicas(client, "tsmod"), 60, "the Node.js replica")
    yield rt, client
    client.close()
    rt.close()


def test_the_ts_sdk_posts_its_schema_and_calls_are_checked_against_it(ts_runtime):
    rt, client = ts_runtime
    # the SDK posts its schemas after its first poll answered 2xx: a call gets it going
    r = client.post("/api/modules/tsmod/functions/add", json={"x": 10, "y": 20})
    assert r.status_code == 200 and r.json() == 30
    assert r.headers["x-cmfleet-replica"] == "tsmod-1"
    wait_for(lambda: client.get("/api/modules").json()[0]["schemas_posted"], what="the TS SDK's schemas")

    functions = {f["name"]: f for f in client.get("/api/modules/tsmod/functions").json()}
    assert list(functions) == ["add", "fail", "wait", "secret", "hello", "quote"]  # posted, then the declared
    assert functions["add"]["input_schema"]["required"] == ["x", "y"]
    assert functions["hello"]["streaming"] is True and functions["hello"]["schema"] is None
    assert [f["source"] for f in functions.values()] == ["posted"] + ["settings"] * 5
    assert [f["origin"] for f in functions.values()] == ["module"] + ["settings"] * 5  # its own code, no plugin

    bad = client.post("/api/modules/tsmod/functions/add", json={"x": "ten"})
    assert bad.status_code == 422
    assert {f["path"] for f in bad.json()["fields"]} == {"$.x", "$.y"}
    unknown = client.post("/api/modules/tsmod/functions/nope", json={})
    assert unknown.status_code == 404 and unknown.json()["known"] == list(functions)
    assert unknown.json()["error"].endswith("known functions: add, fail, wait, secret, hello, quote")


def test_a_thrown_error_reaches_the_caller_with_its_name_and_message(ts_runtime):
    rt, client = ts_runtime
    r = client.post("/api/modules/tsmod/functions/fail", json={"why": "no such customer"})
    assert r.status_code == 500
    assert r.json()["error"] == "TypeError: no such customer"  # the TS SDK's {"error": name, "reason": message}
    # the same shape as a Python module's (cmfleet.errors): no JavaScript frame of the module to show
    job_id = r.headers["x-cmfleet-job-id"]
    hint = f"the replica's log lines of this job: GET /api/logs?job={job_id}"
    assert r.json() == {"error": "TypeError: no such customer", "hint": hint, "job_id": job_id}
    assert client.get(f"/api/jobs/{r.headers['x-cmfleet-job-id']}").json()["state"] == "failed"


def test_raw_streamed_chunks_arrive_as_items_while_the_function_runs(ts_runtime):
    rt, client = ts_runtime
    lines, states = [], []
    ndjson = {"Accept": "application/x-ndjson"}
    with client.stream("POST", "/api/modules/tsmod/functions/hello", json={"world": "world"}, headers=ndjson) as r:
        assert r.status_code == 200
        job_id = r.headers["x-cmfleet-job-id"]
        for line in r.iter_lines():
            if not lines:
                states.append(client.get(f"/api/jobs/{job_id}").json()["state"])
            lines.append(json.loads(line))
    assert lines == ["Hello", "world"]  # written as plain text, not JSON: each chunk is one string item
    assert states == ["running"]
    assert client.post("/api/modules/tsmod/functions/hello", json={"world": "again"}).json() == ["Hello", "again"]
    # once a stream is text, every chunk is text: "42" stays the string it was written as
    assert client.post("/api/modules/tsmod/functions/hello", json={"world": "42"}).json() == ["Hello", "42"]
    # text that starts like JSON waits for its end; when the stream ends first, it was text after all
    r = client.post("/api/modules/tsmod/functions/quote", json={"text": "to be or"})
    assert r.status_code == 200 and r.json() == ['"to be or']


def test_the_runtime_holds_the_ts_sdk_to_its_concurrency(ts_runtime):
    """The TS SDK takes every job it is given; with MAX_CONCURRENT_TASKS 1 the second waits in the queue."""
    rt, client = ts_runtime
    first = client.post("/api/modules/tsmod/functions/wait/jobs", json={"ms": 1500}).json()["job_id"]
    second = client.post("/api/modules/tsmod/functions/wait/jobs", json={"ms": 10}).json()["job_id"]
    wait_for(lambda: client.get(f"/api/jobs/{first}").json()["state"] == "running", what="the first job to start")
    assert client.get(f"/api/jobs/{second}").json()["state"] == "queued"
    one = client.get(f"/api/jobs/{first}/result", params={"wait": 10}).json()
    two = client.get(f"/api/jobs/{second}/result", params={"wait": 10}).json()
    (replica,) = ready_replicas(client, "tsmod")
    assert one == two and one["session"] == replica["session_id"] and one["pid"] == replica["pid"]
    second_record = client.get(f"/api/jobs/{second}").json()
    assert second_record["started_at"] >= client.get(f"/api/jobs/{first}").json()["finished_at"]


def test_the_ts_sdk_reads_the_local_source_credentials(ts_runtime):
    rt, client = ts_runtime
    r = client.post("/api/modules/tsmod/functions/secret", json={})
    assert r.status_code == 200 and r.json() == hashlib.sha256(b"ts-s3cret").hexdigest()
    lines = client.get("/api/logs", params={"module": "tsmod", "limit": 1000}).json()
    assert not [line for line in lines if "ts-s3cret" in json.dumps(line)]


def test_print_env_knows_a_module_by_its_command_alone(ts_runtime):
    rt, client = ts_runtime
    assert not (rt.runtime.root / "modules" / "tsmod" / "pyproject.toml").exists()
    env = print_env(rt.runtime.root, "tsmod", "--runtime-port", str(rt.runtime.runtime_port))
    assert env["COMPUTE_SESSION_ID"] == "tsmod-manual" and env["MODULE_AUTH_TOKEN"]
