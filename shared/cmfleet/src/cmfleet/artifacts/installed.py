"""A module's built artifact installed as its image installs it, then served as its image serves it.

The tox env ``artifact-<module>`` (tox_plugin.py) runs, in its own tmp folder (never the checkout)::

    python -m cmfleet.artifacts.installed prepare MODULE     # cmfleet build (--dev when untagged), then install
    python -m cmfleet.artifacts.installed schemas MODULE     # what the installed module posts == cmfleet schema
    pytest modules/MODULE/tests --cm-target artifact         # the module's own tests, through the installation

``prepare`` creates a fresh venv with the image's Python and runs the context's own Dockerfile: its ``ENV``
variables, each ``RUN`` command (pip offline from the context's wheels, the module's wheel ``--target`` its app
folder) with ``/wheels`` and ``/app`` mapped into the tmp folder, then imports the installed ``app.py`` through
cmcore's registry from its ``WORKDIR``, so a helper file, shared library or third-party dependency missing from
the artifact fails here, naming the import. No Docker engine runs here (the one stand-in): the Dockerfile's
commands run with the venv's ``python``. The pytest fixtures then run the ``ENTRYPOINT`` as the replica of a
local runtime (``cmfleet dev``'s: the real runtime protocol) and call the functions through its gateway.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cmfleet.artifacts import BuildError
from cmfleet.artifacts.container import APP_ROOT, WHEELS_DIR, parse_dockerfile, run_commands

INSTALLATION = "installation.json"
#: Variables of the test process that must not leak into the image's processes.
_DROPPED = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "CMFLEET_ROOT", "PIP_REQUIRE_VIRTUALENV")

_SMOKE = """
import json, sys
from cmcore import load_registry
registry = load_registry(sys.argv[1])
print(json.dumps(registry.names()))
"""


@dataclass
class Installation:
    """One module installed as its image installs it."""

    module: str
    version: str
    context: str  # the built context (Dockerfile, wheels/)
    python: str  # the fresh venv's interpreter (the image's ``python``)
    workdir: str  # the Dockerfile's WORKDIR, mapped (the module's app folder)
    entrypoint: list[str]  # the Dockerfile's ENTRYPOINT, mapped
    environ: dict[str, str]  # the Dockerfile's ENV

    def command(self) -> list[str]:
        """The ENTRYPOINT as a replica command: in WORKDIR, with the image's ENV and no PYTHONPATH (a local runtime
        would put the repository's library sources on it; the image has only what it installed)."""
        assignments = [f"{key}={value}" for key, value in self.environ.items()]
        return ["env", "-u", "PYTHONPATH", "-C", self.workdir, *assignments, *self.entrypoint]

    def save(self, folder: Path) -> None:
        (folder / INSTALLATION).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Installation:
        """The installation ``prepare`` wrote in ``folder``; a clear error when there is none."""
        path = folder / INSTALLATION
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except OSError:
            raise BuildError(
                f"{path}: no installed artifact; run `python -m cmfleet.artifacts.installed prepare MODULE` first "
                "(tox -e artifact-MODULE does)",
                2,
            ) from None


def default_folder(module: str) -> Path:
    """Where a tox env keeps module's artifact: ``$TOX_ENV_DIR/tmp/artifact-<module>`` (else a folder of the
    system's temporary directory): never inside the checkout."""
    base = os.environ.get("TOX_ENV_DIR")
    if base:
        return Path(base) / "tmp" / f"artifact-{module}"
    return Path(tempfile.gettempdir()) / f"cmfleet-artifact-{module}"


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED and not k.startswith("PIP_")}
    env.update(extra or {})
    return env


def build(root: Path, module: str, out: Path) -> Path:
    """``cmfleet build MODULE --out OUT`` (``--dev`` unless every unit of the image is on its release tag); the
    context folder."""
    from cmfleet.artifacts.preflight import plan_module
    from cmfleet.discovery import Repository

    plan = plan_module(Repository.load(root), module, dev=True)
    dev = not all(version.is_release for version in plan.versions.values())
    argv = [sys.executable, "-m", "cmfleet", "build", module, "--out", str(out), *(["--dev"] if dev else [])]
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{module}: `cmfleet build` failed:\n{proc.stderr.strip()}", 1)
    contexts = sorted(p for p in (out / module).iterdir() if (p / "Dockerfile").is_file())
    return contexts[-1]


def image_python(python: str) -> str:
    """An interpreter of the image's Python version (``major.minor``) on this machine."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python:
        return sys.executable
    found = shutil.which(f"python{python}")
    if found is None:
        raise BuildError(f"the image runs Python {python}, which is not installed here (no python{python} on PATH)", 2)
    return found


def install(context: Path, folder: Path) -> Installation:
    """A fresh venv in ``folder``, then every RUN command of ``context``'s Dockerfile, ``/wheels`` and ``/app``
    mapped into ``folder``; raises BuildError with pip's output when a command fails."""
    manifest = json.loads((context / "manifest.json").read_text(encoding="utf-8"))
    module, version = manifest["module"]["name"], manifest["module"]["version"]
    venv, apps = folder / "venv", folder / "app"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    subprocess.run([image_python(manifest["python"]), "-m", "venv", str(venv)], check=True, env=_clean_env())
    python = str(venv / "bin" / "python")

    def mapped(word: str) -> str:
        if word == "python":
            return python
        if word == WHEELS_DIR or word.startswith(WHEELS_DIR + "/"):
            return str(context / "wheels") + word[len(WHEELS_DIR) :]
        if word == APP_ROOT or word.startswith(APP_ROOT + "/"):
            return str(apps) + word[len(APP_ROOT) :]
        return word

    instructions = parse_dockerfile((context / "Dockerfile").read_text(encoding="utf-8"))
    environ: dict[str, str] = {}
    workdir, entrypoint = "/", ["python"]
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for part in shlex.split(instruction.args):
                if "=" in part:
                    key, value = part.split("=", 1)
                    environ[key] = value
        elif instruction.keyword == "WORKDIR":
            workdir = mapped(instruction.args.strip())
        elif instruction.keyword == "ENTRYPOINT":
            entrypoint = [mapped(word) for word in json.loads(instruction.args)]
        elif instruction.keyword == "RUN":
            for argv in run_commands(instruction):
                if argv[:2] == ["rm", "-rf"]:
                    continue  # slims the image layer; the context stays for inspection
                cwd = workdir if Path(workdir).is_dir() else folder
                proc = subprocess.run(
                    [mapped(w) for w in argv], cwd=cwd, capture_output=True, text=True, env=_clean_env(environ)
                )
                if proc.returncode != 0:
                    raise BuildError(
                        f"{module}: the Dockerfile's `{shlex.join(argv)}` failed:\n{proc.stderr.strip()}", 1
                    )
    installation = Installation(module, version, str(context), python, workdir, entrypoint, environ)
    installation.save(folder)
    return installation


def smoke(installation: Installation) -> list[str]:
    """Import the installed ``app.py`` through cmcore's registry, in WORKDIR, with only what the venv holds; the
    function names. A failed import raises BuildError naming the file:line and the missing import."""
    proc = subprocess.run(
        [installation.python, "-c", _SMOKE, installation.workdir],
        cwd=installation.workdir,
        capture_output=True,
        text=True,
        env=_clean_env(installation.environ),
    )
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise BuildError(
            f"{installation.module}: the installed artifact does not load ({installation.workdir}): {last}\n"
            "Everything app.py imports must be in the artifact: a helper file beside app.py, a shared library or "
            "a third-party dependency declared in the module's pyproject.toml.",
            1,
        )
    names: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])  # _SMOKE prints registry.names()
    return names


def prepare(root: Path, module: str, folder: Path) -> Installation:
    """Build ``module``'s artifact into ``folder``/dist, install it into ``folder``/image and load it once."""
    if folder.exists():
        shutil.rmtree(folder)
    context = build(root, module, folder / "dist")
    installation = install(context, folder / "image")
    smoke(installation)
    installation.save(folder)
    return installation


@contextmanager
def _state_outside(root: Path) -> Iterator[None]:
    """The runtime's state (TLS, tokens, env locks) in a temporary folder, not ``<root>/.cmfleet``: testing an
    installed artifact leaves nothing in the checkout."""
    from cmfleet.runtime.environments.spec import STATE_VARIABLE

    before = os.environ.get(STATE_VARIABLE)
    with tempfile.TemporaryDirectory(prefix="cmfleet-state-") as state:
        os.environ[STATE_VARIABLE] = state
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(STATE_VARIABLE, None)
            else:
                os.environ[STATE_VARIABLE] = before


@contextmanager
def served(
    root: Path, installation: Installation, timeout: float = 120.0
) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """A local runtime (``cmfleet dev``'s: the real runtime protocol) whose one replica runs the installation's
    ENTRYPOINT: yields an httpx client on its gateway and the functions its SDK posted (``GET
    /api/modules/<m>/functions``), once it posted them. A replica that crashes first raises BuildError with its
    last log lines (the entrypoint names the failed import there)."""
    import logging
    import time

    import httpx

    from cmfleet.runtime.config import load_config
    from cmfleet.runtime.server import BackgroundRuntime

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is no news
    name = installation.module
    config = load_config(
        {"dev": {"modules": {name: {"command": installation.command(), "replicas": "1:1"}}}},
        port=0,
        runtime_port=0,
        reload=False,
        terminal_logs=False,
    )
    with (
        _state_outside(root),
        BackgroundRuntime(root, config, [name]) as runtime,
        httpx.Client(base_url=runtime.url) as client,
    ):
        deadline = time.monotonic() + timeout
        while True:
            [listed] = [m for m in client.get("/api/modules").json() if m["name"] == name]
            if listed["schemas_posted"]:
                break
            if listed.get("start_error") or any(r["state"] == "crashed" for r in listed["replicas"]):
                lines = [r["message"] for r in client.get("/api/logs", params={"module": name}).json()][-5:]
                raise BuildError(
                    f"{name}: the installed artifact's entrypoint does not start:\n  " + "\n  ".join(lines), 1
                )
            if time.monotonic() > deadline:
                raise BuildError(f"{name}: the installed module posted no schemas within {timeout:.0f} s", 1)
            time.sleep(0.1)
        functions = [f for f in client.get(f"/api/modules/{name}/functions").json() if f["source"] == "posted"]
        yield client, functions


def compare_schemas(root: Path, installation: Installation) -> list[str]:
    """Differences between what the installed module posts and ``cmfleet schema`` (the source's registry)."""
    from cmfleet.discovery import Repository
    from cmfleet.registry import load_registry

    expected = load_registry(Repository.load(root).module(installation.module)).schemas()
    with served(root, installation) as (_client, functions):
        posted = [f["schema"] for f in functions]
    if posted == expected:
        return []
    by_name = {s.get("functionName"): s for s in posted}
    problems = []
    for schema in expected:
        name = schema.get("functionName")
        if name not in by_name:
            problems.append(f"{name}: in `cmfleet schema {installation.module}`, not posted by the installed module")
        elif by_name[name] != schema:
            problems.append(f"{name}: the installed module posts another schema than `cmfleet schema`")
    names = {s.get("functionName") for s in expected}
    problems += [f"{n}: posted by the installed module, not in `cmfleet schema`" for n in by_name if n not in names]
    return problems or ["the installed module posts its schemas in another order than `cmfleet schema`"]


def main(argv: list[str] | None = None) -> int:
    """``python -m cmfleet.artifacts.installed prepare|schemas MODULE [FOLDER]``."""
    from cmfleet.discovery import DiscoveryError, find_root

    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3) or args[0] not in ("prepare", "schemas"):
        print("usage: python -m cmfleet.artifacts.installed prepare|schemas MODULE [FOLDER]", file=sys.stderr)
        return 2
    action, module = args[0], args[1]
    folder = Path(args[2]) if len(args) == 3 else default_folder(module)
    try:
        root = find_root(Path.cwd())
        if action == "prepare":
            installation = prepare(root, module, folder)
            print(f"{module} {installation.version}: installed as its image installs it, in {folder}")
            return 0
        installation = Installation.load(folder)
        problems = compare_schemas(root, installation)
    except (BuildError, DiscoveryError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    if problems:
        print(f"Error: {module}: the installed artifact's schemas differ from `cmfleet schema`", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{module}: the installed artifact posts exactly `cmfleet schema {module}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
