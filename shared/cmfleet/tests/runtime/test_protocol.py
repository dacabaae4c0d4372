"""The container-facing API: tokens, the job envelope, a hand-started real SDK replica (``--print-env``), restart
notifications and the bounded queue. Module ``idle`` runs a command that never polls (any command can be a
replica), so its jobs wait for the replica the test starts by hand."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time

import httpx
import pytest
from runtime_support import copy_fleet, print_env, ready_replicas, start_runtime, wait_for

from cmfleet.runtime.config import ConfigError, load_config

PREFIX = "/interactive-module/api/internal-query"
NEVER_POLLS = json.dumps([sys.executable, "-c", "import time; time.sleep(3600)"])


@pytest.fixture(scope="module")
def idle_runtime(tmp_path_factory):
    dev = f"[tool.cmfleet.dev.modules.idle]\ncommand = {NEVER_POLLS}\nqueue-limit = 2\n"
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


def _queued(rt) -> int:
    return rt.call(lambda: len(rt.runtime.scheduler.modules["idle"].queue))


def test_queue_full_gives_429_with_retry_after(idle_runtime):
    rt, client, runtime, root = idle_runtime
    try:
        first = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 0})
        second = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 0})
        assert first.status_code == second.status_code == 202
        third = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 0})
        assert third.status_code == 429
        assert third.headers["retry-after"] == "1" and "full" in third.json()["error"]
        assert client.post("/api/modules/idle/functions/nap", json={}).status_code == 429
    finally:
        # the tests share idle's runtime in any order: take and answer what this one queued, as its replica would
        mine = {"Module-Auth-Token": _token(rt, "idle-manual")}
        while _queued(rt):
            taken = runtime.get(f"{PREFIX}/job", headers=mine).json()["computeModuleJobV1"]["jobId"]
            assert runtime.post(f"{PREFIX}/results/{taken}", headers=mine, content=b'"rested"').status_code == 204


def test_tokens_identify_the_replica_and_its_module(idle_runtime):
    rt, client, runtime, root = idle_runtime
    assert runtime.get(f"{PREFIX}/job").status_code == 401
    assert runtime.get(f"{PREFIX}/job", headers={"Module-Auth-Token": "forged"}).status_code == 403
    assert runtime.post(f"{PREFIX}/results/x", headers={"Module-Auth-Token": "forged"}, content=b"1").status_code == 403
    mine = {"Module-Auth-Token": _token(rt, "idle-manual")}
    other = {"Module-Auth-Token": _token(rt, "other-1")}
    late = client.get("/api/health").json()["late_answers"]

    submitted = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 0}).json()["job_id"]
    job = runtime.get(f"{PREFIX}/job", headers=mine)
    assert job.status_code == 200
    envelope = job.json()
    assert envelope["type"] == "computeModuleJobV1"
    body = envelope["computeModuleJobV1"]
    assert body["queryType"] == "nap" and body["query"] == {"seconds": 0}
    job_id = body["jobId"]
    assert job_id == submitted

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
    assert client.get("/api/health").json()["late_answers"] == late + 1

    client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 0})
    held = runtime.get(f"{PREFIX}/job", headers=mine).json()["computeModuleJobV1"]["jobId"]
    restarted = runtime.post(f"{PREFIX}/restart-notification", headers=mine)
    assert restarted.status_code == 200 and restarted.json() == [held]
    record = client.get(f"/api/jobs/{held}").json()
    assert record["state"] == "lost" and "restart" in record["error"]
    assert runtime.post(f"{PREFIX}/schemas", headers=mine, json=[]).status_code == 204


def test_a_parked_poll_gets_the_next_job_or_204_after_the_hold(idle_runtime):
    """Contract §0.4: the GET job long-poll holds (the SDK re-polls at once after a 204), and a job submitted
    while a poll is parked goes to it then."""
    rt, client, runtime, root = idle_runtime
    mine = {"Module-Auth-Token": _token(rt, "idle-manual")}
    started = time.monotonic()
    empty = runtime.get(f"{PREFIX}/job", headers=mine)
    assert empty.status_code == 204 and empty.content == b""
    assert time.monotonic() - started >= 0.9  # held for the runtime's poll_hold (1 s here), not answered at once

    def parked() -> bool:
        return rt.call(lambda: len(rt.runtime.scheduler.modules["idle"].pollers)) == 1

    answers: list[httpx.Response] = []
    ctx = ssl.create_default_context(cafile=str(root / ".cmfleet" / "dev" / "tls" / "ca.pem"))
    rt.call(lambda: setattr(rt.runtime.scheduler, "poll_hold", 20.0))  # a slow machine cannot outlast the hold
    try:
        with httpx.Client(base_url=str(runtime.base_url), verify=ctx, timeout=30) as connection:
            poll = threading.Thread(target=lambda: answers.append(connection.get(f"{PREFIX}/job", headers=mine)))
            poll.start()
            wait_for(parked, what="the poll to be parked")
            job_id = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 0}).json()["job_id"]
            poll.join(15)
    finally:
        rt.call(lambda: setattr(rt.runtime.scheduler, "poll_hold", 1.0))
    (answer,) = answers
    assert answer.status_code == 200 and answer.json()["computeModuleJobV1"]["jobId"] == job_id
    assert runtime.post(f"{PREFIX}/results/{job_id}", headers=mine, content=b'"rested"').status_code == 204
    assert client.get(f"/api/jobs/{job_id}/result").json() == "rested"


def _print_env(root, port: int) -> dict[str, str]:
    return print_env(root, "idle", "--runtime-port", str(port))


def _start_sdk(root, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cmfleet.entrypoint", str(root / "modules" / "idle")],
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL a hand-started replica's process group (the SDK and its workers) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def _lost(client: httpx.Client, job_id: str) -> dict:
    """The job's record once it is lost."""
    return wait_for(lambda: (j := client.get(f"/api/jobs/{job_id}").json())["state"] == "lost" and j, 30, "job lost")


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
        _kill(proc)
        proc = _start_sdk(root, env)  # the SDK reports its restart; the runtime drops what it held
        record = _lost(client, job_id)
        assert "restarted (restart notification)" in record["error"]
        assert client.post("/api/modules/idle/functions/nap", json={"seconds": 0}).json() == "rested"
    finally:
        _kill(proc)


def _listed(client: httpx.Client, module: str) -> dict[str, str]:
    (mod,) = [m for m in client.get("/api/modules").json() if m["name"] == module]
    return {r["id"]: r["state"] for r in mod["replicas"]}


def test_a_hand_started_replica_that_stops_polling_loses_its_jobs_after_the_grace(tmp_path):
    root = copy_fleet(tmp_path / "repo", f"[tool.cmfleet.dev.modules.idle]\ncommand = {NEVER_POLLS}\n")
    rt = start_runtime(root, ["idle"], poll_hold=1.0, timeout=120, manual_grace=2)
    client = httpx.Client(base_url=rt.url, timeout=30)
    env = _print_env(root, rt.runtime.runtime_port)
    proc = _start_sdk(root, env)
    try:
        r = client.post("/api/modules/idle/functions/nap", json={"seconds": 0})
        assert r.json() == "rested" and r.headers["x-cmfleet-replica"] == "idle-manual"
        # healthy and idle for 12 s (12 long-polls of 1 s, 6 grace periods): never taken for stopped
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            assert _listed(client, "idle").get("idle-manual") == "ready"
            time.sleep(0.25)
        # healthy and busy for longer than the grace: its job runs on
        job_id = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 60}).json()["job_id"]
        wait_for(lambda: client.get(f"/api/jobs/{job_id}").json()["state"] == "running", what="the job to start")
        time.sleep(3)
        assert client.get(f"/api/jobs/{job_id}").json()["state"] == "running"
        assert not [line for line in _logs(client) if "stopped polling" in line]

        _kill(proc)  # the replica and its SDK workers, as a closed terminal would
        killed = time.monotonic()
        record = _lost(client, job_id)
        waited = time.monotonic() - killed
        assert record["error"] == "lost: hand-started replica idle-manual stopped polling: no request for 2 s"
        assert 1.5 <= waited < 10, waited  # after the grace, long before the job's 120 s timeout
        assert "idle-manual" not in _listed(client, "idle")
        assert rt.call(lambda: rt.runtime.scheduler.by_token[_manual_token(root)].state) == "stopped"
        assert [line for line in _logs(client) if "stopped polling" in line] == [
            "hand-started replica idle-manual stopped polling: no request for 2 s; the 1 job(s) it held are lost"
        ]

        proc = _start_sdk(root, env)  # started again (same token): ready again
        r = client.post("/api/modules/idle/functions/nap", json={"seconds": 0})
        assert r.json() == "rested" and r.headers["x-cmfleet-replica"] == "idle-manual"
        assert _listed(client, "idle")["idle-manual"] == "ready"
    finally:
        _kill(proc)
        client.close()
        rt.close()


def test_a_stopped_hand_started_replica_is_taken_for_stopped_after_the_grace_with_a_true_message(tmp_path):
    root = copy_fleet(tmp_path / "repo", f"[tool.cmfleet.dev.modules.idle]\ncommand = {NEVER_POLLS}\n")
    rt = start_runtime(root, ["idle"], poll_hold=1.0, timeout=120, manual_grace=2)
    client = httpx.Client(base_url=rt.url, timeout=30)
    proc = _start_sdk(root, _print_env(root, rt.runtime.runtime_port))
    try:
        assert client.post("/api/modules/idle/functions/nap", json={"seconds": 0}).json() == "rested"
        job_id = client.post("/api/modules/idle/functions/nap/jobs", json={"seconds": 60}).json()["job_id"]
        wait_for(lambda: client.get(f"/api/jobs/{job_id}").json()["state"] == "running", what="the job to start")
        os.killpg(proc.pid, signal.SIGSTOP)  # its connections stay open; it polls no more
        stopped = time.monotonic()
        record = _lost(client, job_id)
        waited = time.monotonic() - stopped
        assert record["error"] == "lost: hand-started replica idle-manual stopped polling: no request for 2 s"
        assert 2 <= waited < 1.0 + 2 + 3, waited  # the poll hold (its last poll's answer), then the grace
        assert rt.call(lambda: rt.runtime.scheduler.by_token[_manual_token(root)].state) == "stopped"
        health = client.get("/api/health").json()
        assert "stopped" not in health["replicas"]  # a stopped hand-started replica is not a replica to count
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
        _kill(proc)
        client.close()
        rt.close()


def _manual_token(root) -> str:
    return (root / ".cmfleet" / "dev" / "manual" / "idle" / "module-auth-token").read_text()


def _logs(client: httpx.Client) -> list[str]:
    return [r["message"] for r in client.get("/api/logs", params={"module": "idle", "limit": 1000}).json()]


def test_manual_grace_setting():
    assert load_config({}).manual_grace == 10
    assert load_config({"dev": {"manual-grace": 2.5}}).manual_grace == 2.5
    for bad in (0, -1, "soon", True):
        with pytest.raises(ConfigError, match=r"\[tool.cmfleet.dev\] manual-grace: .* is not a number of seconds"):
            load_config({"dev": {"manual-grace": bad}})
    # the command line wins over the pyproject
    assert load_config({"dev": {"manual-grace": 2.5}}, manual_grace=30).manual_grace == 30
    with pytest.raises(ConfigError, match=r"--manual-grace: 0 is not a number of seconds above 0"):
        load_config({}, manual_grace=0)
    out = subprocess.run(
        [sys.executable, "-m", "cmfleet", "dev", "--manual-grace", "-1"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "--manual-grace: -1.0 is not a number of seconds above 0" in out.stderr
