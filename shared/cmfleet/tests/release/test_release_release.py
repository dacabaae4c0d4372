"""`cmfleet release`: versions from conventional commits, changelogs, one commit, annotated tags; refusals."""

from __future__ import annotations

import json
import os

import pytest

from cmfleet.discovery import Repository
from cmfleet.release.planner import ReleaseError, plan_release
from cmfleet.release.versions import current_version


def release(fleet, *args):
    result = fleet.cmfleet("release", *args)
    return result


def test_release_round_trip(fleet):
    fleet.change("modules/hello/app.py", "feat(api): greet by name")
    fleet.change("modules/hello/app.py", "fix: trailing space")
    fleet.change("modules/wordcount/app.py", "feat: unrelated unit")
    before = fleet.head()
    result = release(fleet, "hello")
    assert result.returncode == 0, result.stderr
    assert "hello  unreleased -> 0.1.0  [minor]  tag hello/v0.1.0" in result.stdout

    # one commit on top, touching only the changelog, with the tag annotated on it
    assert fleet.git("rev-parse", "HEAD~1") == before
    assert fleet.git("log", "-1", "--format=%s") == "release: hello 0.1.0"
    assert fleet.git("show", "--name-only", "--format=", "HEAD").split() == ["modules/hello/CHANGELOG.md"]
    assert fleet.git("cat-file", "-t", "hello/v0.1.0") == "tag"
    assert fleet.git("rev-parse", "hello/v0.1.0^{commit}") == fleet.head()
    assert fleet.git("status", "--porcelain") == ""

    changelog = (fleet.root / "modules/hello/CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog\n")
    assert "## 0.1.0 (" in changelog
    features = changelog.index("### Features")
    fixes = changelog.index("### Fixes")
    assert features < changelog.index("**api:** greet by name") < fixes < changelog.index("trailing space")
    assert "unrelated unit" not in changelog

    repo = Repository.load(fleet.root)
    assert current_version(repo, "hello") == "0.1.0"

    # a second release goes above the first, newest section on top
    fleet.change("modules/hello/app.py", "fix: empty names")
    assert release(fleet, "hello").returncode == 0
    changelog = (fleet.root / "modules/hello/CHANGELOG.md").read_text()
    assert changelog.index("## 0.1.1") < changelog.index("## 0.1.0")
    assert changelog.count("# Changelog") == 1
    assert fleet.tags() == ["hello/v0.1.0", "hello/v0.1.1"]


@pytest.mark.parametrize(
    ("start", "message", "body", "expected"),
    [
        ("1.4.2", "fix: x", "", "1.4.3"),
        ("1.4.2", "perf: x", "", "1.4.3"),
        ("1.4.2", "feat: x", "", "1.5.0"),
        ("1.4.2", "feat!: x", "", "2.0.0"),
        ("1.4.2", "refactor(core)!: x", "", "2.0.0"),
        ("1.4.2", "fix: x", "BREAKING CHANGE: the API moved", "2.0.0"),
        ("1.4.2", "update things", "", "1.4.3"),  # not conventional: still a change
        ("0.3.1", "feat!: x", "", "0.4.0"),  # 0.x: breaking bumps minor
        ("0.3.1", "feat: x", "", "0.4.0"),
        ("0.3.1", "fix: x", "", "0.3.2"),
    ],
)
def test_auto_bump_rules(fleet, start, message, body, expected):
    fleet.tag(f"hello/v{start}")
    path = fleet.root / "modules/hello/app.py"
    path.write_text(path.read_text() + "# change\n")
    fleet.git("commit", "-q", "-am", message, *(["-m", body] if body else []))
    plan = plan_release(Repository.load(fleet.root), {"hello": "auto"}, run_checks=False)
    assert str(plan.units[0].next) == expected
    if "BREAKING" in body:
        assert "the API moved" in plan.units[0].section
        assert "### Breaking changes" in plan.units[0].section


def test_explicit_bumps_and_versions(fleet):
    fleet.tag("hello/v0.9.0")
    fleet.change("modules/hello/app.py", "docs: only docs")
    result = release(fleet, "hello", "--bump", "major", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "0.9.0 -> 1.0.0  [major]" in result.stdout
    result = release(fleet, "hello", "--bump", "0.9.5", "--dry-run")
    assert "0.9.0 -> 0.9.5  [patch]" in result.stdout
    result = release(fleet, "hello", "--bump", "sideways")
    assert result.returncode == 2
    assert "--bump 'sideways'" in result.stderr


def test_one_commit_for_several_units_and_dependency_bumps(fleet):
    fleet.tag("textkit/v1.0.0")
    fleet.tag("wordcount/v2.0.0")
    fleet.tag("fmtlib/v1.0.0")
    fleet.tag("report/v1.0.0")
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: new splitter")
    before = fleet.head()
    result = release(fleet, "wordcount", "textkit")  # order given does not matter: libs first
    assert result.returncode == 0, result.stderr
    assert fleet.git("rev-parse", "HEAD~1") == before
    assert fleet.git("log", "-1", "--format=%s") == "release: textkit 1.1.0, wordcount 2.0.1"
    for tag in ("textkit/v1.1.0", "wordcount/v2.0.1"):
        assert fleet.git("rev-parse", f"{tag}^{{commit}}") == fleet.head()
    changelog = (fleet.root / "modules/wordcount/CHANGELOG.md").read_text()
    assert "### Dependencies" in changelog
    assert "textkit 1.1.0 released in this release" in changelog

    # report depends on textkit through fmtlib: a later release picks up textkit's release (patch)
    result = release(fleet, "report", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "report  1.0.0 -> 1.0.1  [patch]" in result.stdout
    assert "textkit 1.1.0 released since the last release" in result.stdout


def test_breaking_dependency_release_bumps_dependents_minor(fleet):
    fleet.tag("textkit/v1.0.0")
    fleet.tag("wordcount/v2.0.0")
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat!: remove old API")
    plan = plan_release(Repository.load(fleet.root), {"textkit": "auto", "wordcount": "auto"}, run_checks=False)
    assert [(p.unit.name, str(p.next)) for p in plan.units] == [("textkit", "2.0.0"), ("wordcount", "2.1.0")]
    assert "textkit 2.0.0 (breaking) released in this release" in plan.units[1].section


def test_release_affected_since(fleet):
    fleet.tag("hello/v1.0.0")
    base = fleet.head()
    fleet.change("shared/fmtlib/src/fmtlib/__init__.py", "fix: fmt")
    fleet.change("modules/hello/app.py", "docs: comment")  # affected, but nothing worth a release
    result = release(fleet, "--affected", "--since", base)
    assert result.returncode == 0, result.stderr
    assert fleet.git("log", "-1", "--format=%s") == "release: fmtlib 0.0.1, report 0.0.1"
    assert "skipped hello: the 1 commit(s) since hello/v1.0.0 are all of types that ask for no release" in (
        result.stdout
    )
    assert set(fleet.tags()) == {"hello/v1.0.0", "fmtlib/v0.0.1", "report/v0.0.1"}


def test_dry_run_prints_everything_and_writes_nothing(fleet):
    fleet.tag("hello/v1.0.0")
    fleet.change("modules/hello/app.py", "feat: a thing")
    snapshot = fleet.snapshot()
    result = release(fleet, "hello", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dry run: nothing written" in out
    assert "hello  1.0.0 -> 1.1.0  [minor]  tag hello/v1.1.0" in out
    assert "modules/hello/CHANGELOG.md (new file):" in out
    assert "## 1.1.0 (" in out and "- a thing (" in out
    assert "release: hello 1.1.0" in out
    assert "Annotated tags: hello/v1.1.0" in out
    assert fleet.snapshot() == snapshot

    data = json.loads(release(fleet, "hello", "--dry-run", "--json").stdout)
    assert data["dry_run"] is True
    assert data["tags"] == ["hello/v1.1.0"]
    assert data["units"][0]["to"] == "1.1.0"
    assert fleet.snapshot() == snapshot


# -- refusals: a clear message, and nothing written ------------------------------------------------------------------


def assert_refused(fleet, args, message, code=1):
    snapshot = fleet.snapshot()
    result = release(fleet, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert fleet.snapshot() == snapshot
    return result


def test_refuses_dirty_tree(fleet):
    fleet.change("modules/hello/app.py", "feat: x")
    (fleet.root / "modules/wordcount/app.py").write_text("# dirty\n")
    result = assert_refused(fleet, ["hello"], "the working tree has uncommitted changes (modules/wordcount/app.py)")
    assert "Nothing was written." in result.stderr


def test_refuses_existing_tag(fleet):
    fleet.git("switch", "-q", "-c", "side")
    fleet.change("modules/hello/app.py", "feat: on a side branch")
    fleet.tag("hello/v0.1.0")
    fleet.git("switch", "-q", "main")
    fleet.change("modules/hello/app.py", "feat: on main")
    assert_refused(fleet, ["hello"], "tag hello/v0.1.0 already exists")


def test_refuses_version_not_above_the_last(fleet):
    fleet.tag("hello/v1.2.0")
    fleet.change("modules/hello/app.py", "fix: x")
    assert_refused(fleet, ["hello", "--bump", "1.1.9"], "version 1.1.9 is not above the last release 1.2.0", code=2)
    assert_refused(fleet, ["hello", "--bump", "1.2.0"], "not above the last release 1.2.0", code=2)


def test_refuses_unit_failing_check(fleet):
    fleet.change("modules/hello/helper.py", "feat: helper", "X = 1\n")  # tracked: an untracked one refuses first
    fleet.change(
        "modules/hello/app.py",
        "feat: relative",
        (fleet.root / "modules/hello/app.py").read_text() + "from . import helper\n",
    )
    result = assert_refused(fleet, ["hello"], "`cmfleet check` fails for hello")
    assert "modules/hello/app.py:" in result.stderr


def test_refuses_detached_head(fleet):
    fleet.change("modules/hello/app.py", "feat: x")
    fleet.git("switch", "-q", "--detach", "HEAD")
    assert_refused(fleet, ["hello"], "HEAD is detached")


def test_refuses_nothing_to_release_but_explicit_bump_is_allowed(fleet):
    fleet.tag("hello/v1.0.0")
    assert_refused(fleet, ["hello"], "no commits touched modules/hello since hello/v1.0.0; nothing to release")
    fleet.change("modules/hello/app.py", "chore: tidy")
    assert_refused(fleet, ["hello"], "pass --bump patch to release anyway")
    result = release(fleet, "hello", "--bump", "patch")
    assert result.returncode == 0, result.stderr
    assert "hello/v1.0.1" in fleet.tags()


def test_refuses_unknown_unit_and_unknown_ref(fleet):
    assert_refused(fleet, ["nope"], "unknown unit 'nope'; known units: fmtlib, hello, report, textkit, wordcount", 2)
    assert_refused(fleet, ["--affected", "--since", "nope"], "unknown git ref 'nope'", 2)
    assert_refused(fleet, [], "give unit names or --affected --since REF", 2)


def test_refuses_malformed_tag(fleet):
    fleet.change("modules/hello/app.py", "feat: x")
    fleet.tag("hello/v1.0")
    assert_refused(fleet, ["hello"], "tag 'hello/v1.0' does not parse as 'hello/vX.Y.Z'", 2)


def test_refuses_shallow_clone(fleet, tmp_path):
    fleet.tag("hello/v1.0.0")
    fleet.change("modules/hello/app.py", "feat: x")
    fleet.change("modules/hello/app.py", "fix: y")
    clone = tmp_path / "shallow"
    fleet.git("clone", "-q", "--depth", "1", "--no-tags", f"file://{fleet.root}", str(clone))
    shallow = type(fleet)(clone)  # the fixture's GitRepo class (no import of an ambiguous "conftest")
    snapshot = shallow.snapshot()
    result = shallow.cmfleet("release", "hello")
    assert result.returncode == 2
    assert "shallow clone" in result.stderr and "git fetch --tags --unshallow" in result.stderr
    assert shallow.snapshot() == snapshot
    result = shallow.cmfleet("affected", "--since", "HEAD~5")
    assert "git fetch --tags --unshallow" in result.stderr


def test_failed_commit_puts_every_file_back(fleet):
    fleet.change("modules/hello/app.py", "feat: x")
    (fleet.root / "modules/hello/CHANGELOG.md").write_text("# Changelog\n\n## 0.0.9\n\n- old\n")
    fleet.commit("docs: changelog")
    hook = fleet.root / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n")
    os.chmod(hook, 0o755)
    snapshot = fleet.snapshot()
    result = release(fleet, "hello")
    assert result.returncode == 2
    assert "hook says no" in result.stderr
    assert fleet.snapshot() == snapshot
    assert fleet.tags() == []


def test_plan_release_library_refusal_is_typed(fleet):
    with pytest.raises(ReleaseError) as info:
        plan_release(Repository.load(fleet.root), {"ghost": "auto"})
    assert info.value.code == 2


def test_since_without_affected_is_refused(fleet):
    fleet.change("modules/hello/app.py", "fix: x")
    snapshot = fleet.snapshot()
    result = release(fleet, "hello", "--since", "HEAD~1")
    assert result.returncode == 2
    assert "--since goes with --affected" in result.stderr
    assert fleet.snapshot() == snapshot
    # CMFLEET_SINCE, set for a whole CI job, is not a --since given by hand: a named release still goes ahead
    named = fleet.cmfleet("release", "hello", env={"CMFLEET_SINCE": "HEAD~1"})
    assert named.returncode == 0, named.stderr
    assert fleet.tags() == ["hello/v0.0.1"]
