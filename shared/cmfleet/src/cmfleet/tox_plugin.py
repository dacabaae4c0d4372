"""The tox plugin: one environment per unit, generated from static discovery (no edit to tox.ini).

* ``module-<name>``: the module's declared dependencies, its shared libraries installed from their paths
  (transitively), cmfleet (pytest fixtures and ``cmfleet check``); runs its tests and ``cmfleet check``.
* ``shared-<name>``: the library itself and what it declares; runs its tests and ``cmfleet check``.
* ``cmfleet``: the toolkit with its runtime, test and build extras; runs its own tests.
* ``artifact-<name>`` (one per module, label ``artifacts``): builds the module's artifact into the env's tmp folder
  (``--dev`` unless every unit of its image is on its release tag), installs it offline into a fresh venv as its
  Dockerfile does, checks that the schemas it posts equal ``cmfleet schema``, then runs the module's own tests
  against that installation (``--cm-target artifact``: through its entrypoint over the real runtime protocol).

Labels: ``-m modules``, ``-m shared``, and ``-m affected``: the units changed since a base ref (given by
``--cmfleet-since REF`` or ``$CMFLEET_SINCE``) and their transitive dependents, as ``cmfleet affected`` computes
them; without a base ref no env carries the label. Values from tox.ini's ``[testenv]`` still apply, and a
``[testenv:module-x]`` section overrides the generated settings of that one environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tox.config.loader.memory import MemoryLoader
from tox.plugin import impl

from cmfleet.discovery import TOOLKIT, DiscoveryError, Repository, Unit, find_root, requirement_name


def _repository() -> Repository | None:
    """The repository around the working directory (None outside one). A unit graph that breaks the rules
    stops tox with the same one-line error and exit code (2) as every cmfleet command, never a traceback."""
    try:
        root = find_root(Path.cwd())
    except DiscoveryError:
        return None
    try:
        repo = Repository.load(root)
        repo.validate()
    except DiscoveryError as exc:
        import sys

        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return repo


def env_settings(repo: Repository, unit: Unit, posargs: tuple[str, ...] = ()) -> dict[str, Any]:
    """The tox settings of ``unit``'s environment; ``posargs`` (after ``--``) go to pytest."""
    from tox.config.types import Command

    toolkit = repo.units.get("cmfleet")
    # Local units are installed editable, so a reused env always tests the current source.
    shared_paths = [f"-e {lib.path}" for lib in repo.closure(unit)]
    local = {lib.distribution for lib in repo.shared()}
    third_party = [req for req in unit.dependencies if requirement_name(req) not in local]
    tests = f"{unit.rel}/tests"
    if unit.name == "cmfleet" and unit.kind == "shared":
        return {
            "description": "the cmfleet toolkit: its own tests (runtime, release, build, browser)",
            "package": "skip",
            "deps": [*shared_paths, f"-e {unit.path}[runtime,test,build]"],
            "commands": [Command(["pytest", tests, *posargs])],
            "labels": ["shared", "toolkit"],
        }
    deps = [*third_party, *shared_paths]
    if toolkit is not None and f"-e {toolkit.path}" not in deps:
        # the toolkit's own shared libraries (cmcore) come from their paths too: they are not on the index
        deps += [f"-e {lib.path}" for lib in repo.closure(toolkit) if f"-e {lib.path}" not in deps]
        deps.append(f"-e {toolkit.path}")
    if unit.kind == "shared":
        # A library's own `test` extra (if it declares one) holds what only its tests need.
        extras = unit.project.get("optional-dependencies", {})
        deps.append(f"-e {unit.path}[test]" if "test" in extras else f"-e {unit.path}")
    deps.append("pytest>=8")
    kind = "module" if unit.is_module else "shared library"
    return {
        "description": f"{kind} {unit.name}: its tests and cmfleet check",
        "package": "skip",
        "deps": deps,
        "commands": [Command(["pytest", tests, *posargs]), Command(["cmfleet", "check", unit.name])],
        "labels": ["modules" if unit.is_module else "shared"],
    }


ARTIFACT_LABEL = "artifacts"


def artifact_env(unit: Unit) -> str:
    """The name of the env that tests ``unit``'s built artifact."""
    return f"artifact-{unit.name}"


def artifact_settings(repo: Repository, unit: Unit, posargs: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings of ``artifact-<module>``: the module env's deps, the toolkit with its runtime extra (the local
    runtime serving the installed entrypoint, and uv for the build); its folder is the env's own tmp dir."""
    from tox.config.types import Command

    toolkit = repo.units.get(TOOLKIT)
    editable = f"-e {toolkit.path}" if toolkit is not None else None
    deps = [f"{d}[runtime]" if d == editable else d for d in env_settings(repo, unit)["deps"]]
    installed = ["python", "-m", "cmfleet.artifacts.installed"]
    return {
        "description": f"module {unit.name}: its built artifact installed as its image installs it; its tests on it",
        "package": "skip",
        "deps": deps,
        "commands": [
            Command([*installed, "prepare", unit.name]),
            Command([*installed, "schemas", unit.name]),
            Command(["pytest", f"{unit.rel}/tests", "--cm-target", "artifact", *posargs]),
        ],
        "labels": [ARTIFACT_LABEL],
    }


AFFECTED_LABEL = "affected"
SINCE_ENV = "CMFLEET_SINCE"


@impl
def tox_add_option(parser: Any) -> None:
    """``--cmfleet-since REF``: the base ref of the ``affected`` label."""
    parser.add_argument(
        "--cmfleet-since",
        dest="cmfleet_since",
        metavar="REF",
        default="",  # tox infers the option's type from its default
        help=f"label '{AFFECTED_LABEL}' selects units changed since REF and their dependents (or ${SINCE_ENV})",
    )


def affected_envs(repo: Repository, since: str | None) -> set[str]:
    """Names of the units affected since ``since`` (empty without a ref); a bad ref stops tox with the reason."""
    if not since:
        return set()
    from tox.report import HandledError

    from cmfleet.repo.affected import affected
    from cmfleet.repo.git import GitError

    try:
        return set(affected(repo, since).units)
    except (GitError, DiscoveryError) as exc:
        raise HandledError(f"cmfleet: cannot select the '{AFFECTED_LABEL}' envs: {exc}") from None


@impl
def tox_extend_envs() -> Iterator[str]:
    """One env per unit of the repository around the working directory."""
    repo = _repository()
    if repo is None:
        return
    for unit in repo.units.values():
        yield unit.tox_env
        if unit.is_module:
            yield artifact_env(unit)


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:
    """Add the generated envs to env_list and compute their settings (applied in tox_add_env_config)."""
    repo = _repository()
    if repo is None:
        return
    # Generated envs join the default env_list, so a bare `tox p` runs the whole matrix; envs listed in
    # tox.ini's own env_list come first and keep their order.
    from tox.config.loader.str_convert import StrConvert
    from tox.config.types import EnvList

    ini_envs: list[str] = []
    for loader in core_conf.loaders:
        try:
            raw = loader.load_raw("env_list", core_conf, None)
        except KeyError:
            continue
        ini_envs = list(StrConvert().to_env_list(raw).envs) if isinstance(raw, str) else list(raw.envs)
        break
    every = [name for u in repo.units.values() for name in (u.tox_env, *([artifact_env(u)] if u.is_module else []))]
    generated = [name for name in every if name not in ini_envs]
    core_conf.loaders.insert(0, MemoryLoader(env_list=EnvList([*ini_envs, *generated])))
    posargs = tuple(state.conf.pos_args(None) or ())
    since = getattr(state.conf.options, "cmfleet_since", None) or os.environ.get(SINCE_ENV)
    chosen = affected_envs(repo, since)
    _generated.clear()
    for unit in repo.units.values():
        _generated[unit.tox_env] = env_settings(repo, unit, posargs)
        if unit.is_module:
            _generated[artifact_env(unit)] = artifact_settings(repo, unit, posargs)
    for unit in repo.units.values():
        names = [unit.tox_env, *([artifact_env(unit)] if unit.is_module else [])]
        for name in names if unit.name in chosen else ():
            _generated[name]["labels"] = [*_generated[name]["labels"], AFFECTED_LABEL]


#: The generated settings of this run's envs, by env name (filled by tox_add_core_config).
_generated: dict[str, dict[str, Any]] = {}


@impl
def tox_add_env_config(env_conf: Any, state: Any) -> None:
    """Give a generated env its settings as the last loader, so a ``[testenv:<name>]`` section in tox.ini
    (an earlier loader) overrides any of them."""
    settings = _generated.get(env_conf.name)
    if settings is not None:
        env_conf.loaders.append(MemoryLoader(**settings))
