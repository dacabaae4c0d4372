"""`cmfleet release --pre a|b|rc`: PEP 440 pre-releases, their numbering and finalisation, status, bump-shared pins,
the tag pattern hatch-vcs needs, and every refusal writing nothing. Real git repositories through the real CLI."""

from __future__ import annotations

import json
import re

from wheelversion import build_wheel_version

from cmfleet.discovery import Repository
from cmfleet.release.git import Git
from cmfleet.release.versions import (
    TagFormat,
    Version,
    current_version,
    last_release,
    unit_releases,
    version_config_problems,
)


def release(fleet, *args):
    result = fleet.cmfleet("release", *args)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def changelog(fleet, unit="modules/hello"):
    return (fleet.root / unit / "CHANGELOG.md").read_text()


def section(text: str, version: str) -> str:
    """The changelog section of ``version`` (its heading up to the next heading of a release)."""
    match = re.search(rf"^## {re.escape(version)} \(.*?(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"no section {version} in:\n{text}"
    return match.group(0)


def refused(fleet, args, message, code, command="release"):
    """Run a command that must be refused: exit ``code``, ``message`` on stderr, nothing written."""
    snapshot = fleet.snapshot()
    result = fleet.cmfleet(command, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert fleet.snapshot() == snapshot
    return result


def test_rc1_rc2_then_final_release_and_changelog(fleet):
    fleet.tag("hello/v1.2.0")
    feat = fleet.change("modules/hello/app.py", "feat: greet by name")
    out = release(fleet, "hello", "--pre", "rc").stdout
    assert "hello  1.2.0 -> 1.3.0rc1  [minor, pre-release]  tag hello/v1.3.0rc1" in out
    assert fleet.git("log", "-1", "--format=%s") == "release: hello 1.3.0rc1"
    assert fleet.git("cat-file", "-t", "hello/v1.3.0rc1") == "tag"  # annotated, like final tags
    rc1 = section(changelog(fleet), "1.3.0rc1")
    assert "Pre-release of 1.3.0; changes since 1.2.0." in rc1 and f"- greet by name ({feat[:7]})" in rc1

    fix = fleet.change("modules/hello/app.py", "fix: trailing space")
    out = release(fleet, "hello", "--pre", "rc").stdout
    assert "hello  1.2.0 -> 1.3.0rc2  [minor, pre-release after 1.3.0rc1]  tag hello/v1.3.0rc2" in out
    rc2 = section(changelog(fleet), "1.3.0rc2")
    assert "Pre-release of 1.3.0; changes since 1.3.0rc1." in rc2
    assert "trailing space" in rc2 and "greet by name" not in rc2  # only what is new since rc1

    # without --pre: the final release, bumped from the last FINAL release (1.2.0), never from 1.3.0rc2
    out = release(fleet, "hello").stdout
    assert "hello  1.2.0 -> 1.3.0  [minor, finalises 1.3.0rc2]  tag hello/v1.3.0" in out
    assert fleet.tags() == ["hello/v1.2.0", "hello/v1.3.0", "hello/v1.3.0rc1", "hello/v1.3.0rc2"]
    text = changelog(fleet)
    final = section(text, "1.3.0")
    assert "Final release after the pre-release(s) 1.3.0rc1, 1.3.0rc2; every change since 1.2.0." in final
    assert f"- greet by name ({feat[:7]})" in final and f"- trailing space ({fix[:7]})" in final
    assert "release:" not in final and "1.3.0rc1 (" not in final  # the pre-releases' own commits are not changes
    # the pre-release sections stay, newest first
    assert text.index("## 1.3.0 (") < text.index("## 1.3.0rc2 (") < text.index("## 1.3.0rc1 (")
    assert text.count("# Changelog") == 1

    # the next release starts from 1.3.0
    fleet.change("modules/hello/app.py", "fix: empty names")
    out = release(fleet, "hello", "--dry-run").stdout
    assert "hello  1.3.0 -> 1.3.1  [patch]  tag hello/v1.3.1" in out
    assert "pre-release" not in out


def test_the_target_moves_and_labels_go_up(fleet):
    fleet.tag("hello/v1.2.0")
    fleet.change("modules/hello/app.py", "fix: a")
    assert "1.2.0 -> 1.2.1rc1" in release(fleet, "hello", "--pre", "rc").stdout
    # a feat raises the target from 1.2.1 to 1.3.0: a new rc1 of the new target
    fleet.change("modules/hello/app.py", "feat: b")
    out = release(fleet, "hello", "--pre", "rc", "--json").stdout
    data = json.loads(out)["units"][0]
    assert (data["from"], data["to"], data["pre"], data["pre_releases"]) == ("1.2.0", "1.3.0rc1", "rc", ["1.2.1rc1"])
    assert "Pre-release of 1.3.0; changes since 1.2.1rc1." in section(changelog(fleet), "1.3.0rc1")
    # nothing new since the last pre-release: no rc2 from auto, and the message says how to finalise
    refused(
        fleet,
        ["hello", "--pre", "rc"],
        "no commits touched modules/hello since the pre-release hello/v1.3.0rc1; nothing new for another "
        "pre-release (release without --pre to finalise it as 1.3.0",
        1,
    )
    # alpha, beta, rc of one target: each label counts on its own, and must not go down
    fleet.change("modules/hello/app.py", "feat: c")
    refused(fleet, ["hello", "--pre", "b"], "pre-release 1.3.0b1 is lower than the existing pre-release 1.3.0rc1", 2)
    refused(fleet, ["hello", "--pre", "a"], "PEP 440 orders a < b < rc < final", 2)
    assert "1.2.0 -> 1.3.0rc2" in release(fleet, "hello", "--pre", "rc").stdout
    assert "1.2.0 -> 1.3.0" in release(fleet, "hello").stdout


def test_alpha_beta_rc_in_order(fleet):
    fleet.tag("textkit/v0.4.0")
    for label, expected in (("a", "0.5.0a1"), ("a", "0.5.0a2"), ("b", "0.5.0b1"), ("rc", "0.5.0rc1")):
        fleet.change("shared/textkit/src/textkit/__init__.py", f"feat: step {expected}")
        assert f"0.4.0 -> {expected}  [minor, pre-release" in release(fleet, "textkit", "--pre", label).stdout
    releases = unit_releases(Git(fleet.root), TagFormat(), "textkit")
    assert [str(r.version) for r in releases] == ["0.4.0", "0.5.0a1", "0.5.0a2", "0.5.0b1", "0.5.0rc1"]
    assert last_release(Git(fleet.root), TagFormat(), "textkit").tag == "textkit/v0.4.0"


def test_numbering_and_order_are_pep440_not_string_order(fleet):
    fleet.tag("hello/v1.9.0")
    fleet.change("modules/hello/app.py", "feat: x")
    fleet.tag("hello/v1.10.0rc9")
    fleet.tag("hello/v1.10.0rc10", "HEAD~1")  # string order would put rc10 below rc9
    fleet.change("modules/hello/app.py", "fix: y")
    out = release(fleet, "hello", "--pre", "rc").stdout
    assert "hello  1.9.0 -> 1.10.0rc11  [minor, pre-release after 1.10.0rc10]" in out
    releases = unit_releases(Git(fleet.root), TagFormat(), "hello")
    assert [str(r.version) for r in releases] == ["1.9.0", "1.10.0rc9", "1.10.0rc10", "1.10.0rc11"]
    assert sorted(Version.parse(v) for v in ("1.10.0", "1.9.0", "1.10.0rc2", "1.10.0b10", "1.10.0a1")) == [
        Version.parse(v) for v in ("1.9.0", "1.10.0a1", "1.10.0b10", "1.10.0rc2", "1.10.0")
    ]


def test_an_explicit_pre_release_stays_the_target(fleet):
    fleet.tag("hello/v0.9.0")
    fleet.change("modules/hello/app.py", "feat: big")
    # --bump 1.0.0rc1 is accepted as an explicit pre-release (with or without --pre rc)
    assert "0.9.0 -> 1.0.0rc1  [major, pre-release]" in release(fleet, "hello", "--bump", "1.0.0rc1").stdout
    fleet.change("modules/hello/app.py", "fix: small")
    # auto would say 0.10.0 (0.x: feat -> minor); the pending 1.0.0rc1 keeps its target
    assert "0.9.0 -> 1.0.0rc2" in release(fleet, "hello", "--pre", "rc").stdout
    fleet.change("modules/hello/app.py", "fix: smaller")
    assert "0.9.0 -> 1.0.0rc3" in release(fleet, "hello", "--pre", "rc", "--bump", "1.0.0rc3").stdout
    assert "0.9.0 -> 1.0.0  [major, finalises 1.0.0rc3]" in release(fleet, "hello").stdout


def test_a_pre_release_of_chores_only_is_finalised_by_auto(fleet):
    fleet.tag("hello/v1.0.0")
    fleet.change("modules/hello/app.py", "chore: tidy")
    assert "1.0.0 -> 1.0.1rc1" in release(fleet, "hello", "--bump", "patch", "--pre", "rc").stdout
    assert "Released with an explicit `patch`." not in changelog(fleet)  # a chore commit is there (not listed)
    # auto: no commit asks for a release, but the pre-release waits for its final release
    out = release(fleet, "hello").stdout
    assert "1.0.0 -> 1.0.1  [patch, finalises 1.0.1rc1]" in out
    assert "pre-release 1.0.1rc1 (hello/v1.0.1rc1) is not final yet" in out


def test_affected_releases_take_pre_too(fleet):
    base = fleet.head()
    fleet.change("shared/fmtlib/src/fmtlib/__init__.py", "fix: fmt")
    out = release(fleet, "--affected", "--since", base, "--pre", "b").stdout
    assert fleet.git("log", "-1", "--format=%s") == "release: fmtlib 0.0.1b1, report 0.0.1b1"
    assert "fmtlib 0.0.1b1 released in this release" in section(changelog(fleet, "modules/report"), "0.0.1b1")
    assert "Annotated tags: fmtlib/v0.0.1b1, report/v0.0.1b1" in out


def test_refusals_write_nothing(fleet):
    fleet.tag("hello/v1.2.0")
    fleet.change("modules/hello/app.py", "feat: x")
    for label in ("beta", "c", "dev", "RC"):
        refused(fleet, ["hello", "--pre", label], f"--pre '{label}': use a, b or rc", 2)
    refused(
        fleet,
        ["hello", "--pre", "rc", "--bump", "1.3.0"],
        "hello: --pre rc makes a pre-release, but --bump 1.3.0 is a final version; give the pre-release itself "
        "(--bump 1.3.0rc1) or a level (--bump minor --pre rc)",
        2,
    )
    refused(fleet, ["hello", "--pre", "rc", "--bump", "1.3.0b1"], "is a pre-release of another kind (b)", 2)
    refused(fleet, ["hello", "--bump", "1.3.0-rc1"], "--bump '1.3.0-rc1': use auto, major, minor, patch", 2)
    refused(fleet, ["hello", "--bump", "1.2.0rc1"], "version 1.2.0rc1 is not above the last release 1.2.0", 2)
    release(fleet, "hello", "--bump", "major", "--pre", "rc")  # 2.0.0rc1
    fleet.change("modules/hello/app.py", "fix: y")
    refused(
        fleet,
        ["hello", "--bump", "minor", "--pre", "rc"],
        "hello: pre-release 1.3.0rc1 is lower than the existing pre-release 2.0.0rc1 (hello/v2.0.0rc1)",
        2,
    )
    refused(fleet, ["hello", "--bump", "1.5.0b2"], "lower than the existing pre-release 2.0.0rc1", 2)
    refused(fleet, ["hello", "--bump", "2.0.0rc1"], "tag hello/v2.0.0rc1 already exists", 1)
    refused(fleet, ["textkit", "--pre", "beta"], "--pre 'beta'", 2, command="bump-shared")
    # a pre-release tag on another branch counts too: its number is taken, and nothing goes below it
    fleet.git("switch", "-q", "-c", "side")
    fleet.change("modules/hello/app.py", "fix: on side")
    release(fleet, "hello", "--pre", "rc")
    fleet.git("switch", "-q", "main")
    assert "1.2.0 -> 2.0.0rc3" in release(fleet, "hello", "--pre", "rc", "--dry-run").stdout


def test_status_shows_the_pending_pre_release(fleet):
    fleet.tag("hello/v1.2.0")
    fleet.tag("textkit/v1.0.0")
    fleet.tag("wordcount/v2.0.0")
    fleet.change("modules/hello/app.py", "feat: x")
    release(fleet, "hello", "--pre", "rc")
    fleet.change("shared/textkit/src/textkit/__init__.py", "fix: t")
    release(fleet, "textkit", "--pre", "a")
    result = fleet.cmfleet("status", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    hello = rows["hello"]
    assert (hello["last_release"], hello["tag"]) == ("1.2.0", "hello/v1.2.0")
    assert (hello["pre_release"], hello["pre_tag"]) == ("1.3.0rc1", "hello/v1.3.0rc1")
    # as hatch-vcs says after a pre-release tag: rc+1, dev + the commits since (textkit's fix and release)
    assert hello["version"] == "1.3.0rc2.dev2"
    assert hello["commits_since"] == 1  # the feat; the pre-release's own release commit is no change
    assert (hello["needs_release"], hello["next_level"]) == (True, "minor")
    assert "pre-release 1.3.0rc1 (hello/v1.3.0rc1) is not final yet" in hello["why"]
    # a library's pre-release is not a release its dependents follow
    assert rows["wordcount"]["shared"] == [{"name": "textkit", "released": "1.0.0"}]
    assert rows["wordcount"]["needs_release"] is False
    assert rows["textkit"]["pre_release"] == "1.0.1a1" and rows["textkit"]["version"] == "1.0.1a1"
    assert rows["fmtlib"]["pre_release"] is None
    table = fleet.cmfleet("status", "hello")
    assert table.returncode == 0, table.stderr
    assert "pre-release" in table.stdout.splitlines()[0]
    assert re.search(r"hello\s+module\s+1\.2\.0\s+1\.3\.0rc1\s+1\.3\.0rc2\.dev2", table.stdout), table.stdout
    # once final, nothing is pending
    release(fleet, "hello")
    rows = {r["name"]: r for r in json.loads(fleet.cmfleet("status", "--json", "hello").stdout)}
    assert (rows["hello"]["last_release"], rows["hello"]["pre_release"], rows["hello"]["version"]) == (
        "1.3.0",
        None,
        "1.3.0",
    )


def test_bump_shared_pins_final_releases_only(fleet):
    fleet.tag("textkit/v1.1.0")
    fleet.tag("wordcount/v2.0.0")
    config = fleet.root / "conda_recipes/conda_build_config.yaml"
    before = config.read_text()
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: tokens")
    release(fleet, "textkit", "--pre", "rc")  # textkit/v1.2.0rc1: pins untouched
    assert config.read_text() == before
    fleet.change("modules/wordcount/app.py", "fix: w")
    out = release(fleet, "wordcount", "--dry-run").stdout
    assert "wordcount  2.0.0 -> 2.0.1  [patch]" in out and "textkit 1.2.0rc1" not in out

    # bump-shared without --pre: the final release, from the last final (1.1.0), pinned >=1.2.0
    result = fleet.cmfleet("bump-shared", "textkit")
    assert result.returncode == 0, result.stderr
    assert "textkit  1.1.0 -> 1.2.0  [minor, finalises 1.2.0rc1]" in result.stdout
    assert '">=1.2.0"  # keep this comment' in config.read_text()
    assert '"textkit>=1.2.0",' in (fleet.root / "shared/fmtlib/pyproject.toml").read_text()
    # and now wordcount follows the final release
    assert "textkit 1.2.0 released since the last release" in release(fleet, "wordcount", "--dry-run").stdout


def test_bump_shared_with_pre_pins_the_pre_release(fleet):
    fleet.tag("fmtlib/v0.4.0")
    fleet.tag("report/v1.0.0")
    fleet.change("shared/fmtlib/src/fmtlib/__init__.py", "fix: f")
    result = fleet.cmfleet("bump-shared", "fmtlib", "--pre", "rc", "--release-dependents", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tags"] == ["fmtlib/v0.4.1rc1", "report/v1.0.1rc1"]
    assert '"fmtlib>=0.4.1rc1",' in (fleet.root / "modules/report/pyproject.toml").read_text()
    report = section(changelog(fleet, "modules/report"), "1.0.1rc1")
    assert "fmtlib 0.4.1rc1 released in this release" in report and "requires fmtlib>=0.4.1rc1" in report
    # the final: pins move to the final release
    result = fleet.cmfleet("bump-shared", "fmtlib")
    assert result.returncode == 0, result.stderr
    assert "fmtlib  0.4.0 -> 0.4.1  [patch, finalises 0.4.1rc1]" in result.stdout
    assert '"fmtlib>=0.4.1",' in (fleet.root / "modules/report/pyproject.toml").read_text()


def use_legacy_pattern(fleet, name: str) -> None:
    """Give ``name`` the earlier tag-pattern (X.Y.Z only), as repositories made before pre-releases have."""
    path = fleet.root / "modules" / name / "pyproject.toml"
    new = "(?P<version>\\d+\\.\\d+\\.\\d+(?:(?:a|b|rc)\\d+)?)$'"
    assert new in path.read_text()
    path.write_text(path.read_text().replace(new, "(?P<version>\\d+\\.\\d+\\.\\d+)$'"))
    fleet.commit(f"build: {name} with the earlier tag-pattern")


def test_the_earlier_tag_pattern_still_releases_but_takes_no_pre_release(fleet):
    use_legacy_pattern(fleet, "hello")
    repo = Repository.load(fleet.root)
    hello = repo.get("hello")
    assert version_config_problems(hello, TagFormat.of(repo)) == []
    [problem] = version_config_problems(hello, TagFormat.of(repo), pre=True)
    expected = r"^hello/v(?P<version>\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)$"
    assert problem == (
        f"modules/hello/pyproject.toml: [tool.hatch.version] tag-pattern should be {expected!r}: the current one "
        "takes X.Y.Z only, and a build on a pre-release tag fails with it"
    )
    fleet.change("modules/hello/app.py", "feat: x")
    result = refused(fleet, ["hello", "--pre", "rc"], problem, 1)
    assert "Nothing was written." in result.stderr
    refused(fleet, ["hello", "--bump", "0.1.0rc1"], "takes X.Y.Z only", 1)
    assert "unreleased -> 0.1.0  [minor]" in release(fleet, "hello").stdout
    # any other pattern is wrong either way
    path = fleet.root / "modules/hello/pyproject.toml"
    path.write_text(re.sub(r"tag-pattern = .*", "tag-pattern = '^v(?P<version>.*)$'", path.read_text()))
    repo = Repository.load(fleet.root)
    assert version_config_problems(repo.get("hello"), TagFormat.of(repo)) == [
        f"modules/hello/pyproject.toml: [tool.hatch.version] tag-pattern should be {expected!r}"
    ]


def test_hatch_vcs_builds_the_pre_release_version(fleet):
    """A real wheel (uv build: hatchling + hatch-vcs) on the pre-release tag says 1.3.0rc1, and after it what
    current_version says."""
    repo = Repository.load(fleet.root)
    out = fleet.root.parent / "dist"
    fleet.tag("hello/v1.2.0")
    fleet.change("modules/hello/app.py", "feat: x")
    release(fleet, "hello", "--pre", "rc")
    assert current_version(repo, "hello") == "1.3.0rc1"
    assert build_wheel_version(fleet.root / "modules/hello", out) == "1.3.0rc1"
    fleet.change("modules/wordcount/app.py", "fix: another unit")
    assert current_version(repo, "hello") == "1.3.0rc2.dev1"
    assert build_wheel_version(fleet.root / "modules/hello", out) == "1.3.0rc2.dev1"
