"""Locks between processes on a module's env (``.<module>.lock`` while it is checked or built, ``.<module>.use``
while replicas use it) and the removal of envs of modules the repository no longer has."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from cmfleet.runtime.environments.spec import ENVS_DIR, state_root

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
    envs = state_root(root) / ENVS_DIR.name
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
