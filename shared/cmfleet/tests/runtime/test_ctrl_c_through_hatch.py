"""Ctrl-C on ``hatch run cmfleet dev`` exits 0. hatch runs a command through ``/bin/sh -c``; a shell that waits
for cmfleet dies of the terminal's SIGINT itself (so hatch exited 254), however cleanly cmfleet stops. The root
pyproject's hatch script ``cmfleet = "exec cmfleet {args}"`` makes cmfleet the shell's own process: this runs that
script through ``/bin/sh`` as hatch does and sends SIGINT to the whole process group, as a terminal does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime_support import copy_fleet

from cmfleet.discovery import read_toml

REPO = Path(__file__).resolve().parents[4]


def _ctrl_c(command: str, cwd: Path) -> int:
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # cmfleet of this env
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command], cwd=cwd, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    deadline, seen = time.monotonic() + 60, []
    for line in proc.stderr:
        seen.append(line)
        if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
            break
    assert "Ctrl-C stops everything" in seen[-1], "".join(seen)  # running: the banner is out
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    return proc.returncode


def test_the_hatch_script_lets_ctrl_c_exit_0(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    script = read_toml(REPO / "pyproject.toml")["tool"]["hatch"]["envs"]["default"]["scripts"]["cmfleet"]
    args = "dev basic --port 0 --runtime-port 0 --no-reload"
    assert script.startswith("exec ")
    assert _ctrl_c(script.replace("{args}", args), root) == 0
