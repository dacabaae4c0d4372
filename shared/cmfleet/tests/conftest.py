"""Shared fixtures of cmfleet's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


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
