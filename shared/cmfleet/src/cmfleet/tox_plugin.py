"""The tox plugin: one environment per unit, generated from static discovery (no edit to tox.ini).

* ``module-<name>``: the module's declared dependencies, its shared libraries installed from their paths
  (transitively), cmfleet (pytest fixtures and ``cmfleet check``); runs its tests and ``cmfleet check``.
* ``shared-<name>``: the library itself and what it declares; runs its tests and ``cmfleet check``.
* ``cmfleet``: the toolkit with its runtime, test and build extras; runs its own tests.
* ``artifact-<name>`` (one per module, label ``artifacts``): builds the module's artifact into the env's tmp folder
  (``--dev`` unless every unit of its image is on its release tag), installs it offline into a fresh venv as its
  Dockerfile does, checks that the schemas it posts equal ``cmfleet schema``, then runs the module's own tests
  against that installation (``--cm-target artifact``: through its entrypoint over the real runtime protocol).

Labels: ``-m all`` (every env, tox.ini's ``lint`` included), ``-m modules``, ``-m shared``, and ``-m affected``:
the units changed since a base ref (given by ``--cmfleet-since REF`` or ``$CMFLEET_SINCE``) and their transitive
dependents, as ``cmfleet affected`` computes them; without a base ref no env carries the label. The settings are
seeded through tox's ``memory_seed_loaders``; a key set in tox.ini's ``[testenv:module-x]`` section is left to that
section, so it overrides the generated value of that one environment.
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


def toolkit_deps(repo: Repository, toolkit: Unit) -> list[str]:
    """The toolkit envs' installs: every shared library from its folder (cmcore first, the toolkit's own
    dependency, which is on no index), as the development environment has them, so the toolkit's tests run the
    example modules and plugins (textkit, cmhealth, ...) here instead of building module venvs in the checkout;
    then the toolkit with its runtime, test and build extras."""
    libs = [*repo.closure(toolkit), *(lib for lib in repo.shared() if lib is not toolkit)]
    unique = list(dict.fromkeys(lib.path for lib in libs))
    return [*(f"-e {path}" for path in unique), f"-e {toolkit.path}[runtime,test,build]"]


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
            "deps": toolkit_deps(repo, unit),
            "commands": [Command(["pytest", tests, *posargs])],
            "labels": ["shared", "toolkit", "all"],
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
        "labels": ["modules" if unit.is_module else "shared", "all"],
    }


#: The toolkit's fast tests (not ``slow``) also run on these Pythons, the lowest supported and the newest, each in
#: an env ``cmfleet-python<version>`` (the ``cmfleet`` env runs every test on the Python tox runs on).
OTHER_PYTHONS = ("3.10", "3.13")


def python_for(version: str) -> str:
    """The interpreter of ``version``: pyenv's when it has one (uv does not look there), else ``python<version>``
    (tox-uv finds it on PATH or lets uv download it)."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"

    def patch(path: Path) -> int:
        last = path.parts[-3].rsplit(".", 1)[-1]  # versions/3.10.13/bin/python3.10 -> 13
        return int(last) if last.isdigit() else -1

    found = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), key=patch)
    return str(found[-1]) if found else f"python{version}"


def toolkit_python_envs(repo: Repository, posargs: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """The settings of the ``cmfleet-python<version>`` envs (none when the repository has no toolkit unit)."""
    from tox.config.types import Command

    toolkit = repo.units.get("cmfleet")
    if toolkit is None or toolkit.is_module:
        return {}
    return {
        # not "py313": tox-uv would take the version from such a name and ignore base_python's interpreter
        f"cmfleet-python{version}": {
            "description": f"the cmfleet toolkit's fast tests (-m 'not slow') on Python {version}",
            "package": "skip",
            "base_python": [python_for(version)],
            # its shared libraries (cmcore) from their paths, as in the cmfleet env: they are not on an index
            "deps": toolkit_deps(repo, toolkit),
            "commands": [Command(["pytest", f"{toolkit.rel}/tests", "-m", "not slow", *posargs])],
            "labels": ["toolkit", "all"],
        }
        for version in OTHER_PYTHONS
    }


ARTIFACT_LABEL = "artifacts"


def artifact_env(unit: Unit) -> str:
    """The name of the env that tests ``unit``'s built artifact."""
    return unit.tox_envs[-1]


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
        "labels": [ARTIFACT_LABEL, "all"],
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
    yield from toolkit_python_envs(repo)


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:
    """Add the generated envs to env_list and seed their settings (tox's ``memory_seed_loaders``)."""
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
    posargs = tuple(state.conf.pos_args(None) or ())
    since = getattr(state.conf.options, "cmfleet_since", None) or os.environ.get(SINCE_ENV)
    chosen = affected_envs(repo, since)
    seeds = {unit.tox_env: env_settings(repo, unit, posargs) for unit in repo.units.values()}
    owner = {unit.tox_env: unit.name for unit in repo.units.values()}  # the unit each env tests
    for unit in repo.modules():
        seeds[artifact_env(unit)], owner[artifact_env(unit)] = artifact_settings(repo, unit, posargs), unit.name
    for name, settings in toolkit_python_envs(repo, posargs).items():
        seeds[name], owner[name] = settings, "cmfleet"
    for name, settings in seeds.items():
        if owner[name] in chosen:
            settings["labels"] = [*settings["labels"], AFFECTED_LABEL]
    generated = [name for name in seeds if name not in ini_envs]
    core_conf.loaders.insert(0, MemoryLoader(env_list=EnvList([*ini_envs, *generated])))
    overridden = ini_overrides(Path(state.conf.src_path))
    for name, settings in seeds.items():
        # Seed loaders come before tox.ini's: a key the env's own section sets is left to that section.
        own = overridden.get(name, set())
        seed = MemoryLoader(**{key: value for key, value in settings.items() if key not in own})
        state.conf.memory_seed_loaders[name].append(seed)


def ini_overrides(config_file: Path) -> dict[str, set[str]]:
    """The keys each ``[testenv:<name>]`` section of ``config_file`` (a tox.ini) sets, by env name."""
    if config_file.name not in ("tox.ini", "setup.cfg") or not config_file.is_file():
        return {}
    from configparser import ConfigParser

    parser = ConfigParser(interpolation=None)
    parser.read(config_file, encoding="utf-8")
    prefix = "testenv:"
    return {name[len(prefix) :]: set(parser[name]) for name in parser.sections() if name.startswith(prefix)}
