"""The runtime of ``cmfleet dev``: one asyncio process serving the container-facing API (HTTPS, runtime port),
the gateway (HTTP, gateway port), every module's replicas, logs and hot reload.

State on disk:
  ``<root>/.cmfleet/dev/tls/``            the CA and server certificate (kept between runs, git-ignored)
  ``<root>/.cmfleet/dev/manual/<module>/`` token and source files for a replica started by hand (``--print-env``)
  ``<root>/.cmfleet/envs/<module>/``       each module's own venv (environments.py), reused while its inputs match;
                                         removed at start once the repository has no such module
  a private temporary folder per run     replica tokens, source files (0600), removed at stop

``Runtime`` can run in the current loop (``await runtime.start()`` ... ``await runtime.stop()``) or in a thread
(:class:`BackgroundRuntime`, for tests and benchmarks).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import secrets
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmfleet.discovery import rel_path
from cmfleet.runtime.config import DevConfig
from cmfleet.runtime.environments.spec import state_root
from cmfleet.runtime.logs import LogHub
from cmfleet.runtime.replicas import ReplicaEnvironment, ReplicaManager, write_token
from cmfleet.runtime.scheduler import STOPPED, Replica, Scheduler

if TYPE_CHECKING:
    from cmfleet.discovery import Unit

STATE_DIR = Path(".cmfleet") / "dev"

SERVICE_DISCOVERY = """# cmfleet dev: no Foundry services locally
api_gateway: []
stream_proxy: []
foundry_mio: []
on_prem_proxy: []
contour_backend_multiplexer: []
"""


# Files whose change never reloads a module: generated ones (hatch-vcs writes _version.py on every editable install)
# and editors' temporary files (sed -i's sedXXXXXX, vim's .swp and 4913, emacs' .#x and #x#, backups x~, x.tmp).
_GENERATED = {"_version.py"}
_EDITOR_TEMP = re.compile(r"^(sed[A-Za-z0-9]{6}|4913|\.#.*|#.*#|.*~|.*\.(swp|swx|swo|tmp|bak|orig))$")


def reload_ignores(path: Path) -> bool:
    """Whether a change of ``path`` leaves its module running (tests, generated files, editors' temporary files)."""
    return "tests" in path.parts or path.name in _GENERATED or bool(_EDITOR_TEMP.match(path.name))


class StartError(Exception):
    """The runtime cannot start (unknown module, port in use, bad config); the message says why."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY on accepted connections only when the listening
    # socket says TCP; with proto 0 every kept-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror} (choose another port)") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def dev_modules(repo: Any, config: DevConfig, names: list[str] | None = None) -> list[Any]:
    """The modules ``cmfleet dev`` runs (those named, or all): the repository's, and the folders under ``modules/``
    known only by their ``[tool.cmfleet.dev.modules.<m>] command`` (another language's module: no pyproject.toml
    or app.py needed). An unknown name raises UnknownUnitError listing the known ones."""
    from cmfleet.discovery import MODULES_DIR, Unit, UnknownUnitError

    units = {u.name: u for u in repo.modules()}
    for name, settings in config.modules.items():
        path = repo.root / MODULES_DIR / name
        if settings.command and name not in repo.units and path.is_dir():
            units[name] = Unit(name, "module", path, repo.root, {})
    if not names:
        return [units[name] for name in sorted(units)]
    for name in names:
        if name not in units:
            raise UnknownUnitError(name, sorted(units), kind="module")
    return [units[name] for name in names]


def manual_token(root: Path, module: str) -> tuple[Path, str]:
    """The persistent token file of ``module``'s hand-started replica (created when missing)."""
    path = state_root(root) / STATE_DIR.name / "manual" / module / "module-auth-token"
    if path.exists():
        return path, path.read_text()
    token = secrets.token_urlsafe(24)
    write_token(path, token)
    return path, token


class Runtime:
    """Everything ``cmfleet dev`` runs, started and stopped together."""

    def __init__(self, root: Path, config: DevConfig, modules: list[str] | None = None) -> None:
        self.root = Path(root).resolve()
        self.config = config
        self.selected = modules or []
        self.logs = LogHub(config.log_buffer, terminal=config.terminal_logs)
        self.scheduler: Scheduler = None  # type: ignore[assignment]
        self.manager: ReplicaManager = None  # type: ignore[assignment]
        self.gateway_port = 0
        self.runtime_port = 0
        self.run_dir: Path | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._gateway: Any = None
        self._protocol: Any = None
        self._stop_watch: asyncio.Event | None = None
        #: module -> the schemas derived from its app.py (derived.py), for calls before a replica posts
        self.derived: dict[str, list[Any]] = {}
        self._deriving: dict[str, asyncio.Task[Any]] = {}
        self.repo: Any = None

    @property
    def gateway_url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.gateway_port}"

    async def start(self) -> None:
        """Bind both ports, start the servers and every module's minimum replicas."""
        from cmfleet.discovery import DiscoveryError, Repository
        from cmfleet.runtime.gateway import Gateway, gateway_server
        from cmfleet.runtime.protocol import ProtocolServer
        from cmfleet.runtime.sources import SourcesError, load_sources, secret_values, write_module_sources
        from cmfleet.runtime.tls import ensure_tls

        loop = asyncio.get_running_loop()
        try:
            self.repo = Repository.load(self.root)
            units = dev_modules(self.repo, self.config, self.selected)
        except DiscoveryError as exc:
            raise StartError(str(exc)) from None
        if not units:
            raise StartError(f"no modules under {self.root / 'modules'}: nothing to run")
        if not is_loopback(self.config.host) and not getattr(self.config, "access_token", None):
            self.config.access_token = os.environ.get("CMFLEET_DEV_TOKEN") or secrets.token_urlsafe(24)  # type: ignore[attr-defined]

        tls = ensure_tls(state_root(self.root) / STATE_DIR.name / "tls")
        try:
            sources = load_sources(self.root)
        except SourcesError as exc:
            raise StartError(str(exc)) from None
        self.logs.add_secrets(secret_values(sources))
        self.run_dir = Path(tempfile.mkdtemp(prefix="cmfleet-dev-"))
        os.chmod(self.run_dir, 0o700)
        discovery = self.run_dir / "service-discovery.yml"
        discovery.write_text(SERVICE_DISCOVERY)

        runtime_sock = bind("127.0.0.1", self.config.runtime_port)
        gateway_sock = bind(self.config.host, self.config.port)
        self.runtime_port = runtime_sock.getsockname()[1]
        self.gateway_port = gateway_sock.getsockname()[1]

        env = ReplicaEnvironment(self.root, self.runtime_port, tls.ca, self.run_dir, discovery)
        own_env = [u for u in units if self.config.for_module(u.name).own_environment]
        for unit in units:
            env.source_env[unit.name] = write_module_sources(sources, unit.name, self.run_dir / "sources" / unit.name)
            if unit not in own_env:  # a module's own venv has its shared libs installed (editable)
                env.pythonpath[unit.name] = [str(_src(lib)) for lib in self.repo.closure(unit)]
        await self._remove_stale_environments()
        envs = None
        if own_env:
            from cmfleet.runtime.environments import EnvironmentManager

            envs = EnvironmentManager(self.root, self.logs)

        self.scheduler = Scheduler(loop, job_history=self.config.job_history, poll_hold=self.config.poll_hold)
        self.scheduler.redact = self.logs.redact  # a job's error may quote a secret
        self.manager = ReplicaManager(self.scheduler, self.logs, self.config, env, envs)
        for unit in units:
            self.manager.add_module(unit)
            _, token = manual_token(self.root, unit.name)
            settings = self.config.for_module(unit.name)
            manual = Replica(f"{unit.name}-manual", unit.name, settings.concurrency, token=token, external=True)
            manual.state = STOPPED
            manual.session_id = f"{unit.name}-manual"
            self.scheduler.add_replica(manual)
            self.logs.add_secrets([token])

        self._protocol = ProtocolServer(self.scheduler, tls.server_context(), self.config.http_limits())
        self._protocol.on_contact = lambda r: None
        self._protocol.on_connected = self.manager.connected
        self._protocol.on_disconnected = self.manager.disconnected
        await self._protocol.start(runtime_sock)

        self._gateway = gateway_server(Gateway(self), self.config.http_limits())
        await self._gateway.start(gateway_sock)
        self.manager.start()
        for unit in units:
            self._derive(unit.name)
        if self.config.reload:
            self._stop_watch = asyncio.Event()
            self._tasks.append(loop.create_task(self._watch(units)))

    async def _remove_stale_environments(self) -> None:
        """Remove the envs of modules the repository no longer has (all its modules count, not only the ones
        run now), off the event loop; one log line per env removed or kept."""
        from cmfleet.runtime.environments import remove_stale_environments

        modules = [unit.name for unit in self.repo.modules()]
        lines = await asyncio.get_running_loop().run_in_executor(None, remove_stale_environments, self.root, modules)
        for level, message in lines:
            self.logs.system(message, level=level)

    async def _watch(self, units: list[Any]) -> None:
        """Reload a module when its folder or a shared library it depends on changes."""
        from watchfiles import DefaultFilter, awatch

        watched: dict[str, list[Path]] = {}
        for unit in units:
            watched[unit.name] = [unit.path, *(lib.path for lib in self.repo.closure(unit))]
        roots = sorted({str(p) for paths in watched.values() for p in paths})

        class Filter(DefaultFilter):
            def __call__(self, change: Any, path: str) -> bool:
                return super().__call__(change, path) and not reload_ignores(Path(path))

        assert self._stop_watch is not None
        async for changes in awatch(*roots, watch_filter=Filter(), stop_event=self._stop_watch, debounce=300, step=50):
            files = [Path(p) for _, p in changes]
            for name, paths in watched.items():
                hit = [f for f in files if any(f == p or p in f.parents for p in paths)]
                if hit:
                    rel = ", ".join(sorted({rel_path(self.root, f) for f in hit})[:3])
                    self.manager.reload(name, f"changed {rel}")
                    self._derive(name)

    def _derive(self, name: str) -> None:
        """Derive a scale-to-zero Python module's schemas from its app.py (again after a reload, in the
        background): its calls are checked before its first replica posts (derived.py)."""
        from cmfleet.runtime.derived import derive_schemas

        settings = self.config.for_module(name)
        if settings.min_replicas > 0 or settings.command:
            return  # a replica starts (and posts) at once; another language's module has nothing to derive
        self.derived.pop(name, None)
        previous = self._deriving.pop(name, None)
        if previous is not None:
            previous.cancel()

        async def run() -> None:
            schemas = await derive_schemas(self.manager, name)
            if schemas is not None:
                self.derived[name] = schemas

        self._deriving[name] = asyncio.get_running_loop().create_task(run())

    async def stop(self) -> None:
        """Stop replicas (their process groups included), servers and the watcher; remove the run folder."""
        for task in self._deriving.values():
            task.cancel()
        if self._stop_watch is not None:
            self._stop_watch.set()
        if self.manager is not None:
            await self.manager.stop()
        if self.scheduler is not None:
            self.scheduler.cancel_all("lost: the runtime stopped")
        if self._protocol is not None:
            await self._protocol.stop()
        if self._gateway is not None:
            await self._gateway.stop()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, 3.0)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                task.cancel()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _src(lib: Unit) -> Path:
    return lib.path / "src" if (lib.path / "src").is_dir() else lib.path


class BackgroundRuntime:
    """A Runtime on its own event loop in a thread: ``with BackgroundRuntime(root, config) as rt: rt.url``."""

    def __init__(self, root: Path, config: DevConfig, modules: list[str] | None = None) -> None:
        self.runtime = Runtime(root, config, modules)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="cmfleet-dev", daemon=True)

    @property
    def url(self) -> str:
        return self.runtime.gateway_url

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the runtime's loop and return its result (for inspecting state safely)."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def __enter__(self) -> BackgroundRuntime:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.runtime.start(), self.loop).result(60)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self.runtime.stop(), self.loop).result(30)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(10)
        self.loop.close()

    def __exit__(self, *exc: Any) -> None:
        self.close()
