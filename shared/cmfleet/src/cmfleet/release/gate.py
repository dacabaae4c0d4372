"""The release gate: what CI checks, run before a release writes anything.

For every unit a release tags or whose pins it moves: ``cmfleet check`` (the same rules CI runs), no pin naming a
version that was never released and, unless tests are skipped (``--no-tests``), the unit's tox env (the same env
CI runs), several at once. Any failure refuses the release naming the unit and the failing check or test.
Tox's envs live in the git directory (``.git/cmfleet-tox``), so the working tree stays untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from cmfleet.release.planner import ReleaseError

if TYPE_CHECKING:
    from cmfleet.discovery import Repository, Unit
    from cmfleet.repo.git import Git

#: Lines of a failing env's output quoted in the refusal.
TAIL_LINES = 25


def refuse_failing_checks(repo: Repository, units: list[Unit]) -> None:
    """Refuse when ``cmfleet check`` finds problems in any of ``units``."""
    from cmfleet.checks.base import run_checks

    findings = run_checks(repo, units)
    if findings:
        lines = [f"{f.location(repo.root)}: [{f.rule}] {f.message} (fix: {f.fix})" for f in findings[:20]]
        more = f"\n  ... and {len(findings) - 20} more" if len(findings) > 20 else ""
        names = ", ".join(sorted({f.unit for f in findings}))
        raise ReleaseError(f"`cmfleet check` fails for {names}:\n  " + "\n  ".join(lines) + more)


def refuse_unreleased_pins(repo: Repository, git: Git, units: list[Unit], planned: dict[str, str]) -> None:
    """Refuse when a pin in ``units``' pyprojects (or conda_build_config.yaml) names a version of a shared library
    that has no release tag and is not released by this plan (a build of it could never resolve)."""
    from cmfleet.release.pins import pins
    from cmfleet.release.versions import TagFormat, unit_releases

    fmt = TagFormat.of(repo)
    paths = {u.pyproject for u in units} | {repo.root / "conda_recipes" / "conda_build_config.yaml"}
    released: dict[str, set[str]] = {}
    problems = []
    for pin in pins(repo):
        if pin.file not in paths or pin.lib in planned:
            continue  # a library this plan releases gets its pins rewritten to that release
        if pin.lib not in released:
            released[pin.lib] = {str(r.version) for r in unit_releases(git, fmt, pin.lib, merged=None)}
        if pin.minimum not in released[pin.lib] and not _admits_everything(pin.minimum):
            known = ", ".join(sorted(released[pin.lib])) or "none yet"
            problems.append(
                f"{pin.file.relative_to(repo.root).as_posix()}:{pin.line}: the pin of {pin.lib} names "
                f"{pin.minimum}, which was never released (released: {known}); pin a released version, or "
                f"release {pin.lib} in the same run (cmfleet release {pin.lib} ...)"
            )
    if problems:
        raise ReleaseError("a pin names an unreleased version:\n  " + "\n  ".join(problems))


def tox_workdir(git: Git) -> Path:
    """Where the gate's tox envs live: inside the git directory, so the working tree stays clean."""
    common = Path(git.run("rev-parse", "--git-common-dir").strip())
    return (common if common.is_absolute() else git.root / common) / "cmfleet-tox"


def refuse_failing_tests(repo: Repository, git: Git, units: list[Unit]) -> None:
    """Run the tox env of each of ``units`` (in parallel, one per core) and refuse naming every failing one."""
    if not units:
        return
    workdir = tox_workdir(git)
    env = {k: v for k, v in os.environ.items() if k not in ("CMFLEET_SINCE", "TOX_ENV_NAME", "VIRTUAL_ENV")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the working tree either

    def run(unit: Unit) -> tuple[Unit, subprocess.CompletedProcess[str]]:
        cmd = [sys.executable, "-m", "tox", "run", "-e", unit.tox_env, "--workdir", str(workdir)]
        cmd += ["-x", "testenv.set_env+=PYTHONDONTWRITEBYTECODE=1"]
        return unit, subprocess.run(cmd, cwd=repo.root, capture_output=True, text=True, env=env)

    with ThreadPoolExecutor(max_workers=max(1, min(len(units), os.cpu_count() or 1))) as pool:
        results = list(pool.map(run, units))
    failed = []
    for unit, proc in results:
        if proc.returncode == 0:
            continue
        output = (proc.stdout + proc.stderr).strip().splitlines()
        if any("No module named tox" in line for line in output):
            raise ReleaseError("tox is not installed where cmfleet runs; install tox (and tox-uv) or pass --no-tests")
        tail = "\n    ".join(output[-TAIL_LINES:])
        failed.append(f"{unit.name}: `tox -e {unit.tox_env}` failed (exit {proc.returncode}):\n    {tail}")
    if failed:
        raise ReleaseError("tests fail (pass --no-tests to skip them, at your risk):\n  " + "\n  ".join(failed))


def _admits_everything(minimum: str) -> bool:
    """``>=0.0.0`` (or ``>=0``) names no release: it is the pin of a library never released yet."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(minimum) == Version("0")
    except InvalidVersion:
        return False
