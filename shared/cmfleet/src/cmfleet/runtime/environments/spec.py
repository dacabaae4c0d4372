"""What a module's environment is made of (:class:`EnvSpec`, whose key decides reuse or rebuild) and the stamp
that a complete env carries (``cmfleet-env.json``)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cmfleet.discovery import Unit

ENVS_DIR = Path(".cmfleet") / "envs"
#: Where cmfleet dev keeps its state (venvs, TLS, tokens) instead of ``<root>/.cmfleet``: the artifact tox envs
#: point it into their own tmp folder, so a test run leaves nothing in the checkout.
STATE_VARIABLE = "CMFLEET_STATE_DIR"


def state_root(root: Path | str) -> Path:
    """The folder holding cmfleet dev's state for the repository at ``root``: ``$CMFLEET_STATE_DIR`` when set,
    else ``<root>/.cmfleet``."""
    return Path(os.environ.get(STATE_VARIABLE) or Path(root) / ENVS_DIR.parent)


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
        """The hash that decides between reuse and rebuild. The interpreter counts by what it is (its resolved
        file, version and base installation), not by the path it was reached through: the dev env's python and a
        tox env's are links to one installation, and ``cmfleet dev``, ``cmfleet invoke`` and the pytest fixtures
        run from either must reuse one env, not rebuild it in turn."""
        digest = hashlib.sha256()
        head = {
            "python": [sys.implementation.name, sys.version, sys.base_prefix, os.path.realpath(self.base_python)],
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
    return state_root(root) / ENVS_DIR.name / module


def toolkit_source(repo: Any) -> Path | None:
    """cmfleet's source folder: the repository's ``shared/cmfleet``, else the checkout this cmfleet runs from;
    ``None`` when cmfleet is an installed wheel (then it is installed from the index at this version)."""
    unit: Unit | None = repo.units.get("cmfleet")  # repo is a discovery.Repository
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
        stamp: dict[str, Any] = json.loads((folder / STAMP).read_text(encoding="utf-8"))  # building.py writes it
        return stamp
    except (OSError, ValueError):
        return None


def lock_used(stamp: dict[str, Any] | None) -> bool:
    """Whether the env of ``stamp`` was installed with its module's lock as constraints."""
    lock = (stamp or {}).get("lock")
    return bool(isinstance(lock, dict) and lock.get("used"))
