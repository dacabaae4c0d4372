"""The container-facing API: tokens, the job envelope, a hand-started real SDK replica (``--print-env``), restart
notifications and the bounded queue. Module ``idle`` runs a command that never polls (any command can be a
replica), so its jobs wait for the replica the test starts by hand."""

from __future__ import annotations

import json
import os
import shlex
import signal
import ssl
import subprocess
import sys

import httpx
import pytest
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for

PREFIX = "/interactive-module/api/internal-query"


@pytest.fixture(scope="module")
def idle_runtime(tmp_path_factory):
    never_polls = json.dumps([sys.executable, "-c", "import time; time.sleep(3600)"])
    dev = f"[tool.cmfleet.dev.modules.idle]\ncommand = {never_polls}\nqueue-limit = 2\n"
    root = copy_fleet(tmp_path_factory.mktemp("fleet") / "repo", dev)
    rt = start_runtime(root, ["idle", "other"], poll_hold=1.0, timeout=120)
    client = httpx.Client(base_url=rt.url, timeout=30)
    wait_for(lambda: ready_replicas(client, "other"), what="other's replica")
    ctx = ssl.create_default_context(cafile=str(root / ".cmfleet" / "dev" / "tls" / "ca.pem"))
    runtime = httpx.Client(base_url=f"https://localhost:{rt.runtime.runtime_port}", verify=ctx, timeout=30)
    yield rt, client, runtime, root
    runtime.close()
    client.close()
    rt.close()


def _token(rt, replica_id: str) -> str:
    def find():
        for mq in rt.runtime.scheduler.modules.values():
            for replica in mq.replicas:
                if replica.id == replica_id:
                    return replica.token
        raise KeyError(replica_id)

    return rt.call(find)


def test_queue_full_gives_429_with_retry_after(idle_runtime):
    rt, client, runtime, root = idle_runtime
    first = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 0})
    second = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 0})
    assert first.status_code == second.status_code == 202
    third = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 0})
    assert third.status_code == 429
    assert third.headers["retry-after"] == "1" and "full" in third.json()["error"]
    assert client.post("/api/modules/idle/functions/nap", json={}).status_code == 429


def test_tokens_identify_the_replica_and_its_module(idle_runtime):
    rt, client, runtime, root = idle_runtime
    assert runtime.get(f"{PREFIX}/job").status_code == 401
    assert runtime.get(f"{PREFIX}/job", headers={"Module-Auth-Token": "forged"}).status_code == 403
    assert runtime.post(f"{PREFIX}/results/x", headers={"Module-Auth-Token": "forged"}, content=b"1").status_code == 403
    mine = {"Module-Auth-Token": _token(rt, "idle-manual")}
    other = {"Module-Auth-Token": _token(rt, "other-1")}

    job = runtime.get(f"{PREFIX}/job", headers=mine)
    assert job.status_code == 200
    envelope = job.json()
    assert envelope["type"] == "computeModuleJobV1"
    body = envelope["computeModuleJobV1"]
    assert body["queryType"] == "nap" and body["query"] == {"seconds": 0}
    job_id = body["jobId"]

    # another module's replica can neither answer this job nor take idle's queued jobs
    refused = runtime.post(f"{PREFIX}/results/{job_id}", headers=other, content=b'"forged"')
    assert refused.status_code == 403 and "belongs to module 'idle'" in refused.json()["error"]
    assert runtime.get(f"{PREFIX}/job", headers=other).status_code == 204  # long-poll ends empty
    assert client.get(f"/api/jobs/{job_id}").json()["state"] == "running"

    assert runtime.post(f"{PREFIX}/results/{job_id}", headers=mine, content=b'"rested"').status_code == 204
    assert client.get(f"/api/jobs/{job_id}/result").json() == "rested"
    # a second answer is accepted (the SDK must see 204) but ignored
    assert runtime.post(f"{PREFIX}/results/{job_id}", headers=mine, content=b'"again"').status_code == 204
    assert client.get(f"/api/jobs/{job_id}/result").json() == "rested"
    assert client.get("/api/health").json()["late_answers"] == 1

    held = runtime.get(f"{PREFIX}/job", headers=mine).json()["computeModuleJobV1"]["jobId"]
    restarted = runtime.post(f"{PREFIX}/restart-notification", headers=mine)
    assert restarted.status_code == 200 and restarted.json() == [held]
    record = client.get(f"/api/jobs/{held}").json()
    assert record["state"] == "lost" and "restart" in record["error"]
    assert runtime.post(f"{PREFIX}/schemas", headers=mine, json=[]).status_code == 204


def _print_env(root, port: int) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "cmfleet", "dev", "--print-env", "idle", "--runtime-port", str(port)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"},
    )
    assert out.returncode == 0, out.stderr
    env = {}
    for line in out.stdout.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def _start_sdk(root, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cmfleet.entrypoint", str(root / "modules" / "idle")],
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_hand_started_sdk_replica_and_its_restart_notification(idle_runtime):
    rt, client, runtime, root = idle_runtime
    env = _print_env(root, rt.runtime.runtime_port)
    assert env["COMPUTE_SESSION_ID"] == "idle-manual"
    assert env["GET_JOB_URI"].endswith(f":{rt.runtime.runtime_port}{PREFIX}/job")
    proc = _start_sdk(root, env)
    try:
        r = client.post("/api/modules/idle/functions/nap", json={"seconds": 0})
        assert r.status_code == 200 and r.json() == "rested"
        assert r.headers["x-cmfleet-replica"] == "idle-manual"

        job_id = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 60}).json()["job_id"]
        wait_for(lambda: client.get(f"/api/jobs/{job_id}").json()["state"] == "running", what="the job to start")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc = _start_sdk(root, env)  # the SDK reports its restart; the runtime drops what it held
        record = wait_for(
            lambda: (j := client.get(f"/api/jobs/{job_id}").json())["state"] == "lost" and j, what="the job lost"
        )
        assert "restarted (restart notification)" in record["error"]
        assert client.post("/api/modules/idle/functions/nap", json={"seconds": 0}).json() == "rested"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
