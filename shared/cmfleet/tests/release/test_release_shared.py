"""`cmfleet bump-shared` and `cmfleet status` in real git repositories."""

from __future__ import annotations

import json

from cmfleet.discovery import Repository
from cmfleet.release.pins import _replace_specifier, edit_build_config


def test_bump_shared_updates_pins_keeping_formatting_and_lists_dependents(fleet):
    fleet.tag("textkit/v1.1.0")
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: tokens")
    wordcount = fleet.root / "modules/wordcount/pyproject.toml"
    wordcount.write_text(wordcount.read_text().replace('  "textkit",', '  "textkit>=1.0",  # the text helpers'))
    fleet.commit("build: pin textkit")
    config_before = (fleet.root / "conda_recipes/conda_build_config.yaml").read_text()
    wordcount_before = wordcount.read_text()

    result = fleet.cmfleet("bump-shared", "textkit")
    assert result.returncode == 0, result.stderr
    assert "textkit  1.1.0 -> 1.2.0  [minor]  tag textkit/v1.2.0" in result.stdout
    assert "units depending on textkit (not released" in result.stdout
    assert "report (report -> fmtlib -> textkit)" in result.stdout

    config = (fleet.root / "conda_recipes/conda_build_config.yaml").read_text()
    assert config == config_before.replace('">=0.0.0"  # keep this comment', '">=1.2.0"  # keep this comment', 1)
    assert wordcount.read_text() == wordcount_before.replace('"textkit>=1.0",', '"textkit>=1.2.0",')
    fmtlib = (fleet.root / "shared/fmtlib/pyproject.toml").read_text()
    assert '  "textkit>=1.2.0",\n' in fmtlib
    # one commit: the pins and the lib's changelog; the lib's tag on it; dependents not released
    changed = set(fleet.git("show", "--name-only", "--format=", "HEAD").split())
    assert changed == {
        "conda_recipes/conda_build_config.yaml",
        "modules/wordcount/pyproject.toml",
        "shared/fmtlib/pyproject.toml",
        "shared/textkit/CHANGELOG.md",
    }
    assert fleet.tags() == ["textkit/v1.1.0", "textkit/v1.2.0"]
    assert fleet.git("status", "--porcelain") == ""


def test_bump_shared_release_dependents(fleet):
    fleet.tag("fmtlib/v0.4.0")
    fleet.tag("report/v1.0.0")
    result = fleet.cmfleet("bump-shared", "fmtlib", "0.5.0", "--release-dependents", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tags"] == ["fmtlib/v0.5.0", "report/v1.1.0"]  # 0.4 -> 0.5 is breaking at 0.x: minor
    assert data["dependents"] == {"report": ["report", "fmtlib"]}
    assert fleet.git("log", "-1", "--format=%s") == "release: fmtlib 0.5.0, report 1.1.0"
    report_changelog = (fleet.root / "modules/report/CHANGELOG.md").read_text()
    assert "fmtlib 0.5.0 (breaking) released in this release" in report_changelog
    assert "requires fmtlib>=0.5.0" in report_changelog
    assert '"fmtlib>=0.5.0",' in (fleet.root / "modules/report/pyproject.toml").read_text()


def test_bump_shared_dry_run_and_refusals_write_nothing(fleet):
    fleet.tag("textkit/v1.0.0")
    fleet.change("shared/textkit/src/textkit/__init__.py", "fix: x")
    snapshot = fleet.snapshot()
    result = fleet.cmfleet("bump-shared", "textkit", "--bump", "major", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "conda_recipes/conda_build_config.yaml: textkit -> '>=2.0.0'" in (result.stdout)
    assert "modules/wordcount/pyproject.toml: requires textkit>=2.0.0" in result.stdout
    assert fleet.snapshot() == snapshot
    for args, message, code in (
        (["hello"], "'hello' is a module; bump-shared takes a shared library", 2),
        (["ghost"], "unknown shared library 'ghost'", 2),
        (["textkit", "0.9.0"], "version 0.9.0 is not above the last release 1.0.0", 2),
        (["textkit", "1.1.0", "--bump", "minor"], "either VERSION or --bump", 2),
    ):
        result = fleet.cmfleet("bump-shared", *args)
        assert result.returncode == code, result.stderr
        assert message in result.stderr
        assert fleet.snapshot() == snapshot


def test_edit_build_config_without_a_pin_changes_nothing(fleet):
    fleet.add_shared("plainlib")
    fleet.commit("feat: plainlib")
    repo = Repository.load(fleet.root)
    assert edit_build_config(repo, repo.get("plainlib"), ">=1.0.0") is None


def test_replace_specifier_keeps_extras_and_markers():
    assert _replace_specifier("textkit", ">=1.2.0") == "textkit>=1.2.0"
    assert _replace_specifier("textkit[fast] >=1.0,<2", ">=1.2.0") == "textkit[fast]>=1.2.0"
    assert _replace_specifier("textkit>=1.0; python_version>'3.9'", ">=1.2.0") == "textkit>=1.2.0; python_version>'3.9'"
    assert _replace_specifier("textkit @ file:///x", ">=1.2.0") == "textkit @ file:///x"


def test_status(fleet):
    fleet.tag("textkit/v1.0.0")
    fleet.tag("wordcount/v2.0.0")
    fleet.tag("hello/v0.3.0")
    fleet.change("shared/textkit/src/textkit/__init__.py", "fix: x")
    fleet.tag("textkit/v1.0.1")
    fleet.change("modules/hello/app.py", "feat: y")
    result = fleet.cmfleet("status", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["textkit"]["needs_release"] is False
    assert rows["textkit"]["why"] == ["up to date with textkit/v1.0.1"]
    assert rows["textkit"]["version"] == "1.0.2.dev1"  # hatch-vcs counts hello's later commit
    assert rows["textkit"]["builds_as"] == "1.0.1"  # cmfleet build does not: nothing of textkit changed since
    assert rows["hello"]["builds_as"] is None  # changed since hello/v0.3.0: a dev build
    assert rows["wordcount"]["builds_as"] is None  # its library textkit changed since wordcount/v2.0.0
    assert rows["hello"]["last_release"] == "0.3.0"
    assert rows["hello"]["commits_since"] == 1
    assert (rows["hello"]["needs_release"], rows["hello"]["next_level"]) == (True, "minor")
    assert rows["wordcount"]["shared"] == [{"name": "textkit", "released": "1.0.1"}]
    assert rows["wordcount"]["needs_release"] is True
    assert rows["wordcount"]["why"] == ["textkit 1.0.1 released since the last release"]
    assert rows["report"]["why"][0] == "never released"
    assert rows["report"]["shared"] == [
        {"name": "textkit", "released": "1.0.1"},
        {"name": "fmtlib", "released": None},
    ]
    table = fleet.cmfleet("status")
    assert table.returncode == 0, table.stderr
    assert "yes (minor)" in table.stdout and "up to date with textkit/v1.0.1" in table.stdout
    assert "builds as" in table.stdout
    (textkit_line,) = [line for line in table.stdout.splitlines() if line.split()[:1] == ["textkit"]]
    assert textkit_line.split()[:5] == ["textkit", "shared", "1.0.1", "-", "1.0.2.dev1"]
    assert textkit_line.split()[5] == "1.0.1"
