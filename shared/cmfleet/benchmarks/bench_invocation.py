"""Invocation: ``hello.add`` through ``cmfleet dev`` beside functions-framework on gunicorn (the peer), both at
their defaults, in many short interleaved rounds; a direct call in process for scale; the scaling run of a 200 ms
I/O-bound function; and (full mode) a CPU profile of the runtime process.

Every round runs each server in turn (the order alternating round by round, so background load and warm caches hit
both alike): first ``CLIENTS`` concurrent clients (threads, each its own keep-alive ``http.client`` connection),
then sequential calls over one keep-alive connection. Each round gives p50 / p95 / p99 latency, jobs/s with 1 and
with ``CLIENTS`` clients, and CPU: the ``cmfleet dev`` process alone (runtime and gateway), its whole process tree
(runtime + every replica process, the SDK's worker children included) and the peer's whole server (gunicorn
master + workers), from ``/proc/<pid>/stat`` (user + system). The ratios reported are the median of the per-round
ratios, with their spread. No two calls send the same bytes: every body carries its own number (``x``), so does an
``X-Request-Id`` header, and every answer is checked, so no server can answer or parse from a copy of a previous
request.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    HERE,
    BenchError,
    Figure,
    Section,
    Spread,
    at_least,
    at_most,
    descendants,
    figure_table,
    fmt,
    loadavg,
    percentile,
    process_cpu,
    profile_groups,
    summarize_profile,
    tree_cpu,
    wait_until,
)
from devserver import SLEEP_S, Client, DevServer, build_fleet, sleep_module
from peer import PeerServer, ensure_venv, versions

ADD_PATH = "/api/modules/hello/functions/add"
CLIENTS = 8  # concurrent clients of the throughput run
DEV_ARGS = ("--no-reload",)  # cmfleet dev's defaults otherwise (replicas, concurrency, environments)
P50_LIMIT, P95_LIMIT, P99_LIMIT = 3.0, 4.0, 6.0  # x functions-framework, median of per-round ratios
THROUGHPUT_LIMIT = 0.5  # x functions-framework's jobs/s with CLIENTS clients
CPU_LIMIT_MS = 0.3  # the runtime process's CPU per job
SCALING_LIMIT = 0.9  # x ideal, up to 16 slots


@dataclass
class Sizes:
    rounds: int
    calls: int  # sequential calls per round and server
    concurrent_calls: int  # calls per round and server from CLIENTS clients
    warmup: int  # calls per server before the first round (sequential, then as many from CLIENTS clients)
    direct_calls: int  # in-process calls per run
    direct_runs: int
    scaling: list[tuple[int, int]]  # (replicas, concurrency)
    waves: int  # jobs per slot in a scaling run
    scaling_runs: int
    profile: bool


FULL = Sizes(25, 400, 800, 400, 20000, 5, [(1, 1), (1, 4), (2, 1), (2, 4), (4, 1), (4, 4)], 12, 5, True)
SMOKE = Sizes(2, 30, 32, 10, 200, 1, [(1, 1), (1, 2)], 2, 1, False)


def add_body(n: int) -> bytes:
    return b'{"x": %d, "y": 2}' % n


def add_answer(n: int) -> int:
    return n + 2


def sleep_body(n: int) -> bytes:
    return json.dumps({"n": n}).encode()


def add_call(client: Client, path: str, n: int) -> None:
    """One ``add`` call with its own body; the answer must be this call's."""
    status, body = client.post(path, add_body(n), call_id=n)
    if status != 200 or body.strip() != str(add_answer(n)).encode():
        raise BenchError(f"add (x={n}) answered {status}: {body[:300]!r}")


@dataclass
class Round:
    """One round of one server: latencies (ms), jobs/s, and CPU seconds over its sequential calls."""

    p50: float
    p95: float
    p99: float
    rate1: float
    rate_n: float
    cpu: dict[str, float]
    calls: int
    load: float


@dataclass
class Served:
    """One server under test: where it listens, how its CPU is read, its rounds."""

    name: str
    port: int
    path: str
    cpu: Callable[[], dict[str, float]]
    rounds: list[Round] = field(default_factory=list)
    next_n: int = 1  # the number the next call carries (never reused)
    client: Client | None = None

    def numbers(self, count: int) -> range:
        first = self.next_n
        self.next_n += count
        return range(first, first + count)

    def sequential(self, count: int) -> tuple[list[float], float]:
        """``count`` sequential calls over the server's keep-alive connection: latencies (s) and wall time."""
        if self.client is None:
            self.client = Client(self.port)
        self.client.reconnect()  # the connection sat idle during the other server's turn; servers close idle ones
        clock, times = time.perf_counter, []
        started = clock()
        for n in self.numbers(count):
            t = clock()
            add_call(self.client, self.path, n)
            times.append(clock() - t)
        return times, clock() - started

    def concurrent(self, count: int) -> float:
        return concurrent_run(self.port, self.path, self.numbers(count), CLIENTS, add_body, add_answer)

    def warm_up(self, count: int) -> None:
        self.sequential(count)
        self.concurrent(count)

    def one_round(self, sizes: Sizes) -> None:
        rate_n = self.concurrent(sizes.concurrent_calls)
        before = self.cpu()
        times, wall = self.sequential(sizes.calls)
        after = self.cpu()
        self.rounds.append(
            Round(
                percentile(times, 0.5) * 1000,
                percentile(times, 0.95) * 1000,
                percentile(times, 0.99) * 1000,
                sizes.calls / wall,
                rate_n,
                {k: after[k] - before[k] for k in after},
                sizes.calls,
                loadavg()[0],
            )
        )

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.rounds)

    def cpu_ms_per_job(self, key: str) -> tuple[float, Spread]:
        """CPU ms per job over all rounds (total CPU / total calls: the clock-tick granularity averages out) and
        the per-round values."""
        total = sum(r.cpu[key] for r in self.rounds) * 1000 / sum(r.calls for r in self.rounds)
        return total, Spread([r.cpu[key] * 1000 / r.calls for r in self.rounds])

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def ratios(a: Served, b: Served, attr: str) -> Spread:
    """Per-round ratios of ``a`` to ``b`` (rounds pair up: both ran in the same round)."""
    return Spread([getattr(x, attr) / getattr(y, attr) for x, y in zip(a.rounds, b.rounds, strict=True)])


def concurrent_run(
    port: int, path: str, numbers: range, threads: int, body: Callable[[int], bytes], expect: Callable[[int], Any]
) -> float:
    """Jobs/s for one call per number in ``numbers`` from ``threads`` concurrent clients, each its own keep-alive
    connection (connected before the clock starts); every call's body differs (it carries its number) and its
    answer is checked."""
    lock = threading.Lock()
    remaining = list(numbers)
    jobs = len(remaining)
    errors: list[str] = []
    start = threading.Barrier(threads + 1)

    def worker() -> None:
        client = Client(port, timeout=120)
        try:
            client.conn.connect()  # connected before the clock starts: the run times jobs, not TCP set-up
            start.wait(30)
            while True:
                with lock:
                    if not remaining or errors:
                        return
                    n = remaining.pop()
                status, answer = client.post(path, body(n), call_id=n)
                if status != 200 or json.loads(answer) != expect(n):
                    with lock:
                        errors.append(f"{path} call {n}: {status} {answer[:200]!r}")
        except Exception as exc:  # noqa: BLE001 - reported below, the run is void
            with lock:
                errors.append(f"{path}: {exc!r}")
        finally:
            client.close()

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    start.wait(30)
    began = time.perf_counter()
    for t in pool:
        t.join(300)
    wall = time.perf_counter() - began
    if errors or any(t.is_alive() for t in pool):
        raise BenchError(f"concurrent run failed: {errors[:3] or 'a client thread hung'}")
    return jobs / wall


@dataclass
class SlotUse:
    """How the slots spent the last run, from the runtime's job records (``GET /api/jobs``)."""

    hold_ms: float  # median time a replica held a job: handed out -> result in (the sleep + the SDK's overhead)
    busy: float  # share of slots x wall time during which a slot held a job


def slot_use(dev: DevServer, module: str, jobs: int, slots: int) -> SlotUse:
    records = [j for j in dev.api(f"/api/jobs?module={module}&limit={jobs}") if j["started_at"] and j["finished_at"]]
    if not records:
        raise BenchError(f"no finished job records for {module}")
    held = [j["finished_at"] - j["started_at"] for j in records]
    window = max(j["finished_at"] for j in records) - min(j["started_at"] for j in records)
    return SlotUse(percentile(held, 0.5) * 1000, sum(held) / (slots * window) if window > 0 else 0.0)


def measure_scaling(root: Path, sizes: Sizes, logs: Path) -> list[tuple[int, int, Figure, SlotUse]]:
    modules = [sleep_module(r, c) for r, c in sizes.scaling]
    out = []
    with DevServer(root, modules, "--no-reload", "--timeout", "120", log=logs / "dev-scaling.log") as dev:
        dev.wait_ready()
        for replicas, concurrency in sizes.scaling:
            slots = replicas * concurrency
            module = sleep_module(replicas, concurrency)
            threads = max(2 * slots, slots + 2)
            path = f"/api/modules/{module}/functions/wait"

            def wave(jobs: int, path: str = path, threads: int = threads) -> float:
                return concurrent_run(dev.port, path, range(jobs), threads, sleep_body, lambda n: n)

            wave(slots)  # warm-up: one wave
            fig = Figure(f"{replicas} replica(s) x concurrency {concurrency}", "jobs/s")
            for _ in range(sizes.scaling_runs):
                fig.samples.append(wave(slots * sizes.waves))
            out.append((replicas, concurrency, fig, slot_use(dev, module, slots * sizes.waves, slots)))
    return out


@dataclass
class Direct:
    p50: Figure
    rate: Figure


def measure_direct(hello_dir: Path, sizes: Sizes) -> tuple[Direct, Direct]:
    """``ModuleRegistry.invoke`` (the SDK's handle_job path, hooks included) and the bare function, in process."""
    from cmfleet.registry import load_registry

    registry = load_registry(hello_dir)
    bare_fn = registry.get("add").func
    outcome = registry.invoke("add", {"x": 1, "y": 2})
    if not outcome.ok or outcome.value != 3:
        raise BenchError(f"registry.invoke('add') gave {outcome}")
    events = [{"x": n, "y": 2} for n in range(sizes.direct_calls)]
    out = []
    for label, call in (
        ("registry.invoke (in process)", lambda e: registry.invoke("add", e)),
        ("bare function (in process)", lambda e: bare_fn({}, e)),
    ):
        fig, rate = Figure(label, "ms"), Figure(label, "jobs/s")
        clock = time.perf_counter
        for _ in range(sizes.direct_runs):
            times = []
            started = clock()
            for event in events:
                t = clock()
                call(event)
                times.append(clock() - t)
            wall = clock() - started
            fig.samples.append(percentile(times, 0.5) * 1000)
            rate.samples.append(len(events) / wall)
        out.append(Direct(fig, rate))
    return out[0], out[1]


RUNTIME, REPLICAS, WHOLE, PEER = (
    "cmfleet dev process alone (runtime + gateway)",
    "its replica processes (official SDK, workers included)",
    "cmfleet side, whole (runtime + replicas)",
    "functions-framework, whole server (gunicorn master + workers)",
)


def measure_http(root: Path, sizes: Sizes, logs: Path) -> tuple[Served, Served, str, str, dict[str, str]]:
    """``cmfleet dev`` and functions-framework, both running, in interleaved rounds."""
    python = ensure_venv()
    dev = DevServer(root, ["hello"], *DEV_ARGS, log=logs / "dev-hello.log")
    with contextlib.ExitStack() as stack:
        stack.enter_context(dev)
        peer = stack.enter_context(PeerServer(python, root / "modules" / "hello", logs / "peer", log=logs / "peer.log"))
        peer.wait_ready()
        dev.wait_ready()

        def dev_cpu() -> dict[str, float]:
            own, whole = process_cpu(dev.pid), tree_cpu(dev.pid)
            return {RUNTIME: own, REPLICAS: whole - own, WHOLE: whole}

        dev_served = Served("cmfleet dev", dev.port, ADD_PATH, dev_cpu)
        peer_served = Served("functions-framework (gunicorn)", peer.port, "/", lambda: {PEER: tree_cpu(peer.pid)})
        stack.callback(dev_served.close)
        stack.callback(peer_served.close)
        for served in (dev_served, peer_served):
            served.warm_up(sizes.warmup)  # the concurrent part also lets cmfleet dev scale up before any round

        def settled() -> bool:  # a replica started by the warm-up must not spend its start-up CPU in round 1
            mod = next(m for m in dev.api("/api/modules") if m["name"] == "hello")
            return all(r["state"] in ("ready", "stopped", "crashed") for r in mod["replicas"])

        wait_until(settled, 120, "hello's replicas to settle after the warm-up", dev)
        for i in range(sizes.rounds):
            order = (dev_served, peer_served) if i % 2 == 0 else (peer_served, dev_served)
            for served in order:
                served.one_round(sizes)
        mod = next(m for m in dev.api("/api/modules") if m["name"] == "hello")
        setup = (
            f"replicas {mod['min_replicas']}:{mod['max_replicas']}, concurrency {mod['concurrency']}; "
            f"{len(mod['replicas'])} replica(s) at the end, {1 + len(descendants(dev.pid))} processes in its tree, "
            "each replica's CPUs at the end (a busy replica's processes are kept on CPUs of their own, pin-busy): "
            + ", ".join(f"{r['id']} {','.join(map(str, r.get('cpus') or [])) or 'any'}" for r in mod["replicas"])
            + "; "
            f"the peer's server {1 + len(descendants(peer.pid))} processes"
        )
        last_dev = dev_served.rounds[-1]
        parts = call_parts(dev, last_dev.p50, sizes.calls)
    return dev_served, peer_served, parts, setup, versions(python)


def profile_runtime(root: Path, calls: int, logs: Path) -> Path:
    """cProfile (CPU clock) of the ``cmfleet dev`` process's main thread, the event loop, over ``calls`` calls."""
    out = logs / "runtime.prof"
    prefix = [sys.executable, str(HERE / "cpuprofile.py"), "--on-signal", str(out)]
    profiled = DevServer(
        root, ["hello"], "--replicas", "1:1", "--no-reload", log=logs / "dev-profile.log", prefix=prefix
    )
    with profiled:
        profiled.wait_ready()
        client = Client(profiled.port)
        for n in range(50):  # warm-up, not profiled
            add_call(client, ADD_PATH, n)
        os.kill(profiled.pid, signal.SIGUSR1)
        for n in range(50, 50 + calls):
            add_call(client, ADD_PATH, n)
        os.kill(profiled.pid, signal.SIGUSR2)
        client.close()
    if not out.exists():
        raise BenchError(f"cProfile wrote no {out}:\n{profiled.log_tail()}")
    return out


def call_parts(dev: DevServer, client_p50_ms: float, calls: int) -> str:
    """Where a call's time goes, from the runtime's job records of the last sequential calls (p50 of each part);
    a runtime whose job records cannot be read gets a line saying so instead of a table."""
    try:
        jobs = dev.api(f"/api/jobs?module=hello&limit={calls}")
        records = [j for j in jobs if j.get("started_at") and j.get("finished_at")]
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return f"(the runtime's job records could not be read: {exc})"
    if not records:
        return "(the runtime returned no finished job records for hello)"
    queued = percentile([j["started_at"] - j["submitted_at"] for j in records], 0.5) * 1000
    held = percentile([j["finished_at"] - j["started_at"] for j in records], 0.5) * 1000
    inside = percentile([j["finished_at"] - j["submitted_at"] for j in records], 0.5) * 1000
    return "\n".join(
        [
            "| part of a call (the last round's sequential calls, p50 of each) | ms |",
            "|---|---:|",
            f"| submitted -> handed to the replica's waiting long-poll (runtime) | {fmt(queued)} |",
            f"| handed out -> result posted back (the replica: SDK hand-off, function, result POST) | {fmt(held)} |",
            f"| submitted -> result, inside the runtime | {fmt(inside)} |",
            f"| client latency (p50) minus the above: HTTP to and from the gateway | {fmt(client_p50_ms - inside)} |",
        ]
    )


def round_table(dev: Served, peer: Served) -> str:
    """Every round, so a change along the run (a tail that appears after some thousands of calls) shows."""
    rows = [
        "| round | cmfleet dev p50 / p95 / p99 (ms) | peer p50 / p95 / p99 (ms) | p95 ratio "
        f"| jobs/s, {CLIENTS} clients: cmfleet dev / peer | load (1 min) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for i, (d, p) in enumerate(zip(dev.rounds, peer.rounds, strict=True), 1):
        rows.append(
            f"| {i} | {fmt(d.p50)} / {fmt(d.p95)} / {fmt(d.p99)} | {fmt(p.p50)} / {fmt(p.p95)} / {fmt(p.p99)} "
            f"| {d.p95 / p.p95:.2f}x | {fmt(d.rate_n)} / {fmt(p.rate_n)} | {max(d.load, p.load):.2f} |"
        )
    return "\n".join(rows)


def run(smoke: bool, workdir: Path) -> tuple[Section, dict[str, str]]:
    """The Invocation section and the peer's versions."""
    sizes = SMOKE if smoke else FULL
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    root = build_fleet(workdir / "fleet", sizes.scaling)
    invoke, bare = measure_direct(root / "modules" / "hello", sizes)
    dev, peer, parts, setup, peer_versions = measure_http(root, sizes, logs)
    scaling = measure_scaling(root, sizes, logs)

    section = Section("Invocation")
    section.add(
        f"`hello.add` through `cmfleet dev hello {' '.join(DEV_ARGS)}` (its defaults otherwise: {setup}; the "
        "official SDK unchanged in the replica) beside `functions-framework --target add` (gunicorn, its defaults) "
        f"serving the same function from `modules/hello/app.py`. {sizes.rounds} rounds; in each, each server in "
        f"turn (the order alternating by round) gets {sizes.concurrent_calls} calls from {CLIENTS} concurrent "
        f"clients (threads, each its own keep-alive `http.client` connection), then {sizes.calls} sequential calls "
        f"over one keep-alive connection; {sizes.warmup} sequential and {sizes.warmup} concurrent warm-up calls "
        "before the first round. Every call sends a different body (`x` is the call's number) and header block "
        "(`X-Request-Id: <number>`), and its answer is checked. Latency percentiles and CPU come from the "
        "sequential calls.",
    )
    ratio_rows = [
        "| cmfleet dev / functions-framework | median of per-round ratios | min | q1 | q3 | max | rounds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    spreads = {}
    for label, attr in (
        ("p50 latency", "p50"),
        ("p95 latency", "p95"),
        ("p99 latency", "p99"),
        ("throughput, 1 client", "rate1"),
        (f"throughput, {CLIENTS} clients", "rate_n"),
    ):
        spreads[attr] = ratios(dev, peer, attr)
        ratio_rows.append(f"| {label} | {spreads[attr].cells()} |")
    section.add("**Ratios, round by round**", "\n".join(ratio_rows))
    abs_rows = [
        "| median over rounds | cmfleet dev | functions-framework (gunicorn) |",
        "|---|---:|---:|",
        *(
            f"| {label} | {fmt(dev.median(attr))} | {fmt(peer.median(attr))} |"
            for label, attr in (
                ("p50 (ms)", "p50"),
                ("p95 (ms)", "p95"),
                ("p99 (ms)", "p99"),
                ("jobs/s, 1 client", "rate1"),
                (f"jobs/s, {CLIENTS} clients", "rate_n"),
            )
        ),
    ]
    section.add(
        "**The servers' own figures**",
        "\n".join(abs_rows),
        "In process, for scale (p50 of each run; the floor below any HTTP server):",
        figure_table([bare.p50, invoke.p50]),
    )
    cpu = {key: dev.cpu_ms_per_job(key) for key in (RUNTIME, REPLICAS, WHOLE)}
    cpu[PEER] = peer.cpu_ms_per_job(PEER)
    peer_total = cpu[PEER][0]
    cpu_rows = [
        "| CPU per job (ms) | all rounds | per round: median | min | q1 | q3 | max | rounds | ratio to the peer's "
        "whole server |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, (total, spread) in cpu.items():
        cpu_rows.append(f"| {key} | {fmt(total)} | {spread.cells()} | {total / peer_total:.2f}x |")
    section.add(
        "**CPU per job** (`/proc/<pid>/stat` user + system over each round's sequential calls; *all rounds* is the "
        "total CPU over the total calls, which averages out the 10 ms clock tick; the cmfleet side's process tree "
        "is read afresh at each reading, so a replica started mid-run is counted)",
        "\n".join(cpu_rows),
    )
    section.add("**Round by round**", round_table(dev, peer))
    section.add(
        "Where a `cmfleet dev` call's time goes (the runtime's job records: `submitted_at`, `started_at`, "
        "`finished_at`):",
        parts,
    )

    slots_rows = [
        "| replicas x concurrency | slots | ideal jobs/s | median | min | max | runs | median / ideal "
        "| replica holds a job (ms, p50) | slots busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    scaling_targets = []
    for replicas, concurrency, fig, use in scaling:
        slots = replicas * concurrency
        ideal = slots / SLEEP_S
        slots_rows.append(
            f"| {replicas} x {concurrency} | {slots} | {fmt(ideal)} | {fmt(fig.median)} | {fmt(fig.min)} | "
            f"{fmt(fig.max)} | {len(fig.samples)} | {fig.median / ideal:.3f} | {fmt(use.hold_ms)} | {use.busy:.1%} |"
        )
        if slots <= 16:
            scaling_targets.append(
                at_least(
                    f"scaling {replicas} x {concurrency} ({slots} slots) vs ideal",
                    fig.median / ideal,
                    SCALING_LIMIT,
                    "x ideal",
                )
            )
    section.add(
        f"### Scaling\n\nA function that sleeps {SLEEP_S * 1000:.0f} ms (I/O-bound), each configuration its own "
        f'module with `replicas = "R:R"` and `concurrency = C`; per run {sizes.waves} jobs per slot from '
        "2 x slots concurrent keep-alive clients (never fewer than slots + 2, so every slot always has a job "
        f"waiting), {sizes.scaling_runs} runs; one warm-up wave first. Ideal = slots / 0.2 s. From the runtime's job "
        "records of the last run: how long a replica held a job (handed out to result in: the sleep plus the "
        "SDK's own overhead) and how busy the slots were (held time / (slots x wall)).",
        "\n".join(slots_rows),
    )
    runtime_total = cpu[RUNTIME][0]
    section.targets = [
        at_most(
            "hello.add p50, cmfleet dev / functions-framework (median of rounds)", spreads["p50"].median, P50_LIMIT, "x"
        ),
        at_most(
            "hello.add p95, cmfleet dev / functions-framework (median of rounds)", spreads["p95"].median, P95_LIMIT, "x"
        ),
        at_most(
            "hello.add p99, cmfleet dev / functions-framework (median of rounds)", spreads["p99"].median, P99_LIMIT, "x"
        ),
        at_least(
            f"throughput with {CLIENTS} clients, cmfleet dev / functions-framework (median of rounds)",
            spreads["rate_n"].median,
            THROUGHPUT_LIMIT,
            "x",
        ),
        at_most("runtime process's own CPU per job (all rounds)", runtime_total, CPU_LIMIT_MS, "ms"),
        *scaling_targets,
    ]
    if sizes.profile:  # what dominates the runtime's CPU, missed or not
        profile = profile_runtime(root, sizes.calls * 5, logs)
        top = ", ".join(f"{k} {v:.0%}" for k, v in profile_groups(profile)[:4])
        section.add(
            "### Where the runtime's CPU goes\n\n"
            "cProfile with a CPU clock (`benchmarks/cpuprofile.py`) around `cmfleet dev hello --replicas 1:1 "
            f"--no-reload`, main thread (the event loop: runtime protocol and gateway), over {sizes.calls * 5} "
            "sequential calls of `add` after start-up and warm-up; shares of the profiled own time (cProfile inflates "
            f"Python-level calls, so read the shares, not the absolute times). Largest: {top}.",
            summarize_profile(profile, per=sizes.calls * 5),
        )
    return section, peer_versions
