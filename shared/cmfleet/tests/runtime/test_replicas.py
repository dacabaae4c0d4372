"""Replicas: SIGKILL during a long run, crash errors, the per-replica concurrency cap, autoscaling, scale to zero
and cold starts, all with real SDK processes."""

from __future__ import annotations

import os
import signal
import threading
from collections import defaultdict

import httpx
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for

from cmfleet.runtime.scheduler import TERMINAL


def _busy_replica_pid(rt, module: str) -> int | None:
    """The pid of a ready replica that holds at least one job right now."""

    def find():
        for replica in rt.runtime.scheduler.modules[module].replicas:
            if replica.state == "ready" and replica.in_flight and replica.pid:
                return replica.pid
        return None

    return rt.call(find)


def _holder_pid(rt, module: str, job_id: str) -> int | None:
    """The pid of the ready replica holding ``job_id`` right now."""

    def find():
        for replica in rt.runtime.scheduler.modules[module].replicas:
            if replica.state == "ready" and job_id in replica.in_flight and replica.pid:
                return replica.pid
        return None

    return rt.call(find)


def test_sigkill_during_1000_jobs_leaves_every_job_in_exactly_one_terminal_state(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    rt = start_runtime(root, ["basic"], replicas="2:2", concurrency=2, queue_limit=5000, timeout=60)
    try:
        client = httpx.Client(base_url=rt.url, timeout=30)
        wait_for(lambda: len(ready_replicas(client, "basic")) == 2, what="two replicas")
        ids: list[str] = []
        kills: list[int] = []
        held: list[str] = []  # a slow job each killed replica is sure to hold when the signal lands

        def killer():
            with httpx.Client(base_url=rt.url, timeout=30) as own:
                for threshold in (250, 600):
                    wait_for(lambda t=threshold: len(ids) >= t, what="submissions")
                    slow = own.post("/api/modules/basic/functions/slow/jobs", json={"seconds": 30}).json()["job_id"]
                    held.append(slow)
                    pid = wait_for(lambda j=slow: _holder_pid(rt, "basic", j), what="the replica holding the slow job")
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)

        thread = threading.Thread(target=killer)
        thread.start()
        for i in range(1000):
            r = client.post("/api/modules/basic/functions/add/jobs", json={"x": i, "y": 1})
            assert r.status_code == 202
            ids.append(r.json()["job_id"])
        thread.join(60)
        assert len(kills) == 2

        def all_finished():  # the held slow jobs too: a killed replica's jobs end once the runtime has its exit
            return rt.call(lambda: all(rt.runtime.scheduler.jobs[j].finished for j in [*ids, *held]))

        wait_for(all_finished, timeout=90, what="every job to finish")
        states, errors, results = rt.call(
            lambda: (
                [rt.runtime.scheduler.jobs[j].state for j in ids],
                [rt.runtime.scheduler.jobs[j].error for j in ids],
                [rt.runtime.scheduler.jobs[j].result for j in ids],
            )
        )
        assert all(s in TERMINAL for s in states)
        counts = rt.call(lambda: dict(rt.runtime.scheduler.counts))
        assert sum(counts.values()) == 1000 + len(held)  # each job counted once, at its one terminal transition
        assert rt.call(lambda: rt.runtime.scheduler.late_answers) == 0  # no job was answered twice
        held_jobs = rt.call(
            lambda: [(rt.runtime.scheduler.jobs[j].state, rt.runtime.scheduler.jobs[j].error) for j in held]
        )
        assert [state for state, _ in held_jobs] == ["lost", "lost"]
        lost = [e for s, e in zip(states, errors, strict=True) if s == "lost"] + [e for _, e in held_jobs]
        assert all("killed by signal SIGKILL" in e for e in lost)
        for i, (state, result) in enumerate(zip(states, results, strict=True)):
            if state == "succeeded":
                assert result == str(i + 1).encode()
        assert set(states) <= {"succeeded", "lost"}
        replicas = wait_for(lambda: len(ready_replicas(client, "basic")) == 2 and ready_replicas(client, "basic"))
        assert sum(r["restarts"] for r in replicas) == 2
        client.close()
    finally:
        rt.close()


def test_caller_of_a_killed_replica_gets_502_naming_the_signal(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    rt = start_runtime(root, ["basic"], replicas="1:1", concurrency=1)
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        wait_for(lambda: ready_replicas(client, "basic"), what="a replica")
        answer: list[httpx.Response] = []
        call = threading.Thread(
            target=lambda: answer.append(client.post("/api/modules/basic/functions/slow", json={"seconds": 30}))
        )
        call.start()
        pid = wait_for(lambda: _busy_replica_pid(rt, "basic"), what="the job to start")
        os.kill(pid, signal.SIGKILL)
        call.join(30)
        assert answer[0].status_code == 502
        assert "replica basic-1 exited (killed by signal SIGKILL)" in answer[0].json()["error"]
        (replica,) = wait_for(lambda: ready_replicas(client, "basic"), what="the restarted replica")
        assert replica["restarts"] == 1 and replica["pid"] != pid
        assert client.post("/api/modules/basic/functions/add", json={"x": 2, "y": 3}).json() == 5
        client.close()
    finally:
        rt.close()


def test_concurrency_cap_autoscaling_scale_to_zero_and_cold_start(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    rt = start_runtime(root, ["basic"], replicas="0:2", concurrency=1, idle_timeout=1.0)
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        assert client.get("/api/modules").json()[0]["replicas"] == []  # scaled to zero from the start
        first = client.post("/api/modules/basic/functions/add", json={"x": 1, "y": 2})
        assert first.status_code == 200 and first.headers["x-cmfleet-cold-start"] == "true"
        assert client.get(f"/api/jobs/{first.headers['x-cmfleet-job-id']}").json()["cold_start"] is True
        warm = client.post("/api/modules/basic/functions/add", json={"x": 1, "y": 2})
        assert warm.headers["x-cmfleet-cold-start"] == "false"

        ids = [
            client.post("/api/modules/basic/functions/slow/jobs", json={"seconds": 0.4}).json()["job_id"]
            for _ in range(6)
        ]
        runs = [client.get(f"/api/jobs/{j}/result", params={"wait": 60}).json() for j in ids]
        by_session = defaultdict(list)
        for run in runs:
            by_session[run["session"]].append((run["start"], run["end"]))
        assert len(by_session) == 2  # the load started a second replica (max 2)
        for intervals in by_session.values():  # concurrency 1: a replica never ran two jobs at once
            intervals.sort()
            assert all(prev_end <= start for (_, prev_end), (start, _) in zip(intervals, intervals[1:], strict=False))
        assert rt.call(lambda: max(r.max_in_flight for r in rt.runtime.scheduler.modules["basic"].replicas)) == 1

        def scaled_to_zero():
            mod = client.get("/api/modules").json()[0]
            return not [r for r in mod["replicas"] if r["state"] in ("starting", "ready", "draining")]

        wait_for(scaled_to_zero, timeout=30, what="scale to zero")
        again = client.post("/api/modules/basic/functions/add", json={"x": 5, "y": 5})
        assert again.json() == 10 and again.headers["x-cmfleet-cold-start"] == "true"
        client.close()
    finally:
        rt.close()
