"""Invocation: ``hello.add`` through ``cmfleet dev`` beside a direct call and functions-framework on gunicorn;
the runtime's own CPU per job; and the scaling run of a 200 ms I/O-bound function.

Every HTTP figure comes from a stdlib ``http.client`` keep-alive connection on loopback, sequential calls (one in
flight), so latency is the server's and the client's share is small and the same for both servers. CPU per job
comes from ``/proc/<pid>/stat`` (user + system) over the calls of a run: the ``cmfleet dev`` process (runtime and
gateway, one process) apart from its replica processes (the official SDK), and functions-framework's gunicorn
processes together.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    HERE,
    BenchError,
    Figure,
    Section,
    at_least,
    at_most,
    figure_table,
    fmt,
    percentile,
    process_cpu,
    profile_groups,
    ratio_lines,
    summarize_profile,
    tree_cpu,
)
from devserver import SLEEP_S, Client, DevServer, build_fleet, sleep_module
from peer import PeerServer, ensure_venv, versions

ADD_PATH = "/api/modules/hello/functions/add"
ADD_BODY = b'{"x": 1, "y": 2}'
P50_LIMIT = 3.2  # x functions-framework's p50
CPU_LIMIT_MS = 0.3  # runtime CPU per job
SCALING_LIMIT = 0.9  # x ideal, up to 16 slots


@dataclass
class Sizes:
    runs: int
    calls: int  # sequential HTTP calls per run
    warmup: int
    direct_calls: int
    scaling: list[tuple[int, int]]  # (replicas, concurrency)
    waves: int  # jobs per slot in a scaling run
    profile: bool


FULL = Sizes(5, 1000, 200, 20000, [(1, 1), (1, 4), (2, 1), (2, 4), (4, 1), (4, 4)], 12, True)
SMOKE = Sizes(1, 40, 10, 200, [(1, 1), (1, 2)], 2, False)


@dataclass
class Latency:
    """p50, p95 (ms) and jobs/s figures of one way of calling ``add``."""

    name: str
    p50: Figure = field(init=False)
    p95: Figure = field(init=False)
    rate: Figure = field(init=False)

    def __post_init__(self) -> None:
        self.p50 = Figure(self.name, "ms")
        self.p95 = Figure(self.name, "ms")
        self.rate = Figure(self.name, "jobs/s")

    def run(self, call: Callable[[], None], n: int) -> None:
        """``n`` sequential calls: one sample of each figure."""
        times = []
        clock = time.perf_counter
        started = clock()
        for _ in range(n):
            t = clock()
            call()
            times.append(clock() - t)
        wall = clock() - started
        self.p50.samples.append(percentile(times, 0.5) * 1000)
        self.p95.samples.append(percentile(times, 0.95) * 1000)
        self.rate.samples.append(n / wall)


def http_add(client: Client, path: str) -> Callable[[], None]:
    def call() -> None:
        status, body = client.post(path, ADD_BODY)
        if status != 200 or body.strip() != b"3":
            raise BenchError(f"add answered {status}: {body[:300]!r}")

    return call


def measure_direct(hello_dir: Path, sizes: Sizes) -> tuple[Latency, Latency]:
    """``ModuleRegistry.invoke`` (the SDK's handle_job path, hooks included) and the bare function, in process."""
    from cmfleet.registry import load_registry

    registry = load_registry(hello_dir)
    bare_fn = registry.get("add").func
    event = {"x": 1, "y": 2}
    outcome = registry.invoke("add", event)
    if not outcome.ok or outcome.value != 3:
        raise BenchError(f"registry.invoke('add') gave {outcome}")
    invoke, bare = Latency("registry.invoke (in process)"), Latency("bare function (in process)")

    def via_registry() -> None:
        registry.invoke("add", event)

    def direct() -> None:
        bare_fn({}, event)

    for _ in range(sizes.runs):
        invoke.run(via_registry, sizes.direct_calls)
        bare.run(direct, sizes.direct_calls)
    return invoke, bare


@dataclass
class Served:
    """One server under test: its client, path, CPU reading and the figures gathered."""

    name: str
    client: Client
    path: str
    cpu: Callable[[], dict[str, float]]
    latency: Latency = field(init=False)
    cpu_figs: dict[str, Figure] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.latency = Latency(self.name)

    def one_run(self, calls: int) -> None:
        call = http_add(self.client, self.path)
        self.client.reconnect()  # the other server's run left this connection idle; servers close idle ones
        call()
        before = self.cpu()
        self.latency.run(call, calls)
        after = self.cpu()
        for key in after:
            fig = self.cpu_figs.setdefault(key, Figure(key, "ms CPU/job"))
            fig.samples.append((after[key] - before[key]) * 1000 / calls)


def measure_interleaved(servers: list[Served], sizes: Sizes) -> None:
    """Warm up each server, then run them in turn, run by run, so background load hits them alike."""
    for served in servers:
        call = http_add(served.client, served.path)
        for _ in range(sizes.warmup):
            call()
    for _ in range(sizes.runs):
        for served in servers:
            served.one_run(sizes.calls)


def call_parts(dev: DevServer, client_p50_ms: float, calls: int) -> tuple[str, dict[str, float]]:
    """Where a call's time goes, from the runtime's job records of the last run (p50 of each part)."""
    records = [j for j in dev.api(f"/api/jobs?module=hello&limit={calls}") if j["started_at"] and j["finished_at"]]
    if not records:
        raise BenchError("no finished hello job records")
    queued = percentile([j["started_at"] - j["submitted_at"] for j in records], 0.5) * 1000
    held = percentile([j["finished_at"] - j["started_at"] for j in records], 0.5) * 1000
    inside = percentile([j["finished_at"] - j["submitted_at"] for j in records], 0.5) * 1000
    numbers = {"runtime": inside - held, "replica": held, "http": client_p50_ms - inside}
    table = "\n".join(
        [
            "| part of a call (last run, p50 of each) | ms |",
            "|---|---:|",
            f"| submitted -> handed to the replica's waiting long-poll (runtime) | {fmt(queued)} |",
            f"| handed out -> result posted back (the replica: SDK hand-off, function, result POST) | {fmt(held)} |",
            f"| submitted -> result, inside the runtime | {fmt(inside)} |",
            f"| client latency (p50) minus the above: HTTP to and from the gateway | {fmt(client_p50_ms - inside)} |",
        ]
    )
    return table, numbers


def measure_http(root: Path, sizes: Sizes, logs: Path) -> tuple[Served, Served, str, dict[str, float], dict[str, str]]:
    """``cmfleet dev`` and functions-framework, both running, measured in alternation."""
    python = ensure_venv()
    dev = DevServer(root, ["hello"], "--replicas", "1:1", "--no-reload", log=logs / "dev-hello.log")
    with contextlib.ExitStack() as stack:
        stack.enter_context(dev)
        peer = stack.enter_context(PeerServer(python, root / "modules" / "hello", logs / "peer", log=logs / "peer.log"))
        peer.wait_ready()
        dev.wait_ready()
        replicas = dev.replica_pids("hello")
        ff_name = "functions-framework (gunicorn)"
        dev_served = Served(
            "cmfleet dev (gateway)",
            stack.enter_context(contextlib.closing(Client(dev.port))),
            ADD_PATH,
            lambda: {
                "cmfleet dev runtime + gateway process": process_cpu(dev.pid),
                "its replica (official SDK, 2 processes)": sum(tree_cpu(p) for p in replicas),
            },
        )
        peer_served = Served(
            ff_name,
            stack.enter_context(contextlib.closing(Client(peer.port))),
            "/",
            lambda: {ff_name: tree_cpu(peer.pid)},
        )
        measure_interleaved([dev_served, peer_served], sizes)
        parts, part_ms = call_parts(dev, dev_served.latency.p50.samples[-1], sizes.calls)
    return dev_served, peer_served, parts, part_ms, versions(python)


def scaling_run(port: int, module: str, jobs: int, threads: int) -> float:
    """Jobs/s for ``jobs`` calls from ``threads`` concurrent keep-alive clients (enough to keep every slot busy)."""
    lock = threading.Lock()
    remaining = list(range(jobs))
    errors: list[str] = []
    start = threading.Barrier(threads + 1)
    path = f"/api/modules/{module}/functions/wait"

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
                status, body = client.post(path, json.dumps({"n": n}).encode())
                if status != 200 or json.loads(body) != n:
                    with lock:
                        errors.append(f"{module} job {n}: {status} {body[:200]!r}")
        except Exception as exc:  # noqa: BLE001 - reported below, the run is void
            with lock:
                errors.append(f"{module}: {exc!r}")
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
        raise BenchError(f"scaling run failed: {errors[:3] or 'a client thread hung'}")
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
            scaling_run(dev.port, module, slots, threads)  # warm-up: one wave
            fig = Figure(f"{replicas} replica(s) x concurrency {concurrency}", "jobs/s")
            for _ in range(sizes.runs):
                fig.samples.append(scaling_run(dev.port, module, slots * sizes.waves, threads))
            out.append((replicas, concurrency, fig, slot_use(dev, module, slots * sizes.waves, slots)))
    return out


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
        call = http_add(client, ADD_PATH)
        for _ in range(50):  # warm-up, not profiled
            call()
        os.kill(profiled.pid, signal.SIGUSR1)
        for _ in range(calls):
            call()
        os.kill(profiled.pid, signal.SIGUSR2)
        client.close()
    if not out.exists():
        raise BenchError(f"cProfile wrote no {out}:\n{profiled.log_tail()}")
    return out


def run(smoke: bool, workdir: Path) -> tuple[Section, dict[str, str]]:
    """The Invocation section and the peer's versions."""
    sizes = SMOKE if smoke else FULL
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    root = build_fleet(workdir / "fleet", sizes.scaling)
    invoke, bare = measure_direct(root / "modules" / "hello", sizes)
    dev_served, peer_served, parts, part_ms, peer_versions = measure_http(root, sizes, logs)
    dev, dev_cpu = dev_served.latency, dev_served.cpu_figs
    peer, peer_cpu = peer_served.latency, peer_served.cpu_figs
    scaling = measure_scaling(root, sizes, logs)

    section = Section("Invocation")
    section.add(
        f"`hello.add` called {sizes.calls} times per run over one keep-alive `http.client` connection (sequential, "
        f"after {sizes.warmup} warm-up calls), {sizes.runs} runs, both servers running and measured in alternation "
        f"(a run of one, then of the other); in-process calls {sizes.direct_calls} per run. "
        "`cmfleet dev hello --replicas 1:1 --no-reload` (one replica, concurrency 1, the official SDK unchanged) "
        "beside `functions-framework --target add` (gunicorn, its defaults) serving the same function from "
        "`modules/hello/app.py`.",
    )
    rows = [bare, invoke, peer, dev]
    for title, attr in (("p50 latency", "p50"), ("p95 latency", "p95"), ("throughput, one client", "rate")):
        figs = [getattr(r, attr) for r in rows]
        section.add(f"**{title}**", figure_table(figs, baseline=peer.__getattribute__(attr)))
    section.add(
        "Where a `cmfleet dev` call's time goes (the runtime's job records: `submitted_at`, `started_at`, "
        "`finished_at`):",
        parts,
    )
    section.add(
        "Pair by pair (p50):",
        ratio_lines([(dev.p50, peer.p50), (dev.p50, invoke.p50), (peer.p50, bare.p50), (invoke.p50, bare.p50)]),
    )
    runtime_cpu = dev_cpu["cmfleet dev runtime + gateway process"]
    replica_cpu = dev_cpu["its replica (official SDK, 2 processes)"]
    peer_total = peer_cpu["functions-framework (gunicorn)"]
    section.add(
        "**CPU per job** (`/proc/<pid>/stat` user + system over each run's calls; the runtime figure excludes its "
        "replica processes)",
        figure_table([runtime_cpu, replica_cpu, peer_total], baseline=peer_total),
        ratio_lines([(runtime_cpu, replica_cpu), (runtime_cpu, peer_total)]),
    )

    slots_rows = [
        "| replicas x concurrency | slots | ideal jobs/s | median | min | max | runs | median / ideal "
        "| replica holds a job (ms, p50) | slots busy |"
    ]
    slots_rows.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    targets = []
    for replicas, concurrency, fig, use in scaling:
        slots = replicas * concurrency
        ideal = slots / SLEEP_S
        slots_rows.append(
            f"| {replicas} x {concurrency} | {slots} | {fmt(ideal)} | {fmt(fig.median)} | {fmt(fig.min)} | "
            f"{fmt(fig.max)} | {len(fig.samples)} | {fig.median / ideal:.3f} | {fmt(use.hold_ms)} | {use.busy:.1%} |"
        )
        if slots <= 16:
            targets.append(
                at_least(
                    f"scaling {replicas} x {concurrency} ({slots} slots) vs ideal",
                    fig.median / ideal,
                    SCALING_LIMIT,
                    "x ideal",
                    "find where jobs wait (queue hand-off to the replica's long poll, result post) with the "
                    "scaling run under cProfile; every slot must get its next job as soon as it posts a result",
                )
            )
    section.add(
        f"### Scaling\n\nA function that sleeps {SLEEP_S * 1000:.0f} ms (I/O-bound), each configuration its own "
        f'module with `replicas = "R:R"` and `concurrency = C`; per run {sizes.waves} jobs per slot from '
        "2 x slots concurrent keep-alive clients (never fewer than slots + 2, so every slot always has a job "
        "waiting); one warm-up wave first. Ideal = slots / 0.2 s. From the runtime's job records of the last run: "
        "how long a replica held a job (handed out to result in: the sleep plus the SDK's own overhead) and how "
        "busy the slots were (held time / (slots x wall)); median / ideal is about 200 ms / hold x busy, so a low "
        "busy share points at the scheduler or the clients, a long hold at the replica.",
        "\n".join(slots_rows),
    )

    profile = profile_runtime(root, sizes.calls, logs) if sizes.profile else None
    top = ", ".join(f"{k} {v:.0%}" for k, v in profile_groups(profile)[:4]) if profile else "run the full suite"
    p50_ratio = dev.p50.median / peer.p50.median
    targets.insert(
        0,
        at_most(
            "hello.add p50 via cmfleet dev / functions-framework p50",
            p50_ratio,
            P50_LIMIT,
            "x",
            f"take {fmt(dev.p50.median - P50_LIMIT * peer.p50.median)} ms off each call: of its p50, the replica "
            f"holds the job {fmt(part_ms['replica'])} ms (the SDK's hand-off to its worker process and its two "
            f"HTTPS calls), the gateway's HTTP round trip takes {fmt(part_ms['http'])} ms and the runtime between "
            f"them {fmt(part_ms['runtime'])} ms; the limit is {fmt(P50_LIMIT * peer.p50.median)} ms, so the "
            "replica's share must shrink (what the runtime controls of it: TLS and connection reuse, the job "
            "envelope and answers it sends) and the gateway's HTTP path must cost less",
        ),
    )
    targets.insert(
        1,
        at_most(
            "runtime's own CPU per job",
            runtime_cpu.median,
            CPU_LIMIT_MS,
            "ms",
            f"cut {fmt(runtime_cpu.median - CPU_LIMIT_MS)} ms of CPU per job from the runtime process; its "
            f"profile (below) puts the time in {top}",
        ),
    )
    section.targets = targets
    if profile is not None:  # what dominates the runtime's CPU, missed or not
        section.add(
            "### Where the runtime's CPU goes\n\n"
            "cProfile with a CPU clock (`benchmarks/cpuprofile.py`) around `cmfleet dev hello`, main thread (the "
            f"event loop: runtime protocol and gateway), over {sizes.calls} calls of `add` after start-up and "
            "warm-up; shares of the profiled own time (cProfile inflates Python-level calls, so read the shares, "
            "not the absolute times).",
            summarize_profile(profile, per=sizes.calls),
        )
    return section, peer_versions
