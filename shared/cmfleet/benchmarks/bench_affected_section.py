"""Affected: runs the release helpers' ``bench_affected.py`` (1,000 modules, 10,000 commits) as its own process
and takes its table into the report, adding the ratio to the ``git diff`` floor."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from benchlib import HERE, BenchError, Section, Target, bench_env

SCRIPT = HERE / "bench_affected.py"
ROW = re.compile(r"^\| (.+?) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \|$")


def run(smoke: bool, workdir: Path) -> Section:
    args = ["--modules", "20", "--commits", "200", "--runs", "1"] if smoke else []
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=workdir,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise BenchError(f"bench_affected.py failed ({proc.returncode}):\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    table = proc.stdout.strip()
    medians = {m.group(1): float(m.group(2)) for line in table.splitlines() if (m := ROW.match(line.strip()))}
    floor = next((v for k, v in medians.items() if "git diff" in k), None)
    cli = next((v for k, v in medians.items() if "cmfleet affected" in k), None)
    if floor is None or cli is None:
        raise BenchError(f"bench_affected.py printed no floor/affected rows:\n{table[-1500:]}")
    section = Section("Affected")
    section.add(
        table,
        f"- `cmfleet affected` / `git diff --name-only` (the floor): **{cli / floor:.2f}x** (medians); "
        f"above the floor by {cli - floor:.3f} s (interpreter start-up, discovery and the graph walk).",
    )
    verdict = re.search(r"Target: `cmfleet affected` under ([\d.]+) s", table)
    limit = float(verdict.group(1)) if verdict else 1.0
    passed = cli < limit
    section.targets = [
        Target(
            "cmfleet affected (bench_affected.py sizes)",
            f"< {limit:g} s",
            f"{cli:.3f} s",
            passed,
            f"{cli - limit:.3f} s over ({cli / limit:.2f}x the limit)",
        )
    ]
    return section
