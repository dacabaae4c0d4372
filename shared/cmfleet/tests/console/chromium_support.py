"""Which chromium the console tests drive, installing one when the machine has none.

In order: ``$CHROMIUM_PATH``; a system chromium on PATH; Playwright's own browser. With none of them it runs
``playwright install chromium`` and, when that download fails on a machine with apt where we are root, Debian's
``apt-get install chromium``, saying what it does; otherwise it fails naming the one command that fixes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PLAYWRIGHT_INSTALL = [sys.executable, "-m", "playwright", "install", "chromium"]
APT_INSTALL = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]


class NoChromium(RuntimeError):
    """No chromium here and none could be installed; the message names the command that fixes it."""


def system_chromium() -> str | None:
    for name in SYSTEM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def playwright_chromium() -> str | None:
    """The path of Playwright's own chromium when it is downloaded (None otherwise)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        path = pw.chromium.executable_path
    return path if path and Path(path).exists() else None


def _run(cmd: list[str], say: Callable[[str], None], env: dict[str, str] | None = None) -> bool:
    say(f"chromium: running {' '.join(cmd)}")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if done.returncode != 0:
        tail = " / ".join(line.strip() for line in (done.stderr or done.stdout).strip().splitlines()[-3:])
        say(f"chromium: that failed (exit {done.returncode}): {tail}")
    return done.returncode == 0


def find_chromium(say: Callable[[str], None] = print) -> str:
    """The executable to launch; installs one when needed (see the module's docstring)."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        if not Path(configured).exists():
            raise NoChromium(f"CHROMIUM_PATH={configured} does not exist (unset it, or point it at a chromium)")
        return configured
    found = system_chromium() or playwright_chromium()
    if found:
        return found
    say("chromium: none found (CHROMIUM_PATH, a system chromium, Playwright's browser); installing one")
    if _run(PLAYWRIGHT_INSTALL, say):
        found = playwright_chromium()
        if found:
            return found
    can_apt = shutil.which("apt-get") is not None and hasattr(os, "geteuid") and os.geteuid() == 0
    if can_apt:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if _run(["apt-get", "update", "-q"], say, env) and _run(APT_INSTALL, say, env):
            found = system_chromium()
            if found:
                say(f"chromium: installed {found}")
                return found
    fix = " ".join(APT_INSTALL) if shutil.which("apt-get") else "python -m playwright install chromium"
    if shutil.which("apt-get") and not can_apt:
        fix = "sudo " + fix
    raise NoChromium(f"no chromium for the console tests; install one with: {fix} (or set CHROMIUM_PATH)")
