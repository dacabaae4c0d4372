"""Which interpreter runs a module's code outside ``cmfleet dev``: ``cmfleet invoke``, ``cmfleet check``'s import
probe and the pytest fixtures.

This interpreter when it has what the module declares (its ``[project].dependencies`` and those of its shared
libraries, at versions they allow), as in a module's tox env or a dev env that installed them. Otherwise the
module's own venv, the one ``cmfleet dev`` makes (:mod:`.building`: same spec, same key, so one env serves both and
is reused while nothing it is made of changes), so a module with third-party dependencies runs from the
development environment with no extra step and gives the result ``cmfleet dev`` gives.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cmfleet.runtime.environments.building import Builder
from cmfleet.runtime.environments.spec import EnvBuildError, environment_spec, read_stamp

#: Set in a process already running in its module's env: it never looks for another one.
IN_MODULE_ENV = "CMFLEET_IN_MODULE_ENV"


def missing_requirements(repo: Any, unit: Any) -> list[str]:
    """The third-party requirements of ``unit`` and its shared libraries that this interpreter does not satisfy
    (not installed, or at a version the specifier excludes), as declared. The repository's own shared libraries
    are left out: the development environment installs them editable, and tox envs from their folders."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    local = {canonicalize_name(lib.distribution) for lib in repo.shared()}
    missing: list[str] = []
    for owner in [unit, *repo.closure(unit)]:
        for text in owner.dependencies:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                missing.append(text)  # the env build reports it with uv's words
                continue
            if req.marker is not None and not req.marker.evaluate():
                continue
            if canonicalize_name(req.name) in local:
                continue
            try:
                installed = version(req.name)
            except PackageNotFoundError:
                missing.append(text)
                continue
            if req.specifier and not req.specifier.contains(installed, prereleases=True):
                missing.append(text)
    return sorted(set(missing))


def module_python(repo: Any, unit: Any, say: Callable[[str], None] | None = None) -> Path | None:
    """``None`` when this interpreter runs ``unit``'s code as declared; else the Python of the module's env, made
    (or reused) now. ``say`` gets one line when the env is used, and uv's lines while it is made.

    Raises EnvBuildError (with uv's words) when the env cannot be made."""
    if os.environ.get(IN_MODULE_ENV):
        return None
    missing = missing_requirements(repo, unit)
    if not missing:
        return None
    spec = environment_spec(repo, unit)
    stamp = read_stamp(spec.folder)
    fresh = stamp is not None and stamp.get("key") == spec.key() and spec.python.exists()
    if say is not None:
        where = spec.folder.relative_to(repo.root) if spec.folder.is_relative_to(repo.root) else spec.folder
        how = "its environment" if fresh else "its environment, creating it"
        lacking = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        say(f"{unit.name}: this Python lacks {lacking}: running in {how} ({where.as_posix()})")
    if fresh or say is None:
        return Builder().ensure(spec, None, say)[0]
    from cmfleet.progress import steps

    with steps(f"{unit.name}: environment") as step:  # uv's lines on a terminal; one closing line in a log
        step("made with uv")
        return Builder().ensure(spec, step if sys.stderr.isatty() else None, say)[0]


def child_environment() -> dict[str, str]:
    """The environment of a process run in a module's env (marked so that it runs there, not again elsewhere)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env[IN_MODULE_ENV] = "1"
    return env


def stderr_line(line: str) -> None:
    """Print one line to stderr (the default ``say`` of the CLI)."""
    print(line, file=sys.stderr, flush=True)


__all__ = ["IN_MODULE_ENV", "EnvBuildError", "child_environment", "missing_requirements", "module_python"]
