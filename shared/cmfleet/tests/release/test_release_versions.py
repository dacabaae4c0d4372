"""Versions from per-unit tags: the library and a real hatch-vcs wheel build agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from wheelversion import build_wheel_version

from cmfleet.artifacts.versions import unit_version
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


def test_a_renamed_unit_builds_above_its_former_names_releases(fleet):
    """After `cmfleet rename hello greeter`, hello's tags are greeter's releases for its builds too: cmfleet's own
    reading (status, a dev build's version) and hatch-vcs (a real wheel build) give a dev version above the last
    release, never 0.0.0.devN; a second rename keeps both former names; after a release under the new name its
    own tags give the version."""
    out = fleet.root.parent / "dist"
    fleet.change("modules/hello/app.py", "feat: greet")
    fleet.tag("hello/v0.2.0")
    fleet.change("modules/hello/app.py", "fix: after the release")
    result = fleet.cmfleet("rename", "hello", "greeter")
    assert result.returncode == 0, result.stderr
    fleet.commit("refactor: rename hello to greeter")

    def status(name: str) -> dict:
        result = fleet.cmfleet("status", name, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[0]

    row = status("greeter")
    assert row["last_release"] == "0.2.0" and row["version"] == "0.2.1.dev2" and row["builds_as"] is None
    repo = Repository.load(fleet.root)
    dev = unit_version(repo, repo.get("greeter"))
    assert dev.tag == "hello/v0.2.0" and (dev.dev_version or "").startswith("0.2.1.dev2+g")
    assert build_wheel_version(fleet.root / "modules/greeter", out) == "0.2.1.dev2"
    assert version_config_problems(repo.get("greeter"), TagFormat.of(repo), pre=True) == []
    assert fleet.cmfleet("check").returncode == 0

    result = fleet.cmfleet("rename", "greeter", "welcome")
    assert result.returncode == 0, result.stderr
    fleet.commit("refactor: rename greeter to welcome")
    pyproject = (fleet.root / "modules/welcome/pyproject.toml").read_text()
    assert 'renamed-from = ["hello", "greeter"]' in pyproject
    assert r"tag-pattern = '^(?:welcome|hello|greeter)/v(?P<version>" in pyproject
    assert '"--match", "welcome/v*", "--match", "hello/v*", "--match", "greeter/v*"]' in pyproject
    assert status("welcome")["version"] == "0.2.1.dev3"
    assert build_wheel_version(fleet.root / "modules/welcome", out) == "0.2.1.dev3"

    result = fleet.cmfleet("release", "welcome")
    assert result.returncode == 0, result.stderr
    assert "welcome/v0.2.1" in fleet.tags()
    row = status("welcome")
    assert (row["last_release"], row["version"], row["builds_as"]) == ("0.2.1", "0.2.1", "0.2.1")
    assert build_wheel_version(fleet.root / "modules/welcome", out) == "0.2.1"
    fleet.change("modules/welcome/app.py", "fix: after the first release as welcome")
    assert status("welcome")["version"] == "0.2.2.dev1"  # counted from welcome/v0.2.1, the nearest tag
    assert build_wheel_version(fleet.root / "modules/welcome", out) == "0.2.2.dev1"


def test_version_config_of_a_renamed_unit_reads_its_former_names_tags(fleet):
    fmt = TagFormat()
    section = hatch_version_section("greeter", fmt, former=["hello"])
    assert section["tag-pattern"] == r"^(?:greeter|hello)/v(?P<version>\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)$"
    command = section["raw-options"]["git_describe_command"]  # type: ignore[index]
    assert command[-4:] == ["--match", "greeter/v*", "--match", "hello/v*"]
    custom = TagFormat("rel-{unit}@{version}-final")
    pattern = custom.hatch_pattern("new.mod", former=["old-mod"])
    # '-' stays plain (literal outside a character class), as `cmfleet new` writes names
    assert pattern == r"^rel-(?:new\.mod|old-mod)@(?P<version>\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)-final$"
    assert re.match(pattern, "rel-old-mod@1.2.3-final").group("version") == "1.2.3"
    assert not re.match(pattern, "rel-newXmod@1.2.3-final")
    assert custom.parse_any(["new.mod", "old-mod"], "rel-old-mod@1.2.3rc1-final") == Version(1, 2, 3, ("rc", 1))

    # a renamed unit still configured for its own tags only: a problem, with the exact fix
    pyproject = fleet.root / "modules/hello/pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.cmfleet]\nrenamed-from = ["hi"]\n')
    repo = Repository.load(fleet.root)
    problems = version_config_problems(repo.get("hello"), fmt)
    why = (
        " (a renamed unit: the tags of its former names hi are its releases too, and without them its builds go "
        "back to 0.0.0.devN)"
    )
    assert problems == [
        "modules/hello/pyproject.toml: [tool.hatch.version.raw-options] git_describe_command should pass "
        "--match hello/v* --match hi/v*" + why,
        "modules/hello/pyproject.toml: [tool.hatch.version] tag-pattern should be "
        + repr(fmt.hatch_pattern("hello", former=["hi"]))
        + why
        + r"; in TOML: tag-pattern = '^(?:hello|hi)/v(?P<version>\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)$'",
    ]
    # without former names, the plain configuration is the right one
    assert version_config_problems(Repository.load(fleet.root).get("wordcount"), fmt) == []
