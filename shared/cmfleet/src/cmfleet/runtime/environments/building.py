"""Making a module's env with uv: the venv, its requirements (the lock's pins as constraints when it applies),
built beside its place and swapped in when complete."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cmfleet.runtime.environments.locking import _file_lock, lock_path
from cmfleet.runtime.environments.spec import (
    CONSTRAINTS,
    OUTPUT_LIMIT,
    STAMP,
    EnvBuildError,
    EnvSpec,
    environment_spec,
    python_of,
    read_stamp,
)


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
