"""A release merged without its ``Cmfleet-Release`` trailers (a squash merge whose message is only the PR title):
its changelog section is on the branch but no tag says so. `release` refuses to write that version again and
`status` names the untagged release, both with the `git tag` command that fixes it. Real git."""

from __future__ import annotations

import json
import shlex
import subprocess


def _squash_merged_release(fleet) -> str:
    """hello 0.1.0 released and tagged; then its 0.1.1 release PR squash-merged as `Release hello (#42)`."""
    fleet.change("modules/hello/app.py", "feat: greet")
    assert fleet.cmfleet("release", "hello").returncode == 0
    fleet.change("modules/hello/app.py", "fix: trailing space")
    pr = fleet.cmfleet("release", "hello", "--pr", "release/hello")
    assert pr.returncode == 0, pr.stderr
    fleet.git("merge", "-q", "--squash", "release/hello")
    fleet.git("commit", "-q", "-m", "Release hello (#42)")
    return fleet.head()


def test_release_merged_without_trailers_is_refused_then_fixed_by_its_tag(fleet):
    squash = _squash_merged_release(fleet)
    changelog = fleet.root / "modules/hello/CHANGELOG.md"
    assert changelog.read_text().count("## 0.1.1 (") == 1
    assert "Nothing to tag" in fleet.cmfleet("tag", "--merged").stdout  # no trailer names the tag
    fix = f"git tag -a hello/v0.1.1 -m 'hello 0.1.1' {squash}"

    snapshot = fleet.snapshot()
    result = fleet.cmfleet("release", "hello")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "0.1.1" in result.stderr and "Cmfleet-Release" in result.stderr
    assert fix in result.stderr
    assert "Nothing was written." in result.stderr
    assert fleet.snapshot() == snapshot

    # a later fix would make 0.1.1 again: still refused; an explicit version at or below it too, and one above it
    # (its section would list 0.1.1's changes again)
    fleet.change("modules/hello/app.py", "fix: empty names")
    for args in ((), ("--bump", "0.1.1"), ("--bump", "minor"), ("--bump", "0.3.0")):
        snapshot = fleet.snapshot()
        again = fleet.cmfleet("release", "hello", *args)
        assert again.returncode in (1, 2) and fix in again.stderr, (args, again.stderr)
        assert fleet.snapshot() == snapshot

    # status names it, with the same fix, in the table and in JSON
    status = fleet.cmfleet("status", "--offline")
    assert status.returncode == 0, status.stderr
    assert "untagged release" in status.stdout and fix in status.stdout
    rows = json.loads(fleet.cmfleet("status", "hello", "--json", "--offline").stdout)
    (untagged,) = rows[0]["untagged_releases"]
    assert {k: untagged[k] for k in ("version", "tag", "commit", "fix")} == {
        "version": "0.1.1",
        "tag": "hello/v0.1.1",
        "commit": squash,
        "fix": fix,
    }
    assert "without its Cmfleet-Release trailers" in untagged["detail"]
    others = json.loads(fleet.cmfleet("status", "wordcount", "--json", "--offline").stdout)
    assert others[0]["untagged_releases"] == []

    # the printed command is the fix: the next release follows 0.1.1 and lists only what came after it
    subprocess.run(shlex.split(fix), cwd=fleet.root, check=True)
    assert "untagged release" not in fleet.cmfleet("status", "--offline").stdout
    done = fleet.cmfleet("release", "hello")
    assert done.returncode == 0, done.stderr
    assert "hello  0.1.1 -> 0.1.2" in done.stdout
    text = changelog.read_text()
    assert text.count("## 0.1.1 (") == 1 and text.count("## 0.1.2 (") == 1
    newest = text.split("## 0.1.2 (", 1)[1].split("## 0.1.1 (", 1)[0]
    assert "empty names" in newest and "trailing space" not in newest and "Release hello" not in newest


def test_changelog_sections_below_the_last_tag_are_history(fleet):
    """Sections written before the unit's tags (or by hand) are no untagged release once a tag is above them."""
    fleet.write("modules/hello/CHANGELOG.md", "# Changelog\n\n## 0.0.9\n\n- old\n")
    fleet.commit("docs: the changelog as it was")
    fleet.change("modules/hello/app.py", "feat: greet")
    rows = json.loads(fleet.cmfleet("status", "hello", "--json", "--offline").stdout)
    assert rows[0]["untagged_releases"] == []  # never released: sections from before cmfleet are not flagged
    fleet.tag("hello/v0.1.0")
    fleet.change("modules/hello/app.py", "fix: x")
    result = fleet.cmfleet("release", "hello")
    assert result.returncode == 0, result.stderr
    rows = json.loads(fleet.cmfleet("status", "hello", "--json", "--offline").stdout)
    assert rows[0]["untagged_releases"] == []


def test_never_released_unit_refuses_only_the_version_its_changelog_has(fleet):
    """A first release PR squash-merged without trailers: its version is refused; sections of a unit never released
    that stay below the next version (written before cmfleet) are not in the way, and status does not flag them."""
    fleet.change("modules/hello/app.py", "feat: greet")
    pr = fleet.cmfleet("release", "hello", "--pr", "release/hello")
    assert pr.returncode == 0, pr.stderr
    fleet.git("merge", "-q", "--squash", "release/hello")
    fleet.git("commit", "-q", "-m", "Release hello (#1)")
    squash = fleet.head()
    fleet.change("modules/hello/app.py", "feat: more")
    refused = fleet.cmfleet("release", "hello")
    assert refused.returncode == 1
    assert f"git tag -a hello/v0.1.0 -m 'hello 0.1.0' {squash}" in refused.stderr
    assert fleet.cmfleet("release", "hello", "--bump", "0.2.0").returncode == 0
    rows = json.loads(fleet.cmfleet("status", "hello", "--json", "--offline").stdout)
    assert rows[0]["untagged_releases"] == []  # 0.1.0 is below the last release now: history
