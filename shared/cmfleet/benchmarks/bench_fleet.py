"""A fleet of fifty modules: ``cmfleet dev`` (every module, as typed without names) on a generated repository of 50
modules and 10 shared libraries (the discovery benchmark's generator).

* first-ever start: a fresh repository, so every module's venv is new (uv's own cache is the user's, shared, as on
  a developer's machine), from the command to every module serving (``GET /api/modules``: each module's minimum
  replicas ready and its schemas posted);
* warm start: the same with the venvs left by the previous start;
* memory of the whole process tree (the ``cmfleet dev`` process, every replica and the SDK's worker children) when
  idle: at the defaults, and with scale to zero (``--replicas 0:1 --idle-timeout 1``);
* cold-start latency: a call to a module scaled to zero, from the request to its answer (the replica started,
  imported, polled and ran the job), on several modules in turn, each scaled back to zero first.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from bench_discovery import generate
from benchlib import BenchError, Figure, Memory, Section, at_most, figure_table, fmt, tree_memory, wait_until
from devserver import Client, DevServer

MEMORY_LIMIT_MIB = 4096.0  # a fifty-module fleet at its defaults on a laptop
STOPPED = ("stopped", "crashed")


def sizes(smoke: bool) -> tuple[int, int, int, int, float]:
    """modules, shared libraries, warm starts, cold-start calls, seconds to let an idle fleet settle."""
    return (3, 2, 1, 2, 1.0) if smoke else (50, 10, 3, 5, 10.0)


def idle_memory(dev: DevServer, settle: float) -> Memory:
    """The process tree's memory once idle: the median of three readings a second apart, after ``settle`` s."""
    time.sleep(settle)
    readings = []
    for _ in range(3):
        readings.append(tree_memory(dev.pid))
        time.sleep(1.0)
    return Memory(
        statistics.median(m.rss_mib for m in readings),
        statistics.median(m.pss_mib for m in readings),
        round(statistics.median(m.processes for m in readings)),
    )


def timed_start(root: Path, names: list[str], log: Path, timeout: float, *args: str) -> tuple[DevServer, float]:
    """``cmfleet dev --no-reload ARGS`` started and waited for until every module serves; the seconds it took."""
    started = time.perf_counter()
    dev = DevServer(root, [], "--no-reload", *args, log=log, expect=names)
    try:
        dev.wait_ready(timeout)
    except BaseException:
        dev.stop()
        raise
    return dev, time.perf_counter() - started


def live_replicas(dev: DevServer) -> dict[str, int]:
    return {m["name"]: sum(r["state"] not in STOPPED for r in m["replicas"]) for m in dev.api("/api/modules")}


def cold_call(dev: DevServer, module: str, n: int) -> float:
    """Seconds for one call to ``module`` while it has no replica; then waits until it is back at zero."""
    if live_replicas(dev).get(module):
        raise BenchError(f"{module} was not scaled to zero before its cold call")
    client = Client(dev.port, timeout=300)
    try:
        started = time.perf_counter()
        status, body = client.post(f"/api/modules/{module}/functions/add", json.dumps({"x": n, "y": 2}).encode())
        seconds = time.perf_counter() - started
    finally:
        client.close()
    if status != 200 or json.loads(body) != n + 2:
        raise BenchError(f"{module}.add answered {status}: {body[:300]!r}")
    wait_until(lambda: not live_replicas(dev).get(module), 120, f"{module} to scale back to zero", dev)
    return seconds


def run(smoke: bool, workdir: Path) -> Section:
    n_modules, n_libs, warm_runs, cold_calls, settle = sizes(smoke)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    root = generate(workdir / "fleet", n_modules, libs=n_libs)
    names = [f"m{i}" for i in range(n_modules)]
    timeout = 300.0 if smoke else 3600.0

    first = Figure("first-ever start (venvs new) -> every module serving", "s")
    warm = Figure("warm start (venvs exist) -> every module serving", "s")
    dev, seconds = timed_start(root, names, logs / "dev-first.log", timeout)
    first.samples.append(seconds)
    with dev:
        defaults = next(m for m in dev.api("/api/modules") if m["name"] == names[0])
        at_defaults = idle_memory(dev, settle)
    for i in range(warm_runs):
        dev, seconds = timed_start(root, names, logs / f"dev-warm-{i}.log", timeout)
        warm.samples.append(seconds)
        dev.stop()

    cold = Figure("call to a module scaled to zero -> answer", "s")
    scale_args = ("--replicas", "0:1", "--idle-timeout", "1")
    dev = DevServer(root, [], "--no-reload", *scale_args, log=logs / "dev-zero.log", expect=names)
    with dev:
        wait_until(lambda: set(names) <= set(live_replicas(dev)), timeout, "every module listed", dev)
        at_zero = idle_memory(dev, settle)
        if any(live_replicas(dev).values()):
            raise BenchError(f"replicas running with --replicas 0:1 while idle: {live_replicas(dev)}")
        for i in range(cold_calls):
            cold.samples.append(cold_call(dev, names[i % n_modules], i))

    section = Section("A fleet of fifty modules")
    section.add(
        f"A generated repository of {n_modules} modules and {n_libs} shared libraries (each module imports 0-2 "
        "of them; the discovery benchmark's generator), `cmfleet dev --no-reload` with no module names (every "
        f"module). Its defaults: replicas {defaults['min_replicas']}:{defaults['max_replicas']}, concurrency "
        f"{defaults['concurrency']}. Start = from the command to every module having its minimum replicas ready and "
        f"its schemas posted (`GET /api/modules`, polled every 0.1 s). First-ever start once; warm start {warm_runs} "
        "time(s), each a new `cmfleet dev` on the same repository.",
        figure_table([first, warm]),
    )
    mem_rows = [
        "| idle fleet | RSS summed (MiB) | PSS summed (MiB) | processes | per module, RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
        f"| defaults ({defaults['min_replicas']}:{defaults['max_replicas']}) | {fmt(at_defaults.rss_mib)} | "
        f"{fmt(at_defaults.pss_mib)} | {at_defaults.processes} | {fmt(at_defaults.rss_mib / n_modules)} |",
        f"| scale to zero (`{' '.join(scale_args)}`) | {fmt(at_zero.rss_mib)} | {fmt(at_zero.pss_mib)} | "
        f"{at_zero.processes} | {fmt(at_zero.rss_mib / n_modules)} |",
    ]
    section.add(
        f"**Memory**, the whole process tree of `cmfleet dev` once idle ({settle:g} s after start, median of three "
        "readings a second apart), from `/proc/<pid>/status` (RSS: shared pages counted in every process) and "
        "`/proc/<pid>/smaps_rollup` (PSS: shared pages split among their sharers; the better sum).",
        "\n".join(mem_rows),
        f"**Cold start** with `{' '.join(scale_args)}`: one call to a module with no replica, {cold_calls} calls on "
        "different modules (each back at zero first), from the request to the answer.",
        figure_table([cold]),
    )
    section.targets = [
        at_most(
            f"{n_modules}-module fleet idle at the defaults, RSS summed",
            at_defaults.rss_mib,
            MEMORY_LIMIT_MIB,
            "MiB",
        )
    ]
    return section
