"""Guard: every test defined in a unit's tests folder is collected by pytest, as tox runs it.

A folder pytest skips silently (``norecursedirs`` skips ``build``, ``dist`` and dotted names; a bad
``python_files``; a folder outside ``testpaths``) runs no tests and stays green; here it fails. The expected set is
read from the AST: ``test_*`` functions at module level and in ``Test*`` classes of ``test_*.py`` files.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cmfleet.discovery import Repository

REPO = Path(__file__).resolve().parents[3]
_UNITS = Repository.load(REPO)
FOLDERS = sorted(f"{u.rel}/tests" for u in _UNITS.units.values() if (u.path / "tests").is_dir())


def defined_tests(folder: Path, root: Path) -> set[str]:
    """``path::name`` (``path::Class::name`` for methods) of every test function defined under ``folder``."""
    found: set[str] = set()
    for file in sorted(folder.rglob("test_*.py")):
        rel = file.relative_to(root).as_posix()
        tree = ast.parse(file.read_bytes(), filename=str(file))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                found.add(f"{rel}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                        found.add(f"{rel}::{node.name}::{item.name}")
    return found


def collected_tests(folder: str, root: Path) -> set[str]:
    """What ``pytest --collect-only`` finds in ``folder`` from the repository root (as tox runs it), parameters
    dropped; shared libraries' sources are put on the path so this env can import their tests."""
    libs = [str(u.path / "src") for u in _UNITS.shared() if (u.path / "src").is_dir()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*libs, os.environ.get("PYTHONPATH", "")])}
    env.pop("CMFLEET_ROOT", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", folder],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"collecting {folder} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}"
    return {re.sub(r"\[.*\]$", "", line) for line in proc.stdout.splitlines() if "::" in line}


@pytest.mark.parametrize("folder", FOLDERS)
def test_pytest_collects_every_test_defined(folder):
    defined = defined_tests(REPO / folder, REPO)
    collected = collected_tests(folder, REPO)
    assert defined, f"{folder} defines no test functions"
    missing = sorted(defined - collected)
    assert not missing, f"pytest does not collect {len(missing)} test(s) of {folder}: {missing[:20]}"
    assert collected == defined


def test_the_guard_catches_a_folder_named_build(tmp_path):
    """pytest's default norecursedirs skips a folder named build: the guard's two views then differ."""
    tests = tmp_path / "tests"
    (tests / "build").mkdir(parents=True)
    (tests / "test_top.py").write_text("def test_top():\n    assert True\n")
    (tests / "build" / "test_hidden.py").write_text("def test_hidden():\n    assert True\n")
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n")
    assert defined_tests(tests, tmp_path) == {"tests/test_top.py::test_top", "tests/build/test_hidden.py::test_hidden"}
    assert collected_tests("tests", tmp_path) == {"tests/test_top.py::test_top"}
