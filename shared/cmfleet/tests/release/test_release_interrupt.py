"""`cmfleet release` interrupted while its commit is being made (Ctrl-C, a CI job cancelled): every file it wrote
and the index are put back, and it says so. Real processes and signals: a pre-commit hook that sleeps holds the
release inside `git commit` until the signal arrives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


def _slow_hook(fleet, marker) -> None:
    hook = fleet.root / ".git/hooks/pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\nsleep 8\nexit 0\n")
    os.chmod(hook, 0o755)


@pytest.mark.parametrize(
    ("sig", "to_group", "code"),
    [
        (signal.SIGINT, True, 130),  # Ctrl-C in a terminal: the whole process group, git and its hook too
        (signal.SIGTERM, False, 143),  # a CI runner stopping the job: only cmfleet's own process
    ],
)
def test_interrupted_release_changes_nothing(fleet, tmp_path, sig, to_group, code):
    fleet.change("modules/hello/app.py", "feat: greet")
    (fleet.root / "modules/hello/CHANGELOG.md").write_text("# Changelog\n\n## 0.0.9\n\n- old\n")
    fleet.commit("docs: changelog")
    marker = tmp_path / "hook-running"
    _slow_hook(fleet, marker)
    snapshot = fleet.snapshot()
    env = {**os.environ, "CMFLEET_NO_TESTS": "1"}  # the git identity of the autouse fixture
    env.pop("CMFLEET_ROOT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmfleet", "release", "hello", "--no-tests"],
        cwd=fleet.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the pre-commit hook never ran"
            time.sleep(0.05)
        # the release is inside `git commit` now, its changelog written and staged
        assert "modules/hello/CHANGELOG.md" in fleet.git("status", "--porcelain")
        if to_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == code, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "release was interrupted" in lines[0] and "nothing was changed" in lines[0]
    assert "Aborted!" not in err
    assert fleet.git("status", "--porcelain") == ""
    assert fleet.tags() == []
    assert fleet.snapshot() == snapshot
    assert not (fleet.root / ".git/index.lock").exists()
