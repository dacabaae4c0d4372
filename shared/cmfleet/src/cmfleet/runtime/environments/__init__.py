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

The parts: ``spec`` (what an env is made of, its key and stamp), ``locking`` (locks between processes, removal of
stale envs), ``building`` (uv), ``progress`` (the terminal display), ``manager`` (the runtime's side) and ``select``
(which interpreter runs a module's code outside ``cmfleet dev``). Every name stays importable from here.
"""

from __future__ import annotations

from cmfleet.runtime.environments.building import (
    Builder,
    LineSink,
    _constraints,
    _gist,
    _python_version,
    ensure_module_environment,
    find_uv,
)
from cmfleet.runtime.environments.locking import (
    USE_LOCK_VARIABLE,
    _file_lock,
    _open_locked,
    hold_use_lock,
    lock_path,
    remove_stale_environments,
)
from cmfleet.runtime.environments.manager import EnvironmentManager
from cmfleet.runtime.environments.progress import _Progress
from cmfleet.runtime.environments.spec import (
    CONSTRAINTS,
    ENVS_DIR,
    MODES,
    OUTPUT_LIMIT,
    RETRY_AFTER,
    STAMP,
    WORKERS,
    EnvBuildError,
    EnvSpec,
    env_folder,
    environment_spec,
    lock_used,
    python_of,
    read_stamp,
    toolkit_source,
)

__all__ = [
    "CONSTRAINTS",
    "ENVS_DIR",
    "MODES",
    "OUTPUT_LIMIT",
    "RETRY_AFTER",
    "STAMP",
    "USE_LOCK_VARIABLE",
    "WORKERS",
    "Builder",
    "EnvBuildError",
    "EnvSpec",
    "EnvironmentManager",
    "LineSink",
    "_Progress",
    "_constraints",
    "_file_lock",
    "_gist",
    "_open_locked",
    "_python_version",
    "ensure_module_environment",
    "env_folder",
    "environment_spec",
    "find_uv",
    "hold_use_lock",
    "lock_path",
    "lock_used",
    "python_of",
    "read_stamp",
    "remove_stale_environments",
    "toolkit_source",
]
