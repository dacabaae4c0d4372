"""CPU placement of busy replicas (runtime/placement.py): the assignment, real process trees, and cmfleet dev."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for

from cmfleet.runtime.config import ConfigError, load_config
from cmfleet.runtime.placement import CpuPlacement, assign, replica_tasks, set_tasks_affinity, usable_cpus


def allowed(tid: int) -> set[int]:
    return set(os.sched_getaffinity(tid))


# -- the assignment ------------------------------------------------------------------------------------------


def test_busy_replicas_are_spread_one_per_cpu_before_any_cpu_takes_two():
    got = assign([("a-1", 1), ("b-1", 1), ("a-2", 1)], [0, 1, 2, 3], {})
    assert got == {"a-1": (0,), "b-1": (1,), "a-2": (2,)}
    got = assign([("a-1", 1), ("b-1", 1), ("a-2", 1)], [4, 7], {})
    assert got == {"a-1": (4,), "b-1": (7,), "a-2": (4,)}


def test_a_replica_gets_as_many_cpus_as_its_concurrency_and_none_when_that_is_every_cpu():
    got = assign([("a-1", 2), ("b-1", 1), ("c-1", 4)], [0, 1, 2, 3], {})
    assert got == {"a-1": (0, 1), "b-1": (2,)}  # c-1 would get every CPU: left to the kernel
    assert assign([("a-1", 1)], [0], {}) == {}  # one CPU: nothing to place


def test_placements_are_kept_while_even_and_moved_when_one_cpu_carries_two_more():
    current = {"a-1": (1,), "b-1": (0,)}
    assert assign([("a-1", 1), ("b-1", 1), ("c-1", 1)], [0, 1], current) == {"a-1": (1,), "b-1": (0,), "c-1": (0,)}
    # b-1 went idle: a-1 and c-1 would share CPU 0 while CPU 1 has nothing
    got = assign([("a-1", 1), ("c-1", 1)], [0, 1], {"a-1": (0,), "c-1": (0,)})
    assert sorted(got.values()) == [(0,), (1,)]
    # a placement on a CPU that is no longer usable is made again
    assert assign([("a-1", 1)], [0, 1], {"a-1": (5,)}) == {"a-1": (0,)}


@given(
    wants=st.lists(st.integers(min_value=1, max_value=3), max_size=12),
    ncpu=st.integers(min_value=1, max_value=6),
    seed=st.lists(st.integers(min_value=0, max_value=7), max_size=12),
)
def test_every_placement_is_valid_and_single_cpu_replicas_stay_even(wants, ncpu, seed):
    cpus = list(range(ncpu))
    busy = [(f"m-{i}", w) for i, w in enumerate(wants)]
    current = {f"m-{i}": (c,) for i, c in enumerate(seed)}  # earlier placements, some on CPUs that are gone
    got = assign(busy, cpus, current)
    for rid, want in busy:
        if ncpu < 2 or want >= ncpu:
            assert rid not in got
        else:
            assert len(got[rid]) == want and len(set(got[rid])) == want and set(got[rid]) <= set(cpus)
    if ncpu >= 2 and all(w == 1 for w in wants):
        load = Counter(c for placed in got.values() for c in placed)
        assert max(load[c] for c in cpus) - min(load[c] for c in cpus) <= 1
    assert assign(busy, cpus, got) == got  # stable: a second tick with the same load moves nothing


# -- real processes ------------------------------------------------------------------------------------------

TREE = textwrap.dedent(
    """
    import os, sys, threading, time
    def park():
        time.sleep(60)
    threading.Thread(target=park, daemon=True).start()
    if os.fork() == 0:  # like the SDK's pool worker: a forked child with a thread of its own
        threading.Thread(target=park, daemon=True).start()
        time.sleep(60)
        os._exit(0)
    print("ready", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def process_tree():
    """A process with a thread and a forked child that has a thread too (as a replica: main, pool worker)."""
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    wait_for(lambda: len(replica_tasks(proc.pid)) == 4, what="2 processes x 2 threads")
    yield proc
    os.killpg(proc.pid, 9)
    proc.wait()


def test_a_replica_tree_is_found_and_placed_whole_then_given_back_every_cpu(process_tree):
    tasks = replica_tasks(process_tree.pid)
    children = {
        int(c)
        for t in os.listdir(f"/proc/{process_tree.pid}/task")
        for c in Path(f"/proc/{process_tree.pid}/task/{t}/children").read_text().split()
    }
    assert len(children) == 1 and len(tasks) == 4 and process_tree.pid in tasks and children <= set(tasks)
    cpus = usable_cpus()
    assert set(cpus) == allowed(0)
    first = cpus[:1]
    assert set_tasks_affinity(tasks, first) == 4
    assert all(allowed(t) == set(first) for t in tasks)
    assert set_tasks_affinity([2**22 + 12345], first) == 0  # a thread that is gone is skipped, not an error

    placement = CpuPlacement()
    if len(cpus) < 2:  # one CPU: placement is off and leaves the tree alone
        assert not placement.enabled
        placement.update([("m-1", process_tree.pid, 1)])
        assert placement.placed == {}
        return
    assert placement.enabled
    set_tasks_affinity(tasks, cpus)
    placement.update([("m-1", process_tree.pid, 1)])
    assert placement.placed == {"m-1": (cpus[0],)}
    assert all(allowed(t) == {cpus[0]} for t in tasks)
    placement.update([])  # no longer busy: every CPU again
    assert placement.placed == {} and all(allowed(t) == set(cpus) for t in tasks)


def test_pin_busy_is_a_checked_setting():
    config = load_config({"dev": {"pin-busy": False, "modules": {"hello": {"pin-busy": True}}}})
    assert config.defaults.pin_busy is False and config.for_module("hello").pin_busy is True
    assert load_config({}).defaults.pin_busy is True
    with pytest.raises(ConfigError, match=r"pin-busy must be true or false, not 'yes'"):
        load_config({"dev": {"pin-busy": "yes"}})


# -- through cmfleet dev -------------------------------------------------------------------------------------


def test_cmfleet_dev_keeps_each_busy_replica_on_its_own_cpu_and_frees_it_when_idle(tmp_path):
    cpus = usable_cpus()
    root = copy_fleet(tmp_path / "repo")
    rt = start_runtime(root, ["basic"], replicas="2:2", concurrency=1)
    client = httpx.Client(base_url=rt.url, timeout=60)
    try:
        wait_for(lambda: len(ready_replicas(client, "basic")) == 2, what="2 replicas ready")
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=rt.url, timeout=60) as c:
                while not stop.is_set():
                    assert c.post("/api/modules/basic/functions/add", json={"x": 1, "y": 2}).json() == 3

        clients = [threading.Thread(target=load) for _ in range(4)]
        for t in clients:
            t.start()
        try:
            if len(cpus) >= 2:
                placed = wait_for(
                    lambda: (reps := ready_replicas(client, "basic")) and all(r["cpus"] for r in reps) and reps,
                    what="both busy replicas placed",
                )
                assert sorted(len(r["cpus"]) for r in placed) == [1, 1]
                assert placed[0]["cpus"] != placed[1]["cpus"]  # two busy replicas, two CPUs: one each
                for r in placed:  # the real affinity of every thread of the replica and its SDK worker
                    tasks = replica_tasks(r["pid"])
                    assert len(tasks) >= 2 and all(allowed(t) == set(r["cpus"]) for t in tasks)
            else:
                assert all(r["cpus"] is None for r in ready_replicas(client, "basic"))
        finally:
            stop.set()
            for t in clients:
                t.join()
        idle = wait_for(
            lambda: (reps := ready_replicas(client, "basic")) and all(r["cpus"] is None for r in reps) and reps,
            what="idle replicas given back every CPU",
        )
        for r in idle:
            assert all(allowed(t) == set(cpus) for t in replica_tasks(r["pid"]))
    finally:
        client.close()
        rt.close()


def test_pin_busy_false_leaves_busy_replicas_to_the_kernel(tmp_path):
    root = copy_fleet(tmp_path / "repo", "[tool.cmfleet.dev.modules.basic]\npin-busy = false")
    rt = start_runtime(root, ["basic"], replicas="1:1")
    client = httpx.Client(base_url=rt.url, timeout=60)
    try:
        (replica,) = wait_for(lambda: ready_replicas(client, "basic"), what="a replica ready")
        until = time.monotonic() + 1.5  # three of the manager's ticks with the replica busy
        while time.monotonic() < until:
            assert client.post("/api/modules/basic/functions/add", json={"x": 2, "y": 1}).json() == 3
        assert rt.call(lambda: rt.runtime.manager.placement.placed) == {}
        assert ready_replicas(client, "basic")[0]["cpus"] is None
        assert all(allowed(t) == set(usable_cpus()) for t in replica_tasks(replica["pid"]))
    finally:
        client.close()
        rt.close()


def test_a_placement_failure_turns_placement_off_and_the_manager_keeps_scaling(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    rt = start_runtime(root, ["basic"], replicas="0:1", concurrency=1, idle_timeout=1.0)
    client = httpx.Client(base_url=rt.url, timeout=60)
    try:
        manager = rt.runtime.manager
        assert client.post("/api/modules/basic/functions/add", json={"x": 1, "y": 2}).json() == 3
        (replica,) = wait_for(lambda: ready_replicas(client, "basic"), what="a replica ready")
        placeable = len(usable_cpus()) >= 2
        if placeable:  # first placed while busy, so that turning placement off has a placement to undo
            stop = threading.Event()

            def load() -> None:
                with httpx.Client(base_url=rt.url, timeout=60) as c:
                    while not stop.is_set():
                        assert c.post("/api/modules/basic/functions/add", json={"x": 1, "y": 1}).json() == 2

            busy = threading.Thread(target=load)
            busy.start()
            try:
                wait_for(lambda: rt.call(lambda: manager.placement.placed), what="the busy replica placed")
                assert all(len(allowed(t)) == 1 for t in replica_tasks(replica["pid"]))
            finally:
                stop.set()
                busy.join()

        def broken(busy):
            raise RuntimeError("no /proc here")

        rt.call(lambda: setattr(manager.placement, "update", broken))
        assert client.post("/api/modules/basic/functions/add", json={"x": 1, "y": 2}).json() == 3
        wait_for(lambda: not rt.call(lambda: manager.placement.enabled), what="placement turned off")
        # the replica placed before the failure has every CPU back, not only the replicas started after it
        assert rt.call(lambda: manager.placement.placed) == {}
        assert all(allowed(t) == set(usable_cpus()) for t in replica_tasks(replica["pid"]))
        lines = client.get("/api/logs", params={"module": "cmfleet"}).text
        assert "CPU placement of busy replicas turned off: RuntimeError('no /proc here')" in lines
        # the same tick still scales: the idle replica above MIN 0 is stopped
        wait_for(lambda: not ready_replicas(client, "basic"), what="scale to zero after the failure")
        assert client.post("/api/modules/basic/functions/add", json={"x": 2, "y": 2}).json() == 4
    finally:
        client.close()
        rt.close()
