"""Versions from per-unit tags: the library and a real hatch-vcs wheel build agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from wheelversion import build_wheel_version

from cmfleet.discovery import Repository
from cmfleet.release.git import Git
from cmfleet.release.versions import (
    TagFormat,
    Version,
    VersionError,
    all_releases,
    current_version,
    hatch_version_section,
    last_release,
    version_config_problems,
)

REPO_ROOT = Path(__file__).resolve().parents[4]


def test_tag_format_round_trip_and_errors():
    fmt = TagFormat("{unit}/v{version}")
    assert fmt.tag("hello", Version(1, 2, 3)) == "hello/v1.2.3"
    assert fmt.glob("hello") == "hello/v*"
    assert fmt.parse("hello", "hello/v1.2.3") == Version(1, 2, 3)
    with pytest.raises(VersionError, match=r"does not parse as 'hello/vX.Y.Z'.*git tag -d hello/v1.x"):
        fmt.parse("hello", "hello/v1.x")
    with pytest.raises(VersionError, match="exactly once"):
        TagFormat("{unit}-latest")
    with pytest.raises(VersionError, match="separate"):
        TagFormat("{unit}{version}")
    at = TagFormat("{unit}@{version}")
    assert at.parse("my-mod", "my-mod@0.4.0") == Version(0, 4, 0)
    assert fmt.parse("hello", "hello/v1.3.0rc1") == Version(1, 3, 0, ("rc", 1))
    pattern = hatch_version_section("hello", fmt)["tag-pattern"]
    assert pattern == r"^hello/v(?P<version>\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)$"
    assert fmt.hatch_pattern("hello", legacy=True) == r"^hello/v(?P<version>\d+\.\d+\.\d+)$"


def test_version_bumps_and_order():
    v = Version.parse("1.4.2")
    assert (str(v.bump("major")), str(v.bump("minor")), str(v.bump("patch"))) == ("2.0.0", "1.5.0", "1.4.3")
    assert Version.parse("1.10.0") > Version.parse("1.9.9")
    for bad in ("1.2", "01.2.3", "1.2.3-rc1", "1.2.3.rc1", "1.2.3c1", "1.2.3rc01", "1.2.3.dev1", "v1.2.3"):
        with pytest.raises(VersionError):
            Version.parse(bad)


def test_wheel_version_comes_from_the_units_own_tag_only(fleet):
    """hatch-vcs (real build) and current_version agree; another unit's newer tag never wins."""
    repo = Repository.load(fleet.root)
    out = fleet.root.parent / "dist"
    # untagged: 0.0.0.devN, N = every commit
    fleet.change("modules/hello/app.py", "fix: one")
    assert current_version(repo, "hello") == "0.0.0.dev2"
    assert build_wheel_version(fleet.root / "modules/hello", out) == "0.0.0.dev2"

    fleet.tag("hello/v1.2.0")
    fleet.change("modules/wordcount/app.py", "feat: other unit")
    fleet.tag("wordcount/v3.0.0")  # newer, nearer tag of another unit
    assert current_version(repo, "hello") == "1.2.1.dev1"
    assert build_wheel_version(fleet.root / "modules/hello", out) == "1.2.1.dev1"
    assert current_version(repo, "wordcount") == "3.0.0"

    fleet.tag("hello/v1.2.1")
    assert current_version(repo, "hello") == "1.2.1"
    assert build_wheel_version(fleet.root / "modules/hello", out) == "1.2.1"


def test_last_release_is_the_highest_reachable_tag(fleet):
    git = Git(fleet.root)
    fmt = TagFormat()
    fleet.tag("textkit/v0.9.0")
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: x")
    fleet.tag("textkit/v0.10.0")
    fleet.tag("fmtlib/v2.0.0")
    assert last_release(git, fmt, "textkit").tag == "textkit/v0.10.0"
    releases = all_releases(git, fmt, ["textkit", "fmtlib", "hello"])
    assert [r.tag for r in releases["textkit"]] == ["textkit/v0.9.0", "textkit/v0.10.0"]
    assert [r.tag for r in releases["fmtlib"]] == ["fmtlib/v2.0.0"]
    assert releases["hello"] == []
    assert last_release(git, fmt, "hello") is None


def test_malformed_tag_is_a_clear_error(fleet):
    fleet.tag("hello/vnext")
    result = fleet.cmfleet("status", "hello")
    assert result.returncode == 2
    assert "tag 'hello/vnext' does not parse as 'hello/vX.Y.Z'" in result.stderr
    assert "git tag -d hello/vnext" in result.stderr


def test_repository_units_read_versions_from_their_own_tags():
    """Every unit of this repository with a dynamic version is configured to read only its own tags, pre-release
    tags included (cmfleet release --pre)."""
    repo = Repository.load(REPO_ROOT)
    fmt = TagFormat.of(repo)
    checked = 0
    for unit in repo.units.values():
        if "version" in unit.project.get("dynamic", []):
            checked += 1
            assert version_config_problems(unit, fmt, pre=True) == [], unit.name
    assert checked >= 6


def test_version_config_problems_name_the_fix(fleet):
    pyproject = fleet.root / "modules/hello/pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"--match", "hello/v*"', '"--match", "*"'))
    repo = Repository.load(fleet.root)
    problems = version_config_problems(repo.get("hello"), TagFormat.of(repo))
    assert problems == [
        "modules/hello/pyproject.toml: [tool.hatch.version.raw-options] git_describe_command should pass "
        "--match hello/v*"
    ]
