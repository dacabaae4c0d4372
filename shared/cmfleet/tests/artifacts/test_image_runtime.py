"""The image holds cmcore (its entrypoint) and never the toolkit: a toolkit-only change leaves every module's
release build valid, and a change to cmcore makes every module need a release, which `cmfleet status`,
`cmfleet release` and `cmfleet build` say the same way, naming the change. Real git repositories (buildrepo.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from buildrepo import git, run_build


def cmfleet(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    return subprocess.run(
        [sys.executable, "-m", "cmfleet", *args], cwd=repo, capture_output=True, text=True, env=env, timeout=300
    )


def status(repo: Path) -> dict[str, dict]:
    proc = cmfleet(repo, "status", "--json", "hello", "wordcount", "cmcore")
    assert proc.returncode == 0, proc.stderr
    return {row["name"]: row for row in json.loads(proc.stdout)}


def test_toolkit_changelog_keeps_builds_valid_and_a_cmcore_fix_asks_for_releases_everywhere(fresh_repo):
    repo = fresh_repo()
    (repo / "shared/cmfleet/CHANGELOG.md").write_text("# Changelog\n\n- a toolkit-only change\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "docs(cmfleet): changelog")
    rows = status(repo)
    assert [rows[m]["needs_release"] for m in ("hello", "wordcount")] == [False, False]
    assert rows["hello"]["builds_as"] == "1.0.0" and rows["wordcount"]["builds_as"] == "2.0.0"
    check = run_build(repo, "--check", "hello", "wordcount")
    assert check.returncode == 0, check.stdout + check.stderr
    nothing = cmfleet(repo, "release", "hello", "--dry-run")
    assert nothing.returncode != 0 and "nothing to release" in nothing.stderr and "cmfleet" not in nothing.stderr

    entry = repo / "shared/cmcore/src/cmcore/entrypoint.py"
    entry.write_text(entry.read_text() + "\n# a fix in what every image runs\n")
    git(repo, "commit", "-q", "-am", "fix(cmcore): the entrypoint")
    reason = "its shared library cmcore: "
    rows = status(repo)
    assert rows["cmcore"]["needs_release"] is True
    for module, tag in (("hello", "hello/v1.0.0"), ("wordcount", "wordcount/v2.0.0")):
        row = rows[module]
        assert row["needs_release"] is True and row["builds_as"] is None, row
        [why] = row["why"]
        assert why.startswith(f"changed since {tag}: {reason}") and f"`cmfleet release cmcore {module}`" in why
    refused = run_build(repo, "--check", "hello")
    assert refused.returncode == 2
    assert f"hello: changed since hello/v1.0.0: {reason}" in refused.stderr
    alone = cmfleet(repo, "release", "hello", "--dry-run")
    assert alone.returncode != 0
    assert f"but its build changed since hello/v1.0.0: {reason}" in alone.stderr
    assert "`cmfleet release cmcore hello`" in alone.stderr
    # the scratch repo has no tests for the gate's tox envs to run; the gate has tests of its own (release/)
    both = cmfleet(repo, "release", "cmcore", "hello", "--dry-run", "--no-tests")
    assert both.returncode == 0, both.stderr
    assert "cmcore/v0.3.1" in both.stdout and "hello/v1.0.1" in both.stdout
