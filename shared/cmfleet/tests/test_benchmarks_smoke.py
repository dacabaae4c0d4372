"""The benchmark suite's smoke mode: every section and table is produced, with numbers, so the suite cannot rot.

It runs ``benchmarks/run.py --smoke`` for real (``cmfleet dev`` with SDK replicas, functions-framework on
gunicorn, tox, git); nothing is timed against a target here: figures belong in BENCHMARKS.md, not in tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the whole benchmark suite in smoke mode: ~30 s

RUNNER = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
SECTIONS = [
    "Machine",
    "Versions",
    "Targets",
    "Invocation",
    "Discovery",
    "Affected",
    "Test matrix",
    "Start-up",
    "Hot reload",
]
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            out[current] = ""
        elif current:
            out[current] += line + "\n"
    return out


def tables(text: str) -> list[list[list[str]]]:
    """Markdown tables as rows of cells (header and rule rows dropped)."""
    found: list[list[list[str]]] = []
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if len(block) > 2:
            found.append([[c.strip() for c in row.strip().strip("|").split("|")] for row in block[2:]])
        block = []
    return found


def test_smoke_run_writes_every_section_with_numbers(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--smoke", "--output", str(out)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    text = out.read_text()
    assert "**FAILED**" not in text
    found = sections(text)
    assert list(found) == SECTIONS

    machine = dict(row[:2] for row in tables(found["Machine"])[0])
    assert machine["cores"].isdigit() and "GiB" in machine["memory"] and machine["CPU"]
    versions = dict(row[:2] for row in tables(found["Versions"])[0])
    for tool in ("Python", "cmfleet", "foundry-compute-modules (SDK)", "tox", "tox-uv", "uv", "hatch"):
        assert NUMBER.search(versions[tool]), (tool, versions.get(tool))
    assert NUMBER.search(versions["functions-framework (peer)"]) and NUMBER.search(versions["gunicorn (peer)"])

    for name in SECTIONS[3:]:
        body = found[name]
        assert "_Measured " in body, name
        section_tables = tables(body)
        assert section_tables, f"{name} has no table"
        for table in section_tables:
            assert table, f"{name} has an empty table"
            for row in table:
                # every row carries a measured number beside its label (median, min, max, runs, ratio, verdict)
                assert any(NUMBER.match(c) for c in row[1:]), (name, row)

    invocation = found["Invocation"]
    for label in ("bare function", "registry.invoke", "functions-framework (gunicorn)", "cmfleet dev (gateway)"):
        assert label in invocation
    assert "### Scaling" in invocation and "ms CPU/job" in invocation
    assert "tox -l" in found["Discovery"] and "cmfleet list --json" in found["Discovery"]
    assert "git diff --name-only" in found["Affected"]
    assert "tox + pip" in found["Test matrix"] and "affected only" in found["Test matrix"]
    assert "envs reused" in found["Test matrix"]
    assert "`hatch --version`" in found["Start-up"]
    assert "module file saved -> first call" in found["Hot reload"]
    assert "shared-library file saved -> first call" in found["Hot reload"]

    targets = tables(found["Targets"])[0]
    names = [row[0] for row in targets]
    assert any("p50" in n for n in names) and any("CPU per job" in n for n in names)
    assert any("scaling" in n for n in names) and any("cmfleet list" in n for n in names)
    assert all(row[3] in ("**PASS**", "**MISS**") for row in targets)
