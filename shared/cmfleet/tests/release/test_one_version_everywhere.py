"""Every unit of the repository reports one version everywhere (``cmfleet plugins``, ``status``, its wheel): hatch-vcs
without a local part (``+g<sha>``) and the same fallback when no tag is reachable."""

from __future__ import annotations

from pathlib import Path

from cmfleet.discovery import Repository, read_toml

REPO = Path(__file__).resolve().parents[4]


def test_every_unit_versions_the_same_way():
    units = list(Repository.load(REPO).units.values())
    assert len(units) >= 5
    for unit in units:
        version = read_toml(unit.pyproject)["tool"]["hatch"]["version"]
        where = unit.pyproject.relative_to(REPO)
        assert version.get("fallback-version") == "0.0.0.dev0", where
        assert version["raw-options"].get("local_scheme") == "no-local-version", where
