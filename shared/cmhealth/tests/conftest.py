"""Fixtures of cmhealth's tests: a copy of the example modules that declare cmhealth, as a team's module would to
get the ``health`` endpoint (a plugin adds endpoints only to the modules whose image installs it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SDK_REQUIREMENT = '"foundry-compute-modules>=0.34",'


def copy_with_health(dest: Path, modules: tuple[str, ...] = ("hello", "typed", "streaming")) -> Path:
    """``modules`` of the repository copied to ``dest/modules``, each declaring cmhealth as a dependency."""
    dest.mkdir(parents=True)
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    for name in modules:
        target = dest / "modules" / name
        shutil.copytree(REPO / "modules" / name, target, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
        pyproject = target / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        assert SDK_REQUIREMENT in text, pyproject
        pyproject.write_text(text.replace(SDK_REQUIREMENT, SDK_REQUIREMENT + '\n  "cmhealth",', 1), encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def health_fleet(tmp_path_factory) -> Path:
    """A repository whose hello, typed and streaming modules depend on cmhealth."""
    return copy_with_health(tmp_path_factory.mktemp("fleet") / "repo")
