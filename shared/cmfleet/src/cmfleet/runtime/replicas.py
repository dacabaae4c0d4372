"""Replica processes: start, supervise, restart, scale (min/max, on load, to zero when idle), reload.

A replica is a process running ``python -m cmfleet.entrypoint <module dir>`` (the official SDK, unchanged) with
the Python of the module's own venv (environments.py; made before its first replica starts) or the runtime's own
(``environments = "shared"``), or the module's own ``command``, in its own process group (so its SDK worker
processes end with it), with the environment Foundry gives a container. Its stdout and stderr go to the
LogHub line by line. While uv makes the module's env for its start, a replica is ``building``; once its
process runs, ``starting``; at its first poll, ``ready``.

A replica that dies is restarted at once; the jobs it held end as ``lost`` naming the exit code or signal.
A replica that dies before it ever polled (import error) fails the queued jobs with the cause and is retried
with a growing delay.

A hand-started replica (``--print-env``) has no process here to watch: it counts as stopped once it has had no
connection to the runtime for ``manual_grace`` seconds (the SDK always keeps one open), or once it has sent no
request for ``manual_grace`` seconds while no poll of it is parked (the SDK polls again as soon as a poll is
answered; a stopped process, SIGSTOP say, keeps its connections open but polls no more); the jobs it held end as
``lost``; when it polls again it is ready again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmfleet.runtime.config import DevConfig, ModuleSettings
from cmfleet.runtime.environments import EnvBuildError, EnvironmentManager
from cmfleet.runtime.logs import LogHub
from cmfleet.runtime.placement import BUSY_WINDOW, CpuPlacement
from cmfleet.runtime.protocol import runtime_uris
from cmfleet.runtime.scheduler import (
    BUILDING,
    COMING,
    CRASHED,
    DRAINING,
    LIVE,
    READY,
    STARTING,
    STOPPED,
    ModuleQueue,
    Replica,
    Scheduler,
)

#: Variables of the parent environment a replica inherits; everything else is left out because the SDK's
#: ``requests`` scans the whole environment for proxy settings on every call.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "PYTHONPATH", "CMFLEET_LOAD_PLUGINS")
STOP_GRACE = 3.0


def describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``signal SIGKILL``, for people."""
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def write_token(path: Path, token: str) -> None:
    """The Module-Auth-Token file: owner-only, no trailing newline (``requests`` rejects a header ending in \\n)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    os.replace(tmp, path)


@dataclass
class ReplicaEnvironment:
    """What every replica's environment is built from (one per runtime)."""

    root: Path
    runtime_port: int
    ca_path: Path
    run_dir: Path
    service_discovery: Path
    source_env: dict[str, dict[str, str]] = field(default_factory=dict)  # module -> SOURCE_* variables
    pythonpath: dict[str, list[str]] = field(default_factory=dict)  # module -> src folders of its shared libs

    def build(self, module: Any, settings: ModuleSettings, token_file: Path, session_id: str) -> dict[str, str]:
        """The complete environment of one replica of ``module`` (a discovery Unit)."""
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        if settings.own_environment:
            env.pop("PYTHONPATH", None)  # the module's venv is all it gets, as in its container
        paths = [*self.pythonpath.get(module.name, []), *filter(None, [env.get("PYTHONPATH")])]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "NO_PROXY": "localhost,127.0.0.1",
                "no_proxy": "localhost,127.0.0.1",
                "CMFLEET_ROOT": str(self.root),
                **runtime_uris(self.runtime_port),
                "RUNTIME_HOST": "localhost",
                "RUNTIME_PORT": str(self.runtime_port),
                "MODULE_AUTH_TOKEN": str(token_file),
                "CONNECTIONS_TO_OTHER_PODS_CA_PATH": str(self.ca_path),
                "DEFAULT_CA_PATH": str(self.ca_path),
                "MAX_CONCURRENT_TASKS": str(settings.concurrency),
                "COMPUTE_SESSION_ID": session_id,
                "FOUNDRY_SERVICE_DISCOVERY_V2": str(self.service_discovery),
                **self.source_env.get(module.name, {}),
                **settings.env,
            }
        )
        from cmfleet.plugins import get_plugin_manager

        get_plugin_manager().hook.cmfleet_replica_environment(module=module, environ=env)
        return env


@dataclass(eq=False)
class ModuleRuntime:
    """One module's replicas and settings."""

    unit: Any
    settings: ModuleSettings
    queue: ModuleQueue
    counter: int = 0
    failures: int = 0  # consecutive replicas that died before they ever polled
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    awaiting_env: set[Replica] = field(default_factory=set)  # replicas whose start waits for the module's env


class ReplicaManager:
    """Starts and supervises every module's replicas."""

    def __init__(
        self,
        scheduler: Scheduler,
        logs: LogHub,
        config: DevConfig,
        env: ReplicaEnvironment,
        envs: EnvironmentManager | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.logs = logs
        self.config = config
        self.env = env
        self.envs = envs  # per-module venvs (None: every replica uses its configured or the runtime's Python)
        self.modules: dict[str, ModuleRuntime] = {}
        self.closing = False
        self._ticker: asyncio.Task[None] | None = None
        self._unseen: dict[Replica, asyncio.TimerHandle] = {}  # hand-started replicas without a connection
        self.placement = CpuPlacement()
        scheduler.on_pressure = self.on_pressure
        scheduler.on_drained = self._drained
        if envs is not None:
            envs.on_building = self._env_building

    # -- set-up --------------------------------------------------------------------------------------------

    def add_module(self, unit: Any) -> ModuleRuntime:
        settings = self.config.for_module(unit.name)
        mq = self.scheduler.add_module(unit.name, queue_limit=settings.queue_limit, timeout=settings.timeout)
        mod = self.modules[unit.name] = ModuleRuntime(unit, settings, mq)
        return mod

    def start(self) -> None:
        """Start building the modules' own envs, every module's minimum replicas and the scaling ticker."""
        if self.envs is not None:
            self.envs.prepare([m.unit.name for m in self.modules.values() if m.settings.own_environment])
        for mod in self.modules.values():
            for _ in range(mod.settings.min_replicas):
                self.spawn(mod)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    # -- processes -----------------------------------------------------------------------------------------

    def spawn(self, mod: ModuleRuntime, replica: Replica | None = None) -> Replica:
        """Start a new replica slot (or restart ``replica``'s process)."""
        if replica is None:
            mod.counter += 1
            replica = Replica(f"{mod.unit.name}-{mod.counter}", mod.unit.name, mod.settings.concurrency)
            replica.token = secrets.token_urlsafe(24)
            self.scheduler.add_replica(replica)
        replica.state = STARTING
        replica.stopping = False
        replica.pid = None
        replica.started_at = time.time()
        replica.idle_since = time.monotonic()
        self.scheduler.set_token(replica, secrets.token_urlsafe(24))  # a new token for every process
        replica.session_id = f"{replica.id}-{uuid.uuid4().hex[:8]}"
        self.logs.add_secrets([replica.token])
        task = asyncio.get_running_loop().create_task(self._run(mod, replica))
        mod.tasks.add(task)
        task.add_done_callback(mod.tasks.discard)
        return replica

    async def _run(self, mod: ModuleRuntime, replica: Replica) -> None:
        env_python: str | None = None
        if self.envs is not None and mod.settings.own_environment:
            if mod.unit.name in self.envs.building:
                replica.state = BUILDING
            mod.awaiting_env.add(replica)
            try:
                env_python = str(await self.envs.python(mod.unit.name))
            except EnvBuildError as exc:
                if not (self.closing or replica.stopping):
                    self._start_failed(mod, replica, str(exc))
                return
            finally:
                mod.awaiting_env.discard(replica)
            if replica.state == BUILDING:
                replica.state = STARTING
            if self.closing or replica.stopping or replica.state != STARTING:
                return  # stopped, drained or reloaded while its env was being made
        token_file = self.env.run_dir / "tokens" / replica.id
        write_token(token_file, replica.token)
        environ = self.env.build(mod.unit, mod.settings, token_file, replica.session_id)
        if env_python is not None:  # as if activated: `python` and console scripts in a subprocess are the env's
            bin_dir = os.path.dirname(env_python)
            environ["PATH"] = os.pathsep.join(filter(None, [bin_dir, environ.get("PATH")]))
            environ["VIRTUAL_ENV"] = os.path.dirname(bin_dir)
        argv = mod.settings.replica_command(mod.unit.path, env_python)
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[int] = loop.create_future()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _ExitProtocol(exited, loop),
                *argv,
                cwd=str(mod.unit.path),
                env=environ,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: the SDK's workers are stopped with it
            )
            proc = asyncio.subprocess.Process(transport, protocol, loop)
        except OSError as exc:
            self._start_failed(mod, replica, f"could not run {argv[0]!r}: {exc}")
            return
        replica.pid = proc.pid
        mod.processes[replica.id] = proc
        self.logs.system(f"started replica {replica.id} (pid {proc.pid})", mod.unit.name, replica.id)
        tail: deque[str] = deque(maxlen=8)
        readers = [
            asyncio.ensure_future(self._read(mod, replica, proc.stdout, "stdout", tail)),
            asyncio.ensure_future(self._read(mod, replica, proc.stderr, "stderr", tail)),
        ]
        # Not proc.wait(): it also waits for the pipes, which orphaned SDK workers keep open.
        returncode = await exited
        _kill_group(proc.pid, signal.SIGKILL)  # orphaned SDK worker processes
        try:
            await asyncio.wait_for(asyncio.gather(*readers), 2.0)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - output left over from a dead process
            for reader in readers:
                reader.cancel()
        mod.processes.pop(replica.id, None)
        self.placement.forget(replica.id)
        reason = describe_exit(returncode)
        if replica.stopping or self.closing:
            self.scheduler.replica_gone(replica, f"was stopped ({reason})", STOPPED)
            self.scheduler.remove_replica(replica)
            self.logs.system(f"stopped replica {replica.id}", mod.unit.name, replica.id)
            return
        ever_polled = replica.state in (READY, DRAINING)
        draining = replica.state == DRAINING
        self.scheduler.replica_gone(replica, f"exited ({reason})", CRASHED)
        self.logs.system(f"replica {replica.id} exited ({reason})", mod.unit.name, replica.id, level="ERROR")
        if draining:  # it was going away anyway (reload, scale down)
            self.scheduler.remove_replica(replica)
            return
        if not ever_polled:
            detail = f": {tail[-1]}" if tail else ""
            self._start_failed(
                mod, replica, f"replica {replica.id} exited before it polled for jobs ({reason}){detail}"
            )
            return
        mod.failures = 0
        replica.restarts += 1
        self.spawn(mod, replica)

    def _env_building(self, module: str, building: bool) -> None:
        """uv started (or finished) making ``module``'s env: replicas waiting for it show ``building``."""
        mod = self.modules.get(module)
        if mod is None:
            return
        for replica in mod.awaiting_env:
            if replica.state in COMING:
                replica.state = BUILDING if building else STARTING

    def _start_failed(self, mod: ModuleRuntime, replica: Replica, reason: str) -> None:
        message = f"module {mod.unit.name!r} could not start: {reason}"
        mod.queue.start_error = message
        replica.state = CRASHED
        self.logs.system(message, mod.unit.name, replica.id, level="ERROR")
        self.scheduler.fail_queued(mod.unit.name, message)
        mod.failures += 1
        delay = min(30.0, 0.5 * 2 ** min(mod.failures, 6))
        replica.restarts += 1

        async def retry() -> None:
            await asyncio.sleep(delay)
            if not self.closing and replica in mod.queue.replicas and replica.state == CRASHED:
                if len(mod.queue.live()) < max(mod.settings.min_replicas, 1 if mod.queue.queue else 0):
                    self.spawn(mod, replica)
                else:
                    self.scheduler.remove_replica(replica)

        task = asyncio.get_running_loop().create_task(retry())
        mod.tasks.add(task)
        task.add_done_callback(mod.tasks.discard)

    async def _read(self, mod: ModuleRuntime, replica: Replica, stream: Any, name: str, tail: deque[str]) -> None:
        module, rid, session = mod.unit.name, replica.id, replica.session_id
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the limit: take what is there
                line = await stream.read(1 << 20)
            if not line:
                return
            if name == "stderr":
                tail.append(self.logs.redact(line.decode("utf-8", "replace").strip()))
            self.logs.line(module, rid, name, line, session)

    def terminate(self, replica: Replica) -> None:
        """Stop a replica's process (SIGTERM to its group, SIGKILL after a grace period)."""
        replica.stopping = True
        mod = self.modules[replica.module]
        proc = mod.processes.get(replica.id)
        if proc is None or replica.pid is None:
            self.scheduler.replica_gone(replica, "was stopped", STOPPED)
            self.scheduler.remove_replica(replica)
            return
        _kill_group(replica.pid, signal.SIGTERM)
        pid = replica.pid

        def force() -> None:
            if proc.returncode is None:
                _kill_group(pid, signal.SIGKILL)

        asyncio.get_running_loop().call_later(STOP_GRACE, force)

    # -- hand-started replicas ----------------------------------------------------------------------------

    def connected(self, replica: Replica) -> None:
        """A replica's first connection opened (ProtocolServer.on_connected)."""
        timer = self._unseen.pop(replica, None)
        if timer is not None:
            timer.cancel()

    def disconnected(self, replica: Replica) -> None:
        """A replica's last connection closed (ProtocolServer.on_disconnected): a hand-started one gets
        ``manual_grace`` seconds to open another."""
        if not replica.external or self.closing:
            return
        previous = self._unseen.pop(replica, None)
        if previous is not None:
            previous.cancel()
        grace = self.config.manual_grace
        self._unseen[replica] = asyncio.get_running_loop().call_later(grace, self._unseen_too_long, replica, grace)

    def _unseen_too_long(self, replica: Replica, grace: float, cause: str = "") -> None:
        self._unseen.pop(replica, None)
        if self.closing or (replica.connections and not cause) or replica.state in (STOPPED, CRASHED):
            return
        cause = cause or f"stopped polling: no request for {grace:g} s"
        lost = self.scheduler.replica_gone(replica, cause, STOPPED)
        held = f"; the {len(lost)} job(s) it held are lost" if lost else ""
        level = "WARNING" if lost else "INFO"
        self.logs.system(f"hand-started replica {replica.id} {cause}{held}", replica.module, replica.id, level=level)

    def _check_silent(self, mq: Any) -> None:
        """Hand-started replicas that stopped polling though their connections stay open."""
        grace = self.config.manual_grace
        now = asyncio.get_running_loop().time()
        for replica in mq.replicas:
            if not replica.external or replica.state not in (READY, STARTING) or not replica.last_seen:
                continue
            silent = now - replica.last_seen
            if silent >= grace and not self.scheduler.has_parked_poll(replica):
                self._unseen_too_long(replica, grace, f"stopped polling: no request for {grace:g} s")

    def _drained(self, replica: Replica) -> None:
        if replica.state == DRAINING and not replica.stopping:
            self.terminate(replica)

    # -- scaling -------------------------------------------------------------------------------------------

    def on_pressure(self, mq: ModuleQueue) -> None:
        """A job waits and no replica could take it: start a replica if the module may grow."""
        if self.closing:
            return
        mod = self.modules[mq.name]
        live = [r for r in mq.replicas if r.state in LIVE and not r.external]
        if len(live) >= mod.settings.max_replicas:
            return
        if mod.failures and mq.start_error and live:
            return  # the module cannot start; one attempt at a time
        capacity = mod.settings.concurrency
        free = sum(max(0, r.capacity - len(r.in_flight)) for r in live if r.state == READY)
        starting = sum(1 for r in live if r.state in COMING) * capacity
        if not live or len(mq.queue) > free + starting:
            crashed = [r for r in mq.replicas if r.state == CRASHED and not r.external]
            self.spawn(mod, crashed[0] if crashed else None)

    async def _tick(self) -> None:
        while not self.closing:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for mod in self.modules.values():
                mq = mod.queue
                self._check_silent(mq)
                if mq.queue:
                    self.on_pressure(mq)
                live = [r for r in mq.replicas if r.state in LIVE and not r.external]
                if len(live) <= mod.settings.min_replicas or mq.queue:
                    continue
                idle = [r for r in live if r.state == READY and not r.in_flight]
                idle = [r for r in idle if now - r.idle_since >= mod.settings.idle_timeout]
                if idle:
                    victim = max(idle, key=lambda r: r.idle_since)
                    self.logs.system(f"scaling down: replica {victim.id} idle", mod.unit.name, victim.id)
                    self.scheduler.drain(victim)
            self._place(now)

    def _place(self, now: float) -> None:
        """Keep busy replicas on CPUs of their own (placement.py); a failure turns placement off, never the tick."""
        try:
            self.placement.update(self._busy(now))
        except Exception as exc:  # noqa: BLE001 - an unexpected /proc or affinity error must not stop scaling
            self.placement.turn_off()
            self.logs.system(f"CPU placement of busy replicas turned off: {exc!r}", "cmfleet", level="WARNING")
        placed = self.placement.placed
        for mod in self.modules.values():
            for r in mod.queue.replicas:
                r.cpus = placed.get(r.id)  # shown by /api/modules and the console

    def _busy(self, now: float) -> list[tuple[str, int, int]]:
        """(id, pid, CPUs wanted) of each replica of ours that holds a job or held one lately (placement.py)."""
        out = []
        for mod in self.modules.values():
            if not mod.settings.pin_busy or mod.settings.command:
                continue  # another language's SDK: not the Python SDK's main process and forked workers
            for r in mod.queue.replicas:
                if r.pid is None or r.external or r.state not in LIVE or not r.max_in_flight:
                    continue
                if r.in_flight or now - r.idle_since < BUSY_WINDOW:
                    out.append((r.id, r.pid, r.capacity))
        return out

    # -- reload --------------------------------------------------------------------------------------------

    def reload(self, name: str, why: str = "") -> None:
        """Replace the module's replicas: old ones drain (finish their jobs) and stop, new ones start at once.

        A module with its own env has it checked first (rebuilt when its pyproject files changed) while the old
        replicas keep serving; a failed build then shows as the new replicas' start error.
        """
        mod = self.modules[name]
        if self.envs is None or not mod.settings.own_environment:
            self._replace(name, why)
            return
        self.envs.invalidate(name)

        async def after_env() -> None:
            with contextlib.suppress(EnvBuildError):
                await self.envs.python(name)  # type: ignore[union-attr]
            if not self.closing:
                self._replace(name, why)

        task = asyncio.get_running_loop().create_task(after_env())
        mod.tasks.add(task)
        task.add_done_callback(mod.tasks.discard)

    def _replace(self, name: str, why: str) -> None:
        mod = self.modules[name]
        old = [r for r in mod.queue.replicas if r.state in LIVE and not r.external]
        crashed = [r for r in mod.queue.replicas if r.state == CRASHED and not r.external]
        count = max(len(old), mod.settings.min_replicas)
        mod.failures = 0
        mod.queue.start_error = None
        self.logs.system(f"reloading {name}{': ' + why if why else ''} ({len(old)} replica(s) drain)", name)
        for replica in old:
            self.scheduler.drain(replica)
        for replica in crashed:
            self.scheduler.remove_replica(replica)
        for _ in range(count):
            self.spawn(mod)

    # -- shutdown ------------------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop every replica; nothing is left running when this returns."""
        self.closing = True
        if self._ticker is not None:
            self._ticker.cancel()
        for timer in self._unseen.values():
            timer.cancel()
        self._unseen.clear()
        if self.envs is not None:
            await self.envs.stop()  # uv processes of unfinished builds end now
        procs: list[tuple[int, asyncio.subprocess.Process]] = []
        for mod in self.modules.values():
            for proc in list(mod.processes.values()):
                procs.append((proc.pid, proc))
                _kill_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(proc.returncode is None for _, proc in procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for pid, _ in procs:
            _kill_group(pid, signal.SIGKILL)  # whatever is left of each group, workers included
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and (
            any(proc.returncode is None for _, proc in procs) or any(group_exists(pid) for pid, _ in procs)
        ):
            await asyncio.sleep(0.05)
        tasks = [t for mod in self.modules.values() for t in mod.tasks]
        for task in tasks:
            if not task.done():
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class _ExitProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Stream protocol that reports the process's exit at once (its pipes may stay open in orphans)."""

    def __init__(self, exited: asyncio.Future[int], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=1 << 20, loop=loop)
        self._exited = exited

    def process_exited(self) -> None:
        returncode = self._transport.get_returncode()  # type: ignore[attr-defined]  # private: not in typeshed
        super().process_exited()  # may close (and forget) the transport
        if not self._exited.done():
            self._exited.set_result(returncode if returncode is not None else -1)


def group_exists(pid: int) -> bool:
    """Whether any process of the process group ``pid`` is still there."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
