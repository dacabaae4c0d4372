"""A command that needs an optional dependency or a system tool that is not there says so in one line, with the
command that installs it, and exits 2 (no traceback).

The absence is simulated, in a subprocess of its own: ``sys.modules[name] = None`` makes ``import name`` fail as
if the package were not installed, and a PATH of an empty folder hides every program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# runs the real CLI after blocking the imports named in argv[1] (comma-separated): they behave as not installed
BLOCKED_IMPORTS = """
import sys
for name in filter(None, sys.argv[1].split(",")):
    sys.modules[name] = None
sys.argv = ["cmfleet", *sys.argv[2:]]
from cmfleet.cli import main
main()
"""


def _repo(root: Path, dev: str = "") -> Path:
    """A small repository: one Python module (hello), settings for cmfleet dev in ``dev``."""
    (root / "modules" / "hello").mkdir(parents=True)
    (root / "pyproject.toml").write_text(f"[tool.cmfleet]\n{dev}\n", encoding="utf-8")
    (root / "modules" / "hello" / "pyproject.toml").write_text(
        '[project]\nname = "hello"\nversion = "0.1.0"\ndependencies = ["foundry-compute-modules"]\n',
        encoding="utf-8",
    )
    (root / "modules" / "hello" / "app.py").write_text(
        "from compute_modules.annotations import function\n\n\n@function\ndef add(context, event):\n"
        "    return event['x'] + event['y']\n",
        encoding="utf-8",
    )
    return root


def _run(root: Path, blocked: str, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORTS, blocked, *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def empty_path(tmp_path) -> str:
    """A PATH on which no program is found."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    return str(empty)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("blocked", ["starlette", "httptools"])
def test_dev_without_the_runtime_extra(tmp_path, blocked):
    root = _repo(tmp_path / "repo", '[tool.cmfleet.dev]\nenvironments = "shared"')
    line = _one_line(_run(root, blocked, "dev", "--port", "0", "--runtime-port", "0", "--no-reload"))
    assert line == (
        f"Error: cmfleet dev needs cmfleet's 'runtime' extra ({blocked} is not installed): "
        "pip install 'cmfleet[runtime]'"
    )


def test_invoke_remote_without_the_runtime_extra(tmp_path):
    root = _repo(tmp_path / "repo")
    line = _one_line(_run(root, "httpx", "invoke", "hello", "add", '{"x": 1, "y": 2}', "--remote", "127.0.0.1:9"))
    assert line == (
        "Error: cmfleet invoke needs cmfleet's 'runtime' extra (httpx is not installed): pip install 'cmfleet[runtime]'"
    )


def test_dev_without_uv_for_a_modules_own_venv(tmp_path, empty_path):
    root = _repo(tmp_path / "repo")  # environments = "module", the default: hello gets a venv made by uv
    line = _one_line(_run(root, "uv", "dev", "--port", "0", "--runtime-port", "0", "--no-reload", path=empty_path))
    assert line == (
        "Error: module 'hello' runs in a venv of its own, made by uv (not installed): pip install uv, "
        "or run the modules in this Python: cmfleet dev --env shared"
    )
    assert not (root / ".cmfleet" / "envs").exists()  # nothing started, nothing half-made


def test_dev_without_nodejs_for_another_languages_module(tmp_path, empty_path):
    root = _repo(tmp_path / "repo", '[tool.cmfleet.dev.modules.hello]\ncommand = ["node", "index.js"]')
    line = _one_line(_run(root, "", "dev", "--port", "0", "--runtime-port", "0", "--no-reload", path=empty_path))
    assert line == (
        "Error: module 'hello' (command = ['node', 'index.js']) needs Node.js (node is not on PATH): "
        "apt-get install nodejs (or from https://nodejs.org)"
    )


def test_a_missing_module_that_is_no_extra_of_cmfleet_is_not_blamed_on_one(tmp_path):
    from cmfleet.errors import missing_extra

    assert missing_extra(ModuleNotFoundError("No module named 'pandas'", name="pandas"), "invoke") is None
    message = missing_extra(ModuleNotFoundError("No module named 'rattler_build'", name="rattler_build"), "build")
    assert message == (
        "cmfleet build needs cmfleet's 'build' extra (rattler_build is not installed): pip install 'cmfleet[build]'"
    )
