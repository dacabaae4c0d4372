"""`cmfleet publish`: clones racing to publish against one bare remote (real git, real pushes); `status` tag fixes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest


def bare_remote(tmp_path, fleet) -> str:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    fleet.git("remote", "add", "origin", str(remote))
    fleet.git("push", "-q", "-u", "origin", "main")
    return str(remote)


def clone(tmp_path, remote: str, name: str, like):
    """A clone of ``remote``, driven like the fixture repository ``like`` (the conftest's GitRepo helper)."""
    subprocess.run(["git", "clone", "-q", remote, str(tmp_path / name)], check=True)
    return type(like)(tmp_path / name)


def remote_git(remote: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", remote, *args], capture_output=True, text=True, check=True).stdout


def remote_tags(remote: str) -> dict[str, str]:
    """tag -> the commit it points at, on the remote."""
    out = remote_git(remote, "for-each-ref", "--format=%(refname:strip=2) %(*objectname)", "refs/tags")
    return dict(line.split() for line in out.splitlines())


def orphan_tags(remote: str) -> list[str]:
    """Remote tags whose commit no remote branch contains."""
    return [t for t, sha in remote_tags(remote).items() if not remote_git(remote, "branch", "--contains", sha).strip()]


def run_replan(repo, stderr: str) -> None:
    """Run the commands the rejection message lists, exactly as printed (cmfleet through this interpreter)."""
    block = stderr.split("Re-plan on top of theirs:\n", 1)[1]
    for line in block.splitlines():
        command = line.split("#", 1)[0].strip()
        if not command:
            continue
        args = shlex.split(command)
        if args[0] == "cmfleet":
            result = repo.cmfleet(*args[1:])
        else:
            result = subprocess.run(args, cwd=repo.root, capture_output=True, text=True, env=dict(os.environ))
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def start_publish(repo) -> subprocess.Popen:
    env = dict(os.environ)  # the git identity of the autouse fixture
    env.pop("CMFLEET_ROOT", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cmfleet", "publish"],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("clones", [2, 3])
def test_racing_publishes_leave_no_orphan_tag(tmp_path, fleet, clones):
    remote = bare_remote(tmp_path, fleet)
    repos = [clone(tmp_path, remote, f"clone{i}", fleet) for i in range(clones)]
    for i, repo in enumerate(repos):
        repo.change(f"modules/hello/notes_{i}.txt", f"fix: clone {i}'s fix")
        result = repo.cmfleet("release", "hello")
        assert result.returncode == 0, result.stderr
        assert "Publish with: cmfleet publish" in result.stdout
        assert "git push origin" not in result.stdout

    procs = [start_publish(repo) for repo in repos]
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    winners = [i for i, (code, _, _) in enumerate(outcomes) if code == 0]
    assert len(winners) == 1, outcomes
    winner = repos[winners[0]]
    assert remote_git(remote, "rev-parse", "main").strip() == winner.head()
    assert remote_tags(remote) == {"hello/v0.0.1": winner.head()}  # a fix on an unreleased unit: 0.0.1
    assert orphan_tags(remote) == []
    for i, (code, out, err) in enumerate(outcomes):
        if i in winners:
            assert "Published main" in out and "hello/v0.0.1" in out
            continue
        assert code == 1, (out, err)
        # rejected by the atomic push, or refused before it when the winner's tag was already there
        rejected = "rejected the push" in err and "Nothing reached it" in err
        refused = "someone released hello/v0.0.1 first" in err and "Nothing was pushed" in err
        assert rejected or refused, err
        assert "git tag -d hello/v0.0.1" in err and "git pull --rebase origin main" in err
        assert "cmfleet release hello" in err and "cmfleet publish origin" in err

    # every loser re-plans exactly as told, one after the other: each lands a new version on top
    for i, repo in enumerate(repos):
        if i in winners:
            continue
        _, _, err = outcomes[i]
        run_replan(repo, err)
    tags = remote_tags(remote)
    assert sorted(tags) == [f"hello/v0.0.{n}" for n in range(1, clones + 1)]
    assert orphan_tags(remote) == []
    head = remote_git(remote, "rev-parse", "main").strip()
    assert tags[f"hello/v0.0.{clones}"] == head
    # and publishing again has nothing to do
    last = repos[[i for i in range(clones) if i not in winners][-1]]
    again = last.cmfleet("publish")
    assert again.returncode == 0 and "Nothing to publish" in again.stdout


def test_publish_refuses_a_tag_taken_on_the_remote(tmp_path, fleet):
    remote = bare_remote(tmp_path, fleet)
    other = clone(tmp_path, remote, "other", fleet)
    other.tag("hello/v0.1.0")
    other.git("push", "-q", "origin", "hello/v0.1.0")
    fleet.change("modules/hello/app.py", "fix: a fix")
    assert fleet.cmfleet("release", "hello", "--bump", "0.1.0").returncode == 0
    before = remote_git(remote, "rev-parse", "main")
    result = fleet.cmfleet("publish")
    assert result.returncode == 1
    assert "tag hello/v0.1.0 on origin points at" in result.stderr and "Nothing was pushed" in result.stderr
    assert remote_git(remote, "rev-parse", "main") == before


def test_status_reports_orphan_and_unpublished_tags(tmp_path, fleet):
    bare_remote(tmp_path, fleet)
    # an orphan: a tag on a commit that no branch holds any more, pushed by a non-atomic push long ago
    fleet.change("modules/hello/app.py", "fix: dropped later")
    fleet.tag("hello/v0.0.9")
    fleet.git("push", "-q", "origin", "hello/v0.0.9")
    fleet.git("reset", "-q", "--hard", "HEAD~1")
    # an unpublished release
    fleet.change("modules/wordcount/app.py", "feat: new")
    assert fleet.cmfleet("release", "wordcount").returncode == 0

    result = fleet.cmfleet("status", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["hello"]["tag_problems"] == [
        {
            "unit": "hello",
            "tag": "hello/v0.0.9",
            "problem": "orphan",
            "detail": rows["hello"]["tag_problems"][0]["detail"],
            "fix": "git tag -d hello/v0.0.9 && git push --delete origin hello/v0.0.9",
        }
    ]
    assert [(p["tag"], p["problem"], p["fix"]) for p in rows["wordcount"]["tag_problems"]] == [
        ("wordcount/v0.1.0", "unpublished", "cmfleet publish origin")
    ]
    text = fleet.cmfleet("status")
    assert "orphan tag hello/v0.0.9" in text.stdout and "fix: cmfleet publish origin" in text.stdout

    # the fixes, as printed, clear both
    for fix in ("git tag -d hello/v0.0.9", "git push -q --delete origin hello/v0.0.9"):
        fleet.git(*shlex.split(fix)[1:])
    assert fleet.cmfleet("publish").returncode == 0
    rows = {r["name"]: r for r in json.loads(fleet.cmfleet("status", "--json").stdout)}
    assert all(not r["tag_problems"] for r in rows.values())
    offline = fleet.cmfleet("status", "--offline", "--json")
    assert offline.returncode == 0


def test_publish_refused_by_a_hook_lands_nothing(tmp_path, fleet):
    remote = bare_remote(tmp_path, fleet)
    hook = tmp_path / "remote.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    fleet.change("modules/hello/app.py", "fix: a fix")
    assert fleet.cmfleet("release", "hello").returncode == 0
    before = remote_git(remote, "rev-parse", "main")
    result = fleet.cmfleet("publish")
    assert result.returncode == 1
    assert "origin refused the push of main -> main" in result.stderr and "hook declined" in result.stderr
    assert "Nothing reached it" in result.stderr and "Re-plan" not in result.stderr
    assert remote_git(remote, "rev-parse", "main") == before and remote_tags(remote) == {}


def test_publish_to_a_missing_remote_is_a_usage_error(fleet):
    fleet.change("modules/hello/app.py", "fix: a fix")
    result = fleet.cmfleet("publish", "nowhere")
    assert result.returncode == 2 and "cannot read the remote 'nowhere'" in result.stderr


def test_publish_refuses_a_release_below_one_the_remote_holds(tmp_path, fleet):
    """A stale clone releases hello below the version someone published meanwhile, merges theirs with a pull that
    fetched no tag, and publishes: refused (a dev build after both would be versioned below theirs), re-planned."""
    remote = bare_remote(tmp_path, fleet)
    fleet.change("modules/hello/app.py", "feat: greet")
    assert fleet.cmfleet("release", "hello").returncode == 0 and fleet.cmfleet("publish").returncode == 0
    alice = clone(tmp_path, remote, "alice", fleet)
    bob = clone(tmp_path, remote, "bob", fleet)
    alice.change("modules/hello/app.py", "feat: alice's feature")
    assert alice.cmfleet("release", "hello").returncode == 0
    assert alice.cmfleet("publish").returncode == 0
    assert sorted(remote_tags(remote)) == ["hello/v0.1.0", "hello/v0.2.0"]
    bob.change("modules/hello/notes.txt", "fix: bob's fix")
    assert bob.cmfleet("release", "hello").returncode == 0  # 0.1.1: he has not seen 0.2.0
    assert bob.cmfleet("publish").returncode == 1  # rejected: alice published first
    # bob ignores the advice: he merges theirs (no tag fetched), resolves the changelog conflict, commits
    bob.git("pull", "-q", "--no-rebase", "origin", "main", check=False)
    bob.git("checkout", "--ours", "modules/hello/CHANGELOG.md")
    bob.commit("Merge branch 'main' of origin", "modules/hello/CHANGELOG.md")
    assert "hello/v0.2.0" not in bob.tags()
    status = json.loads(bob.cmfleet("status", "hello", "--json").stdout)[0]["tag_problems"]
    pending = [p for p in status if p["tag"] == "hello/v0.2.0"]
    assert pending and "origin has it" in pending[0]["detail"], status
    assert pending[0]["fix"].startswith("git fetch --tags origin"), status
    ours = [p for p in status if p["tag"] == "hello/v0.1.1"]
    assert ours and "not above hello/v0.2.0" in ours[0]["detail"] and ours[0]["fix"].startswith("re-plan"), status

    before = remote_git(remote, "rev-parse", "main")
    result = bob.cmfleet("publish")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "hello/v0.1.1 is not above hello/v0.2.0" in result.stderr and "Nothing was pushed" in result.stderr
    assert "git tag -d hello/v0.1.1" in result.stderr and "cmfleet release hello" in result.stderr
    assert remote_git(remote, "rev-parse", "main") == before
    assert sorted(remote_tags(remote)) == ["hello/v0.1.0", "hello/v0.2.0"]

    # the re-plan, as printed, lands bob's fix as 0.2.1 on top of alice's release
    run_replan(bob, result.stderr)
    tags = remote_tags(remote)
    assert sorted(tags) == ["hello/v0.1.0", "hello/v0.2.0", "hello/v0.2.1"]
    assert tags["hello/v0.2.1"] == remote_git(remote, "rev-parse", "main").strip() == bob.head()
    assert "fix: bob's fix" in bob.git("log", "--format=%s", "hello/v0.2.0..HEAD")
    assert orphan_tags(remote) == []


def test_a_release_on_a_branch_without_the_higher_one_is_published(tmp_path, fleet):
    """The refusal above counts only the remote's releases in what is pushed: a fix released on a maintenance
    branch cut from an older release (whose builds never describe from the newer tag) is published."""
    remote = bare_remote(tmp_path, fleet)
    fleet.change("modules/hello/app.py", "feat: greet")
    assert fleet.cmfleet("release", "hello").returncode == 0 and fleet.cmfleet("publish").returncode == 0
    fleet.change("modules/hello/app.py", "feat: more")
    assert fleet.cmfleet("release", "hello").returncode == 0 and fleet.cmfleet("publish").returncode == 0
    assert sorted(remote_tags(remote)) == ["hello/v0.1.0", "hello/v0.2.0"]
    fleet.git("switch", "-q", "-c", "maint-0.1", "hello/v0.1.0")
    fleet.change("modules/hello/notes.txt", "fix: backported")
    assert fleet.cmfleet("release", "hello").returncode == 0
    assert "hello/v0.1.1" in fleet.tags()
    result = fleet.cmfleet("publish", "origin")
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert sorted(remote_tags(remote)) == ["hello/v0.1.0", "hello/v0.1.1", "hello/v0.2.0"]
    assert remote_git(remote, "rev-parse", "maint-0.1").strip() == fleet.head()


def test_publish_with_a_tag_moved_by_hand_advises_fixing_the_tag(tmp_path, fleet):
    """A published tag moved by hand onto a later fix commit: refused, and the advice fixes the tag; it never tells
    to drop the fix commit (it is no release commit)."""
    remote = bare_remote(tmp_path, fleet)
    fleet.change("modules/hello/app.py", "feat: greet")
    assert fleet.cmfleet("release", "hello").returncode == 0 and fleet.cmfleet("publish").returncode == 0
    released = fleet.head()
    fix = fleet.change("modules/hello/app.py", "fix: after the release")
    fleet.git("tag", "-f", "-a", "hello/v0.1.0", "-m", "moved", fix)
    result = fleet.cmfleet("publish")
    assert result.returncode == 1 and "Nothing was pushed" in result.stderr
    assert "reset" not in result.stderr and "drop your release commit" not in result.stderr, result.stderr
    assert f"{fix[:7]}, which is not a release commit" in result.stderr
    fixes = result.stderr.split("Take origin's tag, then publish:\n", 1)[1].splitlines()
    assert fixes[0].strip() == "git tag -d hello/v0.1.0 && git fetch --tags origin"
    for line in filter(str.strip, fixes):
        for part in line.split("#", 1)[0].split("&&"):
            args = shlex.split(part)
            if args[0] == "cmfleet":
                done = fleet.cmfleet(*args[1:])
                assert done.returncode == 0, (part, done.stdout, done.stderr)
            else:
                fleet.git(*args[1:])
    assert fleet.head() == fix and fleet.git("rev-parse", "hello/v0.1.0^{commit}") == released
    assert remote_git(remote, "rev-parse", "main").strip() == fix
