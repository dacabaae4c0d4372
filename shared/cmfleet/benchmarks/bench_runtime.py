"""Benchmark of ``cmfleet dev`` (a benchmark, not a test: run it by hand on a quiet machine).

    hatch run python shared/cmfleet/benchmarks/bench_runtime.py [--calls 2000] [--no-scaling] [--json]

Reports, in one run:
  * p50/p95 latency of ``hello.add`` through the gateway (one keep-alive client, TCP_NODELAY), beside the same
    function called in process (``registry.invoke``) and served by functions-framework on gunicorn (the peer,
    when ``functions-framework`` is installed);
  * CPU per job of the runtime process (runtime + gateway, one asyncio process) and of the replica's processes
    (the SDK), from the OS's accounting (/proc/<pid>/stat);
  * scaling: jobs per second of a function that sleeps 200 ms with 1, 2 and 4 replicas at concurrency 1 and 4,
    against the ideal replicas x concurrency / 0.2 s.

Third-party cmfleet plugins are not loaded (``CMFLEET_LOAD_PLUGINS=""``) so the numbers are the runtime's and the SDK's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[3]
FLEET = HERE.parents[1] / "tests" / "runtime" / "fixtures" / "fleet"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of ``pids`` so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def group_pids(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                out.append(int(entry.name))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A minimal keep-alive HTTP client (TCP_NODELAY) so the client's own cost stays small."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        return response.status, response.read()


def percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1] * 1000, 3),
    }


def start_dev(root: Path, modules: list[str], replicas: str, concurrency: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "CMFLEET_LOAD_PLUGINS": "", "COLUMNS": "300"}
    env.pop("CMFLEET_ROOT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmfleet", "dev", *modules, "--port", str(port), "--runtime-port", str(free_port())]
        + ["--no-reload", "--replicas", replicas, "--concurrency", str(concurrency)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/modules")
            mods = json.loads(conn.getresponse().read())
            want = int(replicas.split(":")[0])
            if all(sum(r["state"] == "ready" for r in m["replicas"]) >= want for m in mods):
                return proc, port
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("cmfleet dev did not become ready")


def stop_dev(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def bench_gateway(calls: int) -> dict[str, float]:
    proc, port = start_dev(REPO, ["hello"], "1:1", 1)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/api/modules")
        replica_pid = json.loads(conn.getresponse().read())[0]["replicas"][0]["pid"]
        client = Client(port)
        path = "/api/modules/hello/functions/add"
        for _ in range(200):
            client.post(path, b'{"x": 1, "y": 2}')
        sdk_pids = group_pids(replica_pid)
        runtime_before, sdk_before = cpu_seconds([proc.pid]), cpu_seconds(sdk_pids)
        samples = []
        for i in range(calls):
            started = time.perf_counter()
            status, body = client.post(path, b'{"x": %d, "y": 2}' % i)
            samples.append(time.perf_counter() - started)
            assert status == 200 and body == str(i + 2).encode(), (status, body)
        runtime_cpu = cpu_seconds([proc.pid]) - runtime_before
        sdk_cpu = cpu_seconds(sdk_pids) - sdk_before
        return {
            **percentiles(samples),
            "runtime_cpu_ms_per_job": round(runtime_cpu / calls * 1000, 3),
            "sdk_cpu_ms_per_job": round(sdk_cpu / calls * 1000, 3),
        }
    finally:
        stop_dev(proc)


def bench_direct(calls: int) -> dict[str, float]:
    os.environ["CMFLEET_LOAD_PLUGINS"] = ""
    from cmfleet.registry import load_registry

    registry = load_registry(REPO / "modules" / "hello")
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        registry.invoke("add", {"x": i, "y": 2})
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def bench_peer(calls: int, exe: str | None = None) -> dict[str, float] | str:
    exe = exe or shutil.which("functions-framework") or str(Path(sys.executable).parent / "functions-framework")
    if not Path(exe).exists():
        return "functions-framework is not installed (pip install functions-framework) - peer skipped"
    folder = Path(tempfile.mkdtemp())
    (folder / "main.py").write_text(
        "import json\n\ndef add(request):\n    e = request.get_json()\n    return json.dumps(e['x'] + e['y'])\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--target", "add", "--source", str(folder / "main.py"), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = Client(port)
                client.post("/", b'{"x": 1, "y": 2}')
                break
            except OSError:
                if time.monotonic() > deadline:
                    return "functions-framework did not start"
                time.sleep(0.2)
        for _ in range(200):
            client.post("/", b'{"x": 1, "y": 2}')
        samples = []
        for i in range(calls):
            started = time.perf_counter()
            client.post("/", b'{"x": %d, "y": 2}' % i)
            samples.append(time.perf_counter() - started)
        return percentiles(samples)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _slow_caller(port: int, calls: int, done: list[int]) -> None:
    client = Client(port)
    for _ in range(calls):
        status, _ = client.post("/api/modules/basic/functions/slow", b'{"seconds": 0.2}')
        if status == 200:
            done[0] += 1


def bench_scaling(calls_per_slot: int = 12) -> list[dict[str, float]]:
    """One client per slot, each making the same number of calls (no tail of unfinished calls in the window)."""
    root = Path(tempfile.mkdtemp()) / "fleet"
    shutil.copytree(FLEET, root)
    rows = []
    try:
        for replicas in (1, 2, 4):
            for concurrency in (1, 4):
                slots = replicas * concurrency
                proc, port = start_dev(root, ["basic"], f"{replicas}:{replicas}", concurrency)
                try:
                    done = [0]
                    args = (port, calls_per_slot, done)
                    threads = [threading.Thread(target=_slow_caller, args=args) for _ in range(slots)]
                    started = time.monotonic()
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    rate = done[0] / (time.monotonic() - started)
                    ideal = slots / 0.2
                    rows.append(
                        {
                            "replicas": replicas,
                            "concurrency": concurrency,
                            "jobs_per_s": round(rate, 2),
                            "ideal": ideal,
                            "ratio": round(rate / ideal, 3),
                        }
                    )
                finally:
                    stop_dev(proc)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--peer", metavar="PATH", help="the functions-framework executable (e.g. in its own venv)")
    args = parser.parse_args()
    report = {
        "gateway": bench_gateway(args.calls),
        "direct": bench_direct(args.calls),
        "functions_framework": bench_peer(args.calls, args.peer),
    }
    peer = report["functions_framework"]
    if isinstance(peer, dict):
        report["gateway_p50_vs_peer"] = round(report["gateway"]["p50_ms"] / peer["p50_ms"], 2)
    if not args.no_scaling:
        report["scaling_200ms"] = bench_scaling()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if isinstance(value, list):
            print(f"{key}:")
            for row in value:
                print("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
        else:
            print(f"{key}: {value if not isinstance(value, dict) else re.sub(r'[{}]', '', json.dumps(value))}")


if __name__ == "__main__":
    main()
