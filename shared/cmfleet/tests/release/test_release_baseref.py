"""`cmfleet base-ref`, the CI base with fallbacks, on real clones of a remote whose history was force-pushed."""

from __future__ import annotations

import subprocess


def base(repo, *args: str) -> tuple[str, str]:
    result = repo.cmfleet("base-ref", "--explain", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip(), result.stderr


def test_base_ref_after_a_force_push(tmp_path, fleet):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    fleet.git("remote", "add", "origin", str(remote))
    root = fleet.head()
    shared = fleet.change("modules/hello/app.py", "feat: shared history")
    fleet.git("push", "-q", "-u", "origin", "main")
    fleet.change("modules/hello/app.py", "feat: to be rewritten")
    fleet.git("push", "-q", "origin", "main")
    old_head = fleet.head()

    # a fast-forward push: the previous head itself
    new = fleet.change("modules/wordcount/app.py", "fix: after")
    assert base(fleet, "--before", old_head) == (old_head, f"base {old_head[:12]}: the previous head {old_head[:12]}\n")
    fleet.git("reset", "-q", "--hard", "HEAD~1")

    # rewrite the last commit and force-push it
    fleet.git("reset", "-q", "--hard", shared)
    fleet.change("modules/wordcount/app.py", "feat: rewritten")
    fleet.git("push", "-q", "--force", "origin", "main")
    assert new != fleet.head()

    # in this clone the old head still exists: the merge base with it
    sha, why = base(fleet, "--before", old_head)
    assert sha == shared and "merge base with the previous head" in why

    # a fresh clone (what CI checks out with fetch-depth: 0) has never seen the old head
    ci = tmp_path / "ci"
    subprocess.run(["git", "clone", "-q", "--no-local", str(remote), str(ci)], check=True)
    ci_repo = type(fleet)(ci)
    assert subprocess.run(["git", "cat-file", "-e", f"{old_head}^{{commit}}"], cwd=ci).returncode != 0
    sha, why = base(ci_repo, "--before", old_head, "--fallback", "origin/main")
    assert sha == root, why  # origin/main is HEAD itself, so it is skipped: the first commit
    assert "is not in this clone" in why and "origin/main already contains HEAD" in why and "first commit" in why
    # what the workflow then runs works on that base
    affected = ci_repo.cmfleet("affected", "--since", sha)
    assert affected.returncode == 0 and affected.stdout.split() == ["hello", "wordcount"]

    # a feature branch pushed for the first time (before is all zeros): the merge base with main
    subprocess.run(["git", "switch", "-q", "-c", "feature"], cwd=ci, check=True)
    ci_repo.change("modules/report/app.py", "feat: on a branch")
    main_head = ci_repo.git("rev-parse", "origin/main")
    sha, why = base(ci_repo, "--before", "0" * 40, "--fallback", "origin/main")
    assert sha == main_head and "no previous head" in why and "merge base with origin/main" in why
    assert ci_repo.cmfleet("affected", "--since", sha).stdout.split() == ["report"]

    # an unknown fallback is skipped, not fatal
    sha, why = base(ci_repo, "--before", "", "--fallback", "origin/nope")
    assert sha == root and "origin/nope is not a commit here" in why


def test_base_ref_refuses_a_shallow_clone(tmp_path, fleet):
    fleet.change("modules/hello/app.py", "fix: one")
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{fleet.root}", str(shallow)], check=True)
    result = type(fleet)(shallow).cmfleet("base-ref", "--before", "0" * 40)
    assert result.returncode == 2 and "shallow clone" in result.stderr and "fetch-depth: 0" in result.stderr
