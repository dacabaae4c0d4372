"""A rebase, merge, cherry-pick, revert or bisect in progress (git's own state files): `release` says which one and
how to finish or abort it, before anything else; `status` warns at the top instead of calling units up to date.
Real git: real conflicts, a real `git pull --rebase` from a bare remote."""

from __future__ import annotations

import os
import subprocess

import pytest


def _released(fleet) -> str:
    """hello and wordcount released; returns the release commit."""
    fleet.change("modules/hello/app.py", "feat: greet")
    fleet.change("modules/wordcount/app.py", "feat: count")
    result = fleet.cmfleet("release", "hello", "wordcount")
    assert result.returncode == 0, result.stderr
    return fleet.head()


def _diverged(fleet) -> tuple[str, str]:
    """Branch `other` and `main` each append another line to hello's app.py: they conflict."""
    base = _released(fleet)
    fleet.git("switch", "-q", "-c", "other")
    theirs = fleet.change("modules/hello/app.py", "fix: theirs")
    fleet.git("switch", "-q", "main")
    ours = fleet.change("modules/hello/app.py", "fix: ours")
    assert fleet.git("merge-base", "main", "other") == base
    return theirs, ours


def _start(fleet, operation: str) -> None:
    """Leave ``operation`` in progress (with conflicts, but for bisect)."""
    if operation == "rebase":
        _diverged(fleet)
        fleet.git("rebase", "other", check=False)
    elif operation == "merge":
        _diverged(fleet)
        fleet.git("merge", "other", check=False)
    elif operation == "cherry-pick":
        theirs, _ = _diverged(fleet)
        fleet.git("cherry-pick", theirs, check=False)
    elif operation == "revert":
        _released(fleet)
        first = fleet.change("modules/hello/app.py", "fix: first")
        fleet.change("modules/hello/app.py", "fix: second")
        fleet.git("revert", "--no-edit", first, check=False)
    elif operation == "bisect":
        _released(fleet)
        fleet.change("modules/hello/app.py", "fix: one")
        fleet.change("modules/hello/app.py", "fix: two")
        fleet.git("bisect", "start", "HEAD", "HEAD~3")
    if operation != "bisect":
        assert fleet.git("diff", "--name-only", "--diff-filter=U") == "modules/hello/app.py"


HOW = {
    "rebase": ("git rebase --continue", "git rebase --abort"),
    "merge": ("git commit", "git merge --abort"),
    "cherry-pick": ("git cherry-pick --continue", "git cherry-pick --abort"),
    "revert": ("git revert --continue", "git revert --abort"),
    "bisect": ("git bisect reset",),
}


@pytest.mark.parametrize("operation", sorted(HOW))
def test_release_and_status_name_the_operation_in_progress(fleet, operation):
    _start(fleet, operation)
    snapshot = fleet.snapshot()
    result = fleet.cmfleet("release", "hello")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"a {operation} is in progress" in result.stderr
    for command in HOW[operation]:
        assert f"`{command}`" in result.stderr, result.stderr
    assert "detached" not in result.stderr and "uncommitted changes" not in result.stderr
    assert fleet.snapshot() == snapshot
    # before anything else: the same answer for a bad request
    for args in (("ghost",), ("--affected", "--since", "HEAD~1"), ("hello", "--bump", "9.9.9")):
        other = fleet.cmfleet("release", *args)
        assert other.returncode == 1 and f"a {operation} is in progress" in other.stderr, (args, other.stderr)

    status = fleet.cmfleet("status", "--offline")
    assert status.returncode == 0, status.stderr
    first = status.stdout.splitlines()[0]
    assert first.startswith("Warning: ") and f"a {operation} is in progress" in first
    assert "up to date" not in status.stdout
    assert fleet.snapshot() == snapshot


def test_conflicted_pull_rebase(fleet, tmp_path):
    """The trial's case: `git pull --rebase` stops on a conflict with what someone else pushed."""
    _released(fleet)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    fleet.git("remote", "add", "origin", str(remote))
    fleet.git("push", "-q", "-u", "origin", "main")
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(remote), str(other)], check=True)
    (other / "modules/hello/app.py").write_text((other / "modules/hello/app.py").read_text() + "# theirs\n")
    subprocess.run(["git", "commit", "-q", "-am", "fix: theirs"], cwd=other, check=True)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=other, check=True)
    fleet.change("modules/hello/app.py", "fix: ours")
    fleet.git("pull", "-q", "--rebase", "origin", "main", check=False)
    assert fleet.git("diff", "--name-only", "--diff-filter=U") == "modules/hello/app.py"
    assert fleet.git("symbolic-ref", "-q", "HEAD", check=False) == ""  # git detached HEAD for the rebase

    result = fleet.cmfleet("release", "hello")
    assert result.returncode == 1
    assert "a rebase is in progress" in result.stderr and "modules/hello/app.py" in result.stderr
    assert "`git rebase --continue`" in result.stderr and "`git rebase --abort`" in result.stderr
    assert "detached" not in result.stderr

    # once it is finished, the release goes ahead
    fleet.write("modules/hello/app.py", (fleet.root / "modules/hello/app.py").read_text().split("<<<<<<<")[0])
    fleet.git("add", "modules/hello/app.py")
    subprocess.run(
        ["git", "rebase", "--continue"], cwd=fleet.root, check=True, env={**os.environ, "GIT_EDITOR": "true"}
    )
    done = fleet.cmfleet("release", "hello")
    assert done.returncode == 0, done.stderr
