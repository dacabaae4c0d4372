"""An untracked, non-ignored file inside a unit makes it dirty for ``release`` and ``build`` (exit 1, naming it):
hatchling would pack it although no commit (and no tag) holds it. An ignored file or one outside units does not."""

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


def test_ignored_files_and_files_outside_units_do_not_count(fresh_repo):
    repo = fresh_repo()
    (repo / ".git" / "info" / "exclude").write_text("*.local\n")
    (repo / "modules" / "hello" / "notes.local").write_text("scratch\n")
    (repo / "NOTES.md").write_text("outside every unit\n")
    build = run_build(repo, "hello", "--check")
    assert build.returncode == 0, build.stderr
