"""An untracked, non-ignored file inside a unit makes it dirty for ``release`` and ``build`` (exit 1, naming it):
hatchling would pack it although no commit (and no tag) holds it. So does a file only this clone hides from
``git status`` (its own ignore rules, an assume-unchanged or skip-worktree flag). A file the repository's committed
``.gitignore`` ignores, or one outside units, does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from buildrepo import clean_env, git, run_build


def release(repo: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "cmfleet", "release", *args]
    return subprocess.run(argv, cwd=repo, capture_output=True, text=True, env=clean_env(), timeout=300)


def test_untracked_helper_refuses_release_and_build(fresh_repo):
    repo = fresh_repo()
    (repo / "modules" / "hello" / "helper2.py").write_text("X = 1\n")
    (repo / "shared" / "textkit" / "src" / "textkit" / "extra.py").write_text("Y = 2\n")
    head = git(repo, "rev-parse", "HEAD")

    proc = release(repo, "hello", "--bump", "patch")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "modules/hello/helper2.py" in proc.stderr and "shared/textkit/src/textkit/extra.py" in proc.stderr
    assert git(repo, "rev-parse", "HEAD") == head and "hello/v1.0.1" not in git(repo, "tag")

    build = run_build(repo, "wordcount")  # wordcount's image holds textkit: its untracked file counts
    assert build.returncode == 1, build.stderr
    assert "shared/textkit/src/textkit/extra.py" in build.stderr and "modules/hello" not in build.stderr
    dev = run_build(repo, "hello", "--dev")
    assert dev.returncode == 1 and "modules/hello/helper2.py" in dev.stderr
    assert not (repo / "dist").exists()


def test_files_the_repositorys_gitignore_ignores_and_files_outside_units_do_not_count(fresh_repo):
    repo = fresh_repo()
    (repo / "modules" / "hello" / "__pycache__").mkdir()
    (repo / "modules" / "hello" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")  # the root .gitignore's
    (repo / "NOTES.md").write_text("outside every unit\n")
    build = run_build(repo, "hello", "--check")
    assert build.returncode == 0, build.stderr


def test_files_only_this_clone_hides_from_git_status_refuse_build_and_release(fresh_repo):
    # hatchling packs what is on disk: a file hidden by .git/info/exclude, or a change hidden by an index flag,
    # would ship in a build that calls itself the release (and the release gate would test it, not the commit)
    repo = fresh_repo()
    (repo / ".git" / "info" / "exclude").write_text("modules/hello/sneaky.py\n*.local\n")
    (repo / "modules" / "hello" / "sneaky.py").write_text("def evil(): ...\n")
    (repo / "modules" / "hello" / "notes.local").write_text("scratch\n")
    build = run_build(repo, "hello")
    assert build.returncode == 1, build.stdout + build.stderr
    assert "modules/hello/sneaky.py: untracked, hidden by this clone's ignore rules" in build.stderr
    assert "modules/hello/notes.local" in build.stderr and not (repo / "dist").exists()
    head = git(repo, "rev-parse", "HEAD")
    proc = release(repo, "hello", "--bump", "patch", "--no-tests")
    assert proc.returncode == 1 and "modules/hello/sneaky.py" in proc.stderr
    assert git(repo, "rev-parse", "HEAD") == head and "hello/v1.0.1" not in git(repo, "tag")

    (repo / "modules" / "hello" / "sneaky.py").unlink()
    (repo / "modules" / "hello" / "notes.local").unlink()
    assert run_build(repo, "hello", "--check").returncode == 0

    git(repo, "update-index", "--assume-unchanged", "shared/textkit/src/textkit/__init__.py")
    init = repo / "shared" / "textkit" / "src" / "textkit" / "__init__.py"
    init.write_text(init.read_text() + "PATCHED = True\n")
    assert git(repo, "status", "--porcelain") == ""  # git itself shows nothing
    build = run_build(repo, "wordcount", "--dev")
    assert build.returncode == 1, build.stdout + build.stderr
    assert "textkit/__init__.py: changed, hidden from git status by its assume-unchanged flag" in build.stderr
    assert "--no-assume-unchanged" in build.stderr
