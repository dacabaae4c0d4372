"""Shared parts of the benchmark suite: figures and their statistics, Markdown tables, targets, the machine and
tool versions, free ports, and processes that are always cleaned up.

Nothing here is timed; every benchmark module (``bench_*.py``) builds a :class:`Section` from :class:`Figure`
objects and :class:`Target` verdicts, and ``run.py`` renders them into ``BENCHMARKS.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CMFLEET_DIR = HERE.parent
REPO = CMFLEET_DIR.parent.parent  # the monorepo (the example repository)
BIN = Path(sys.executable).parent  # console scripts of the environment running the suite


class BenchError(RuntimeError):
    """A benchmark could not produce its figures; the message says what failed."""


# -- figures --------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured quantity: a sample per run (each sample may summarise many calls)."""

    label: str
    unit: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        if not self.samples:
            raise BenchError(f"{self.label}: no samples")
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest-rank on the sorted list."""
    ordered = sorted(values)
    if not ordered:
        raise BenchError("percentile of nothing")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Spread:
    """The median of per-round values with their spread (min, quartiles, max): how stable a ratio is."""

    values: list[float]

    @property
    def median(self) -> float:
        if not self.values:
            raise BenchError("no rounds")
        return statistics.median(self.values)

    def cells(self) -> str:
        """``median | min | q1 | q3 | max | rounds`` as Markdown table cells."""
        v = self.values
        q1, q3 = percentile(v, 0.25), percentile(v, 0.75)
        return f"{fmt(self.median)} | {fmt(min(v))} | {fmt(q1)} | {fmt(q3)} | {fmt(max(v))} | {len(v)}"


def fmt(value: float) -> str:
    """A number with 3 significant digits (never scientific for the sizes reported here)."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.4f}"


def figure_table(figures: list[Figure], baseline: Figure | None = None) -> str:
    """A Markdown table: median, min, max, runs and (with ``baseline``) the ratio of medians to it."""
    head = "| measurement | median | min | max | runs |"
    rule = "|---|---:|---:|---:|---:|"
    if baseline is not None:
        head += f" ratio to {baseline.label} |"
        rule += "---:|"
    lines = [head, rule]
    for fig in figures:
        row = f"| {fig.label} ({fig.unit}) | {fmt(fig.median)} | {fmt(fig.min)} | {fmt(fig.max)} | {len(fig.samples)} |"
        if baseline is not None:
            row += f" {ratio(fig, baseline)} |"
        lines.append(row)
    return "\n".join(lines)


def ratio(a: Figure, b: Figure) -> str:
    """``a``'s median over ``b``'s, as ``1.23x``."""
    if b.median == 0:
        return "n/a"
    return f"{a.median / b.median:.2f}x"


def ratio_lines(pairs: list[tuple[Figure, Figure]]) -> str:
    """Pair-by-pair ratios of medians, one bullet each."""
    return "\n".join(f"- {a.label} / {b.label}: **{ratio(a, b)}** (medians)" for a, b in pairs)


# -- targets --------------------------------------------------------------------------------------------------

TARGET_HEADER = "| target | limit | measured | verdict | missed by | why (filled in by a person) |"


@dataclass
class Target:
    """A performance target and its verdict. ``why`` stays empty unless a person writes a measured reason: the
    suite states how much a target was missed by, never a guessed cause."""

    name: str
    limit: str
    measured: str
    passed: bool
    missed_by: str = ""
    why: str = ""

    def row(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        missed = "" if self.passed else self.missed_by
        return f"| {self.name} | {self.limit} | {self.measured} | **{verdict}** | {missed} | {self.why} |"


def at_most(name: str, measured: float, limit: float, unit: str) -> Target:
    """A target met when ``measured <= limit``; a miss says by how much (absolute and x)."""
    passed = measured <= limit
    by = f"{fmt(measured - limit)} {unit} over ({measured / limit:.2f}x the limit)" if limit else ""
    return Target(name, f"<= {fmt(limit)} {unit}", f"{fmt(measured)} {unit}", passed, by)


def at_least(name: str, measured: float, limit: float, unit: str) -> Target:
    """A target met when ``measured >= limit``."""
    passed = measured >= limit
    by = f"{fmt(limit - measured)} {unit} short ({measured / limit:.2f} of the limit)" if limit else ""
    return Target(name, f">= {fmt(limit)} {unit}", f"{fmt(measured)} {unit}", passed, by)


def target_table(targets: list[Target]) -> str:
    """The targets of a section as a Markdown table (``run.py`` gathers these rows into the summary)."""
    return "\n".join([TARGET_HEADER, "|---|---|---|---|---|---|", *(t.row() for t in targets)])


@dataclass
class Section:
    """One ``## heading`` of BENCHMARKS.md."""

    title: str
    body: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def add(self, *parts: str) -> None:
        self.body.extend(parts)

    def render(self) -> str:
        parts = [f"## {self.title}", "", *[p.rstrip("\n") + "\n" for p in self.body]]
        if self.targets:
            parts += ["**Targets**", "", target_table(self.targets) + "\n"]
        return "\n".join(parts).rstrip("\n") + "\n"


# -- machine and versions -------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU model, cores, memory, kernel, and the load when asked (the box is shared)."""
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "CPU": model,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "load average (1, 5, 15 min)": load,
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _toolkit_version() -> str:
    """cmfleet's version as ``cmfleet --version`` says it, and the commit measured (a dev version names many)."""
    import cmfleet

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()

    dirty = ", uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{cmfleet.__version__} (commit {git('rev-parse', '--short', 'HEAD')}{dirty})"


def _command_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def tool_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Python, cmfleet, the SDK, tox, tox-uv, uv, hatch (and what ``extra`` adds, e.g. functions-framework)."""
    versions = {
        "Python": sys.version.split()[0],
        "cmfleet": _toolkit_version(),
        "foundry-compute-modules (SDK)": _dist_version("foundry-compute-modules"),
        "tox": _dist_version("tox"),
        "tox-uv": _dist_version("tox-uv"),
        "uv": _command_version([uv_path(), "--version"]),
        "hatch": _command_version([hatch_path(), "--version"]),
        "starlette / httptools (runtime)": f"{_dist_version('starlette')} / {_dist_version('httptools')}",
    }
    versions.update(extra or {})
    return versions


def uv_path() -> str:
    """The real ``uv`` binary (the environment's, else PATH resolved through pyenv shims)."""
    local = BIN / "uv"
    if local.exists():
        return str(local)
    return _unshim("uv")


def hatch_path() -> str:
    """The real ``hatch`` entry point: pyenv shims are shell scripts whose start-up would be timed too."""
    return _unshim("hatch")


def _unshim(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name} is not on PATH")
    if "/shims/" in found and shutil.which("pyenv"):
        real = subprocess.run(["pyenv", "which", name], capture_output=True, text=True)
        if real.returncode == 0 and real.stdout.strip():
            return real.stdout.strip()
    return found


def key_value_table(rows: dict[str, str]) -> str:
    return "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows.items())])


def unit_pyproject(name: str, deps: list[str]) -> str:
    """A generated unit's ``pyproject.toml`` (static version: the benchmarks need no VCS versions)."""
    listed = ", ".join(f'"{d}"' for d in deps)
    return (
        '[build-system]\nrequires = ["hatchling>=1.27"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = [{listed}]\n'
    )


# -- processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A free loopback TCP port (bound then released; the race with other processes is accepted)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` itself, children excluded, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clock_ticks()


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (each process's own time)."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            total += process_cpu(p)
    return total


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``: user, nice, system, irq, softirq,
    steal; every core)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / clock_ticks()


def own_tree_seconds() -> float:
    """CPU seconds of this process and every process it started, running or ended: its own and its reaped
    children's (``getrusage``), plus each live descendant's own and its reaped children's (``/proc``)."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    for pid in descendants(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended between the listing and the reading: counted once reaped
        total += sum(int(x) for x in fields[11:15]) / clock_ticks()  # utime stime cutime cstime
    return total


class OtherWork:
    """How busy the machine was with work that is not the benchmark's own, over an interval: the machine's busy
    CPU minus this process tree's. The load average cannot tell: it counts the benchmark's own processes too."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.busy = machine_busy_seconds()
        self.own = own_tree_seconds()

    def cores(self) -> float:
        """Cores' worth of other work, on average since the start (0 when the benchmark had the machine alone)."""
        wall = max(time.monotonic() - self.start, 1e-6)
        other = (machine_busy_seconds() - self.busy) - (own_tree_seconds() - self.own)
        return max(other, 0.0) / wall


def under_load(other_cores: float) -> bool:
    """True when other work used more than a quarter of the machine's cores on average (half a core of two)."""
    return other_cores > (os.cpu_count() or 1) / 4


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


@dataclass
class Memory:
    """Memory of a process tree: RSS summed (shared pages counted in every process) and PSS summed (shared pages
    split among the processes sharing them), in MiB, and how many processes."""

    rss_mib: float
    pss_mib: float
    processes: int


def tree_memory(pid: int) -> Memory:
    """RSS and PSS of ``pid`` and every live descendant, from ``/proc/<pid>/status`` and ``smaps_rollup``."""
    rss = pss = count = 0
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError, ValueError):
            rss += _status_kib(p, "VmRSS")
            pss += _pss_kib(p)
            count += 1
    return Memory(rss / 1024, pss / 1024, count)


class Service:
    """A server process started in its own session; :meth:`stop` ends it and every descendant, by pid."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None, log: Path | None = None):
        self.argv = argv
        self.log_path = log
        self._log = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{' '.join(self.argv[:4])} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def stop(self, grace: float = 20.0) -> None:
        """SIGINT (Ctrl-C, so the runtime stops its replicas), then SIGKILL whatever is left."""
        family = descendants(self.pid)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(10)
        for pid in family:  # replicas left behind by a runtime that was killed
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_until(check: Callable[[], Any], timeout: float, what: str, service: Service | None = None) -> Any:
    """Poll ``check`` (every 0.1 s) until it returns something truthy; a bounded loop."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if service is not None:
            service.check_alive()
        try:
            value = check()
        except (OSError, ValueError) as exc:  # not listening yet
            last_error, value = exc, None
        if value:
            return value
        time.sleep(0.1)
    tail = service.log_tail() if service else ""
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what} ({last_error})\n{tail}")


def get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


def run_timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> float:
    """Wall seconds of one command; a failure raises with its output."""
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-3000:]
        raise BenchError(f"{' '.join(argv)} (in {cwd}) exited with {proc.returncode}:\n{output}")
    return elapsed


def run_timed_tty(
    argv: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    ok_codes: tuple[int, ...] = (0,),
) -> float:
    """Wall seconds of one command whose stdout and stderr are a terminal (a pty), as when a user types it: a
    command that renders a table for a terminal does that work here too. The output is read and dropped (reading it
    is part of the measured time, as a terminal's is)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))  # a 160 x 50 terminal
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    tail = b""
    deadline = started + timeout
    try:
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            tail = (tail + chunk)[-3000:]
        else:
            proc.kill()
            raise BenchError(f"{' '.join(argv)} took more than {timeout:.0f} s")
        proc.wait(timeout)
    finally:
        os.close(master)
    elapsed = time.perf_counter() - started
    if proc.returncode not in ok_codes:
        raise BenchError(f"{' '.join(argv)} (in {cwd}) exited with {proc.returncode}:\n{tail.decode(errors='replace')}")
    return elapsed


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of measured commands: no CMFLEET_ROOT leaking in, git isolated from user config, and none
    of an outer tox's variables (run under ``tox -e cmfleet``, TOX_WORK_DIR would put the benchmark repository's
    envs in the checkout's own .tox)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("CMFLEET_ROOT", "CMFLEET_SINCE") and not k.startswith("TOX_")
    }
    env.update(
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def now_utc() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


# -- profiles ---------------------------------------------------------------------------------------------------


def _group(filename: str, funcname: str) -> str:
    path = filename.replace("\\", "/")
    if path == "~":
        return f"built-in {funcname}"
    if "/cmfleet/" in path and "/site-packages/" not in path:
        return "cmfleet." + path.rsplit("/cmfleet/", 1)[1].removesuffix(".py").replace("/", ".")
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in path:
        rest = path.split("/lib/python3", 1)[1].split("/", 1)[1]
        return "stdlib " + "/".join(rest.split("/", 2)[:2]).removesuffix(".py")
    return path.rsplit("/", 1)[-1]


def profile_groups(path: Path) -> list[tuple[str, float]]:
    """Shares of the profiled own time by package, file or built-in, largest first."""
    raw = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    groups: dict[str, float] = {}
    for (filename, _line, funcname), (_cc, _nc, tt, _ct, _callers) in raw.items():
        key = _group(filename, funcname)
        groups[key] = groups.get(key, 0.0) + tt
    return sorted(((k, v / total) for k, v in groups.items()), key=lambda kv: -kv[1])


def summarize_profile(path: Path, per: int | None = None) -> str:
    """Own time (tottime) by package or file, and the top functions: what dominates the runtime's CPU;
    with ``per`` (calls made while profiling) also the profiled time per call."""
    stats = pstats.Stats(str(path))
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    head = []
    if per:
        head = [f"Profiled time: {total * 1000 / per:.3f} ms per call (cProfile's own overhead included).", ""]
    lines = [*head, "| where (own time) | share |", "|---|---:|"]
    for key, share in profile_groups(path)[:14]:
        lines.append(f"| {key} | {share:.1%} |")
    lines += ["", "| function (own time) | calls | share | cumulative share |", "|---|---:|---:|---:|"]
    top = sorted(raw.items(), key=lambda kv: -kv[1][2])[:15]
    for (filename, line, funcname), (_cc, nc, tt, ct, _callers) in top:
        where = _group(filename, funcname)
        lines.append(f"| `{funcname}` ({where}:{line}) | {nc:,} | {tt / total:.1%} | {ct / total:.1%} |")
    return "\n".join(lines)
