"""``cmfleet new NAME --command CMD``: a module in another language, known to ``cmfleet dev`` by its command alone."""

from __future__ import annotations

import os
import subprocess
import sys

from runtime_support import copy_fleet

from cmfleet.discovery import Repository, read_toml
from cmfleet.runtime.config import load_config
from cmfleet.runtime.server import dev_modules


def _new(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cmfleet", "new", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"},
    )


def test_new_with_a_command_scaffolds_a_module_cmfleet_dev_knows(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    before = (root / "pyproject.toml").read_text()
    done = _new(root, "jsmod", "--command", "node index.js")
    assert done.returncode == 0, done.stderr
    assert "created module 'jsmod'" in done.stdout
    assert sorted(p.name for p in (root / "modules" / "jsmod").iterdir()) == ["README.md"]
    assert 'command = ["node", "index.js"]' in (root / "modules" / "jsmod" / "README.md").read_text()
    after = (root / "pyproject.toml").read_text()
    assert after.startswith(before.rstrip("\n"))  # the rest of the file, comments included, kept
    assert read_toml(root / "pyproject.toml")["tool"]["cmfleet"]["dev"]["modules"]["jsmod"] == {
        "command": ["node", "index.js"]
    }
    repo = Repository.load(root)
    config = load_config(repo.config)
    assert "jsmod" not in repo.units  # no pyproject.toml, no app.py: only cmfleet dev knows it
    (unit,) = dev_modules(repo, config, ["jsmod"])
    assert unit.path == root / "modules" / "jsmod" and unit.functions == ()
    assert "jsmod" in [u.name for u in dev_modules(repo, config)]

    again = _new(root, "jsmod", "--command", "node index.js")
    assert again.returncode == 2 and "modules/jsmod already exists" in again.stderr
    assert (root / "pyproject.toml").read_text() == after


def test_new_with_a_command_refuses_shared_and_an_empty_command(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    before = (root / "pyproject.toml").read_text()
    shared = _new(root, "jsmod", "--shared", "--command", "node index.js")
    assert shared.returncode == 2 and "does not go with --shared" in shared.stderr
    empty = _new(root, "jsmod", "--command", "")
    assert empty.returncode == 2 and 'e.g. --command "node index.js"' in empty.stderr
    assert not (root / "modules" / "jsmod").exists() and (root / "pyproject.toml").read_text() == before
