"""Per-module replica environments of ``cmfleet dev`` (``environments = "module"``, the default).

A container in Foundry holds only what its module declares, so locally each module's replicas run in a venv of
their own, ``<root>/.cmfleet/envs/<module>/`` (git-ignored), made with uv from:

* the module's declared third-party dependencies (``[project].dependencies`` minus the repository's shared libs),
* its shared libraries (``Repository.closure``), editable from their folders,
* cmfleet itself, editable and without extras (the entrypoint needs only the core).

A module that imports something it does not declare fails here as it would in Foundry. When the module has a
``requirements.lock`` (``cmfleet lock``) made for the env's Python (major.minor), the install takes the lock's pins as
constraints, so the env holds the versions of the module's image; the lock's hashes are left out (they name the
image's linux/amd64 files, this machine may need others of the same release). A lock for another Python, an
unreadable one, or pins uv cannot install here (a stale lock, a release without files for this platform) make the
install fall back to the declared ranges, with one line saying why; the lock alone never fails an env.

The env is reused while a hash of (Python version, requirement list, the pyproject files' and the lock's contents)
matches the one stored in ``cmfleet-env.json`` inside it (which also records whether the lock was used, and its
sha256); otherwise it is built again, in a temporary folder swapped in when complete (an env without a stamp is
never used). ``environments = "shared"`` runs every replica with the runtime's own Python.

Two lock files per env, beside it: ``.<module>.lock`` (held while the env is checked or built, so two
``cmfleet dev`` on one repository build it once) and ``.<module>.use`` (held shared by every ``cmfleet dev`` whose
replicas use the env, for as long as it runs). At start, ``cmfleet dev`` removes the envs of modules the
repository no longer has (:func:`remove_stale_environments`), except one whose locks another process holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ENVS_DIR = Path(".cmfleet") / "envs"
STAMP = "cmfleet-env.json"
CONSTRAINTS = "cmfleet-constraints.txt"  # the lock's pins without hashes, inside the env
MODES = ("module", "shared")
WORKERS = 3  # envs built at once (uv parallelises each build too)
RETRY_AFTER = 60.0  # seconds before a failed build with unchanged inputs is tried again
OUTPUT_LIMIT = 4000  # characters of uv's output kept in an error


class EnvBuildError(Exception):
    """A module's environment could not be made; the message carries uv's own error text."""


@dataclass(frozen=True)
class EnvSpec:
    """What one module's environment is made of."""

    module: str
    folder: Path
    base_python: str
    requirements: tuple[str, ...]  # third-party requirement strings, as declared
    editables: tuple[Path, ...]  # shared libraries (deepest first), then cmfleet
    files: tuple[Path, ...]  # pyproject files whose contents are part of the key
    lock: Path | None = None  # the module's requirements.lock (it may not exist); its contents are part of the key

    @property
    def python(self) -> Path:
        """The env's interpreter."""
        return python_of(self.folder)

    def key(self) -> str:
        """The hash that decides between reuse and rebuild."""
        digest = hashlib.sha256()
        head = {
            "python": [sys.implementation.name, sys.version, sys.base_prefix, self.base_python],
            "requirements": list(self.requirements),
            "editables": [str(p) for p in self.editables],
        }
        digest.update(json.dumps(head, sort_keys=True).encode())
        for file in self.files:
            digest.update(b"\0" + str(file).encode() + b"\0")
            digest.update(file.read_bytes() if file.is_file() else b"(missing)")
        if self.lock is not None and self.lock.is_file():  # an env made before locks existed keeps its key
            digest.update(b"\0lock\0" + str(self.lock).encode() + b"\0" + self.lock.read_bytes())
        return digest.hexdigest()


def python_of(folder: Path) -> Path:
    """The interpreter of the venv at ``folder``."""
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def env_folder(root: Path, module: str) -> Path:
    """Where ``module``'s environment lives."""
    return Path(root) / ENVS_DIR / module


def toolkit_source(repo: Any) -> Path | None:
    """cmfleet's source folder: the repository's ``shared/cmfleet``, else the checkout this cmfleet runs from;
    ``None`` when cmfleet is an installed wheel (then it is installed from the index at this version)."""
    unit = repo.units.get("cmfleet")
    if unit is not None and not unit.is_module:
        return unit.path
    import cmfleet

    candidate = Path(cmfleet.__file__).resolve().parents[2]  # <checkout>/src/cmfleet/__init__.py
    pyproject = candidate / "pyproject.toml"
    if pyproject.is_file() and 'name = "cmfleet"' in pyproject.read_text(encoding="utf-8"):
        return candidate
    return None


def environment_spec(repo: Any, unit: Any, base_python: str | None = None) -> EnvSpec:
    """The spec of ``unit``'s environment (``repo`` should be freshly loaded: pyprojects are read from it)."""
    from cmfleet.artifacts.lock import LOCK_FILE
    from cmfleet.discovery import IMAGE_RUNTIME, requirement_name

    libs = repo.closure(unit)
    shared = {lib.distribution for lib in repo.shared()}
    requirements = [r for r in unit.dependencies if requirement_name(r) not in shared]
    toolkit = toolkit_source(repo)
    editables = [lib.path for lib in libs if lib.path != toolkit]
    files = [unit.pyproject, *(lib.pyproject for lib in libs if lib.path != toolkit)]
    if toolkit is not None:
        # cmcore (the toolkit's dependency, what images run) comes from its folder beside the toolkit's when the
        # repository does not have it as a unit: it is not on the package index
        runtime = toolkit.parent / IMAGE_RUNTIME
        if runtime not in editables and (runtime / "pyproject.toml").is_file():
            editables.append(runtime)
            files.append(runtime / "pyproject.toml")
        editables.append(toolkit)
        files.append(toolkit / "pyproject.toml")
    else:
        from importlib.metadata import version

        requirements.append(f"cmfleet=={version('cmfleet')}")
    return EnvSpec(
        unit.name,
        env_folder(repo.root, unit.name),
        base_python or sys.executable,
        tuple(requirements),
        tuple(editables),
        tuple(files),
        unit.path / LOCK_FILE,
    )


def read_stamp(folder: Path) -> dict[str, Any] | None:
    """The stamp of a complete env at ``folder`` (``None`` when there is none)."""
    try:
        return json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def lock_used(stamp: dict[str, Any] | None) -> bool:
    """Whether the env of ``stamp`` was installed with its module's lock as constraints."""
    lock = (stamp or {}).get("lock")
    return bool(isinstance(lock, dict) and lock.get("used"))


def _python_version(python: Path) -> str:
    """``major.minor`` of the interpreter ``python``."""
    out = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        raise EnvBuildError(f"{python} did not start (exit code {out.returncode}):\n{out.stderr[-OUTPUT_LIMIT:]}")
    return out.stdout.strip()


def _gist(error: EnvBuildError) -> str:
    """uv's own words from a failed ``uv pip install``, on one line (the command line of the message left out)."""
    lines = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    text = " ".join(lines).removeprefix("error: ").replace(" cause: ", ": ") or str(error)
    return text if len(text) <= 400 else text[:397] + "..."


def _constraints(spec: EnvSpec, venv: Path) -> tuple[Path | None, dict[str, Any], str | None]:
    """How the module's lock applies to the venv at ``venv``: ``(constraints file, stamp entry, why not)``.

    The constraints file (written into the venv) holds the lock's pins without their hashes; it is ``None``, with
    the reason, when the lock cannot be used for this venv. Call only when ``spec.lock`` exists."""
    from cmfleet.artifacts.lock import LockError, parse_lock

    assert spec.lock is not None
    name = spec.lock.name
    entry: dict[str, Any] = {"path": str(spec.lock), "sha256": None, "python": None, "used": False}
    try:
        lock = parse_lock(spec.lock)
    except LockError as exc:
        return None, entry, f"{name} cannot be read ({exc.reason}, line {exc.line}): installing the declared ranges"
    entry.update(sha256=lock.sha256, python=lock.python)
    here = _python_version(python_of(venv))
    if lock.python is None:
        return None, entry, f"{name} records no '# python:' line: installing the declared ranges"
    if lock.python != here:
        why = f"{name} is for Python {lock.python}, this venv has {here}: installing the declared ranges "
        return None, entry, why + f"(run cmfleet dev with Python {lock.python} for the image's versions)"
    path = venv / CONSTRAINTS
    lines = [f"# the pins of {spec.lock} (sha256 {lock.sha256}), without hashes"]
    lines += [f"{pin.name}=={pin.version}" for pin in lock.pins.values()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, entry, None


_UV_LOCK = threading.Lock()
_UV: list[str] = []


def find_uv() -> str:
    """The uv executable: the ``uv`` Python package's, else one on PATH."""
    # Once, under a lock: find_uv_bin reads sysconfig, whose first use is not thread-safe (None from another thread)
    with _UV_LOCK:
        if not _UV:
            try:
                from uv import find_uv_bin

                _UV.append(find_uv_bin())
            except (ImportError, FileNotFoundError):
                found = shutil.which("uv")
                if found:
                    _UV.append(found)
        if _UV:
            return _UV[0]
    raise EnvBuildError(
        "uv is needed to make per-module environments: install cmfleet[runtime] (or `pip install uv`), "
        'or run every module in the runtime\'s own Python with `cmfleet dev --env shared` / environments = "shared"'
    )


#: Set for a hand-started replica (``cmfleet dev --print-env``): the "use" lock of its venv, which the entrypoint
#: holds (shared) while it runs, as a runtime does for the venvs of its own replicas.
USE_LOCK_VARIABLE = "CMFLEET_ENV_USE_LOCK"


def _open_locked(path: Path, *, shared: bool, wait: bool) -> IO[str] | None:
    """Open ``path`` (made if need be) with a lock on it across processes, held until the returned file is
    closed: shared or exclusive, waiting for it or not (None when another process holds a lock that excludes
    this one). Where there are no such locks (Windows) the file is returned open and unlocked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("a")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock between processes
        return fh
    try:
        fcntl.flock(fh, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        fh.close()
        return None
    return fh


def hold_use_lock(path: str) -> IO[str] | None:
    """Take a shared lock on ``path`` for as long as the returned file stays open. Waits only while a
    ``cmfleet dev`` removes the venv (a second at most)."""
    return _open_locked(Path(path), shared=True, wait=True)


def lock_path(envs: Path, module: str, kind: str) -> Path:
    """The lock file ``kind`` ("lock": building, "use": in use by a runtime) of ``module``'s env in ``envs``."""
    return envs / f".{module}.{kind}"


def remove_stale_environments(root: Path, modules: Iterable[str]) -> list[tuple[str, str]]:
    """Remove ``<root>/.cmfleet/envs/<name>`` for every ``name`` not in ``modules`` (every module of the
    repository, as discovered) and return one ``(level, message)`` log line per folder removed or kept.

    A folder whose lock another process holds (a ``cmfleet dev`` building or using it) is kept. A symbolic link
    is removed as a link (its target is left alone), and nothing inside a folder is followed out of it
    (``shutil.rmtree`` removes links, not what they point to). Other files and the hidden ones (locks, builds
    in progress) are left as they are."""
    envs = Path(root) / ENVS_DIR
    try:
        entries = sorted(os.scandir(envs), key=lambda entry: entry.name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [("WARNING", f"could not look for environments of removed modules in {ENVS_DIR.as_posix()}: {exc}")]
    existing = set(modules)
    lines: list[tuple[str, str]] = []
    for entry in entries:
        name = entry.name
        link = entry.is_symlink()
        if name.startswith(".") or name in existing or not (link or entry.is_dir(follow_symlinks=False)):
            continue
        where = (ENVS_DIR / name).as_posix()
        why = f"the repository has no module {name!r}"
        held: list[IO[str]] = []
        try:
            for kind in ("use", "lock"):  # the order in which a runtime takes them (it waits; this does not)
                fh = _open_locked(lock_path(envs, name, kind), shared=False, wait=False)
                if fh is None:
                    break
                held.append(fh)
            if len(held) < 2:
                lines.append(
                    ("INFO", f"kept environment {where} although {why}: in use (another cmfleet dev or a replica)")
                )
                continue
            if link:
                os.unlink(entry.path)
            else:
                shutil.rmtree(entry.path)
            for kind in ("use", "lock"):
                with contextlib.suppress(OSError):
                    os.unlink(lock_path(envs, name, kind))
            note = " (a symbolic link: removed, its target left alone)" if link else ""
            lines.append(("INFO", f"removed environment {where}{note}: {why}"))
        except OSError as exc:
            lines.append(("WARNING", f"could not remove environment {where} ({why}): {exc}"))
        finally:
            for fh in held:
                fh.close()
    return lines


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (two ``cmfleet dev`` on one repository build an env once)."""
    fh = _open_locked(path, shared=False, wait=True)
    try:
        yield
    finally:
        if fh is not None:
            fh.close()


LineSink = Callable[[str], None]


class Builder:
    """Runs uv; ``stop()`` ends every uv process it started (the runtime is stopping)."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self.stopped = False

    def stop(self) -> None:
        """Kill the uv processes still running; later builds fail at once."""
        with self._lock:
            self.stopped = True
            procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # uv and the build backends it started

    def run(self, argv: list[str], cwd: Path, on_line: LineSink | None) -> None:
        """Run one uv command; its output goes to ``on_line`` line by line and, on failure, into the error."""
        with self._lock:
            if self.stopped:
                raise EnvBuildError("the runtime is stopping")
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env={**os.environ, "NO_COLOR": "1"},
                start_new_session=True,  # its own process group, so stop() can end its build backends too
            )
            self._procs.add(proc)
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip()
                if line and not line.startswith("Using Python"):  # it names the temporary folder
                    lines.append(line)
                    if on_line is not None:
                        on_line(line)
            returncode = proc.wait()
        finally:
            with self._lock:
                self._procs.discard(proc)
        if self.stopped:
            raise EnvBuildError("the runtime is stopping")
        if returncode != 0:
            output = "\n".join(lines)
            if len(output) > OUTPUT_LIMIT:
                output = "...\n" + output[-OUTPUT_LIMIT:]
            command = " ".join(argv[1:3])
            raise EnvBuildError(f"`uv {command}` failed (exit code {returncode}):\n{output}")

    def ensure(
        self, spec: EnvSpec, on_line: LineSink | None = None, on_note: LineSink | None = None
    ) -> tuple[Path, bool]:
        """The env's Python, building the env first unless its stamp matches: ``(python, built)``.

        ``on_note`` gets one line when the module has a lock that this build could not use (and why)."""
        key = spec.key()
        with _file_lock(lock_path(spec.folder.parent, spec.module, "lock")):
            stamp = read_stamp(spec.folder)
            if stamp is not None and stamp.get("key") == key and spec.python.exists():
                return spec.python, False
            uv = find_uv()
            spec.folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{spec.module}.building-", dir=spec.folder.parent))
            try:
                # --relocatable: the env is built beside its final place and renamed into it when complete
                venv = [uv, "venv", "--quiet", "--no-project", "--relocatable", "--clear", "--python"]
                venv += [spec.base_python, str(tmp)]
                self.run(venv, spec.folder.parent, on_line)
                install = [uv, "pip", "install", "--python", str(python_of(tmp)), *spec.requirements]
                for path in spec.editables:
                    install += ["--editable", str(path)]
                constraints, lock, why_not = None, None, None  # without a lock: the declared ranges
                if spec.lock is not None and spec.lock.is_file():
                    constraints, lock, why_not = _constraints(spec, tmp)
                if constraints is not None and lock is not None:
                    try:
                        self.run([*install, "--constraint", str(constraints)], spec.folder.parent, on_line)
                    except EnvBuildError as exc:
                        if self.stopped:
                            raise
                        why_not = f"the pins of {Path(lock['path']).name} could not be installed here ({_gist(exc)}): "
                        why_not += f"installing the declared ranges (`cmfleet lock {spec.module}` updates a stale lock)"
                        # a fresh venv: what the failed attempt installed would hold locked versions back
                        self.run(venv, spec.folder.parent, on_line)
                        self.run(install, spec.folder.parent, on_line)
                    else:
                        lock["used"] = True
                else:
                    self.run(install, spec.folder.parent, on_line)
                if lock is not None and why_not is not None:
                    lock["why_not"] = why_not
                stamp = {
                    "key": key,
                    "module": spec.module,
                    "python": sys.version.split()[0],
                    "requirements": list(spec.requirements),
                    "editables": [str(p) for p in spec.editables],
                    "lock": lock,
                    "created": time.time(),
                }
                (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
                old = spec.folder.with_name(f".{spec.module}.old-{os.getpid()}-{threading.get_ident()}")
                if spec.folder.exists():
                    os.rename(spec.folder, old)
                os.rename(tmp, spec.folder)
                # Replicas of the old env that are still draining keep the files they opened; new ones use this env.
                shutil.rmtree(old, ignore_errors=True)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        if why_not is not None and on_note is not None:
            on_note(why_not)
        return spec.python, True


def ensure_module_environment(
    root: Path,
    module: str,
    builder: Builder | None = None,
    on_line: LineSink | None = None,
    on_note: LineSink | None = None,
) -> tuple[Path, bool]:
    """Create or reuse ``module``'s env from the repository's current files: ``(python, built)``. ``on_note`` gets
    the line saying why the module's lock was not used (default: printed on stderr, prefixed with the module)."""
    from cmfleet.discovery import DiscoveryError, Repository

    try:
        repo = Repository.load(Path(root))
        spec = environment_spec(repo, repo.module(module))
    except DiscoveryError as exc:
        raise EnvBuildError(str(exc)) from None
    if on_note is None:
        on_note = lambda note: print(f"{module}: {note}", file=sys.stderr)  # noqa: E731
    return (builder or Builder()).ensure(spec, on_line, on_note)


class _Progress:
    """Live rich progress lines (one per env being built) on the runtime's terminal console."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._progress: Any = None
        self._lock = threading.Lock()

    def add(self, module: str) -> Any:
        if self.console is None:
            return None
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with self._lock:
            if self._progress is None:
                self._progress = Progress(
                    SpinnerColumn(),
                    TextColumn("[bold]env[/] {task.fields[module]}"),
                    TimeElapsedColumn(),
                    TextColumn("[dim]{task.description}"),
                    console=self.console,
                    transient=True,
                )
                self._progress.start()
            return self._progress.add_task("creating venv", module=module, total=None)

    def update(self, task: Any, line: str) -> None:
        if task is None:
            return
        with self._lock:
            if self._progress is not None:
                self._progress.update(task, description=line[:100])

    def done(self, task: Any) -> None:
        if task is None:
            return
        with self._lock:
            if self._progress is None:
                return
            self._progress.remove_task(task)
            if not self._progress.tasks:
                self._progress.stop()
                self._progress = None


class EnvironmentManager:
    """The runtime's side: builds off the event loop (a bounded thread pool, several modules in parallel),
    one build per module at a time, results remembered until :meth:`invalidate` (hot reload)."""

    def __init__(self, root: Path, logs: Any, workers: int = WORKERS) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.root = Path(root)
        self.logs = logs
        self.builder = Builder()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cmfleet-env")
        self._ready: dict[str, Path] = {}
        self._building: dict[str, asyncio.Future[Path]] = {}
        self._generation: dict[str, int] = {}
        self._failed: dict[str, tuple[str, float, str]] = {}  # module -> (key, when, message)
        self._progress = _Progress(getattr(logs, "_console", None))  # the LogHub's console: lines print above
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._using: dict[str, IO[str]] = {}  # module -> its env's "use" lock, held (shared) until stop()
        #: Modules whose env uv is making right now (kept on the event loop; a reused env never enters it).
        self.building: set[str] = set()
        #: Called on the event loop with ``(module, True)`` when uv starts making the module's env and
        #: ``(module, False)`` when it is done (made or failed).
        self.on_building: Callable[[str, bool], None] = lambda module, building: None

    def prepare(self, modules: list[str]) -> None:
        """Start building ``modules``' envs now (a module scaled to zero then cold-starts without the wait)."""
        for name in modules:
            task = asyncio.get_running_loop().create_task(self._quietly(name))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _quietly(self, name: str) -> None:
        with contextlib.suppress(EnvBuildError):  # reported when a replica needs the env
            await self.python(name)

    def invalidate(self, module: str) -> None:
        """Files of ``module`` changed: check its env again (rebuilt only if its inputs changed)."""
        self._ready.pop(module, None)
        self._failed.pop(module, None)
        self._generation[module] = self._generation.get(module, 0) + 1

    async def python(self, module: str) -> Path:
        """The Python of ``module``'s env, once it exists; raises EnvBuildError with the cause."""
        loop = self._loop = asyncio.get_running_loop()
        while True:
            if self.builder.stopped:
                raise EnvBuildError("the runtime is stopping")
            if module in self._ready:
                return self._ready[module]
            generation = self._generation.get(module, 0)
            future = self._building.get(module)
            if future is None:
                future = self._building[module] = loop.run_in_executor(self._executor, self._build, module)
                future.add_done_callback(
                    lambda f, m=module: self._building.pop(m, None) if self._building.get(m) is f else None
                )
            try:
                python = await asyncio.shield(future)
            except EnvBuildError:
                if self._generation.get(module, 0) != generation:
                    continue  # files changed while it was being built: try the new ones
                raise
            if self._generation.get(module, 0) == generation:
                self._ready[module] = python
                return python

    def _log(self, message: str, module: str, level: str = "INFO") -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.logs.system, message, module, "-", level)

    def _building_changed(self, module: str, building: bool) -> None:
        """(On the event loop.) uv started or stopped making ``module``'s env."""
        if building:
            self.building.add(module)
        else:
            self.building.discard(module)
        self.on_building(module, building)

    def _build(self, module: str) -> Path:
        """(In a worker thread.) Create or reuse one module's env."""
        from cmfleet.discovery import DiscoveryError, Repository, rel_path

        try:
            repo = Repository.load(self.root)
            spec = environment_spec(repo, repo.module(module))
            key = spec.key()
        except DiscoveryError as exc:
            raise EnvBuildError(str(exc)) from None
        failed = self._failed.get(module)
        if failed is not None and failed[0] == key and time.monotonic() - failed[1] < RETRY_AFTER:
            raise EnvBuildError(failed[2])
        self._use(spec.folder.parent, module)
        where = rel_path(self.root, spec.folder)
        stamp = read_stamp(spec.folder)
        task = None
        making = stamp is None or stamp.get("key") != key
        if making:
            what = f"{len(spec.requirements)} requirement(s), {len(spec.editables)} editable"
            self._log(f"{'creating' if stamp is None else 'rebuilding'} environment {where} ({what})", module)
            task = self._progress.add(module)
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._building_changed, module, True)
        started = time.monotonic()
        try:
            python, built = self.builder.ensure(
                spec,
                lambda line: self._progress.update(task, line),
                lambda note: self._log(note, module, "WARNING"),
            )
        except Exception as exc:  # noqa: BLE001 - whatever it is, the module's replicas report it
            detail = str(exc) if isinstance(exc, (EnvBuildError, OSError)) else f"{type(exc).__name__}: {exc}"
            message = f"could not create its environment {where}: {detail}"
            self._failed[module] = (key, time.monotonic(), message)
            if not self.builder.stopped:
                self._log(message, module, "ERROR")
            raise EnvBuildError(message) from None
        finally:
            self._progress.done(task)
            if making and self._loop is not None:  # reaches the loop before the build's result (FIFO callbacks)
                self._loop.call_soon_threadsafe(self._building_changed, module, False)
        self._failed.pop(module, None)
        if built:
            locked = " (locked)" if lock_used(read_stamp(spec.folder)) else ""
            self._log(f"environment {where} ready{locked} in {time.monotonic() - started:.1f} s", module)
        else:
            self._log(f"reusing environment {where}", module)
        return python

    def _use(self, envs: Path, module: str) -> None:
        """(In a worker thread, one per module at a time.) Hold the env's "use" lock, shared, until stop(): another
        ``cmfleet dev`` then keeps the env even if it finds no such module (see remove_stale_environments)."""
        if module in self._using:
            return
        fh = hold_use_lock(str(lock_path(envs, module, "use")))
        if fh is not None:
            self._using[module] = fh

    async def stop(self) -> None:
        """End running builds (their uv processes) and the worker threads; release the envs' "use" locks."""
        self.builder.stop()
        for task in list(self._background):
            task.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        for fh in self._using.values():
            fh.close()
        self._using.clear()
