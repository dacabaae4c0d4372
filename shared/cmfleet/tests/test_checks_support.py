"""Helpers (no tests) for test_checks*.py and test_new*.py: fixture repositories, see fixtures/checks/README.md."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "checks"
PLUGIN_SITE = FIXTURES / "plugin" / "site"


def make_repo(tmp_path: Path, *cases: str) -> Path:
    """A copy of fixtures/checks/base with the given cases laid over it."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "base", root)
    for case in cases:
        shutil.copytree(FIXTURES / "cases" / case, root, dirs_exist_ok=True)
    return root


def fixture_env(root: Path, plugins: str = "") -> dict[str, str]:
    """Only the allowed plugins; fixlib and the fixture plugin importable (they are not installed)."""
    return {
        "CMFLEET_LOAD_PLUGINS": plugins,
        "PYTHONPATH": os.pathsep.join([str(root / "shared" / "fixlib" / "src"), str(PLUGIN_SITE)]),
    }


def check(cmfleet, root: Path, *args: str, plugins: str = ""):
    """``cmfleet check --json ARGS`` in ``root`` with the ``cmfleet`` fixture's runner: (process, findings)."""
    proc = cmfleet("check", "--json", *args, cwd=root, env=fixture_env(root, plugins))
    findings = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else []
    return proc, findings


def marks(base: Path, rule: str, shown_from: Path | None = None) -> set[str]:
    """``file:line`` of every line under ``base`` carrying the comment ``# check: <rule>``."""
    shown_from = shown_from or base
    found = set()
    for file in sorted(base.rglob("*")):
        if not file.is_file() or "__pycache__" in file.parts:
            continue
        for number, text in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if text.rstrip().endswith(f"# check: {rule}"):
                found.add(f"{file.relative_to(shown_from).as_posix()}:{number}")
    return found
