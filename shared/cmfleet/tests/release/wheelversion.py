"""The version hatch-vcs gives a unit's wheel, from a real build (a uniquely named helper module: several
``conftest`` modules exist in this test tree)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path


def uv() -> str:
    """uv from the dev environment (tox-uv ships it next to the interpreter)."""
    candidate = Path(sys.executable).parent / "uv"
    return str(candidate) if candidate.exists() else (shutil.which("uv") or "uv")


def build_wheel_version(unit_dir: Path, out: Path) -> str:
    """Build the unit's wheel with uv (hatchling + hatch-vcs, isolated) and read the version from its name."""
    proc = subprocess.run(
        [uv(), "build", "--wheel", "-q", "--out-dir", str(out), str(unit_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        version_line = next(line for line in zf.read(metadata).decode().splitlines() if line.startswith("Version:"))
    wheel.unlink()
    return version_line.split(":", 1)[1].strip()
