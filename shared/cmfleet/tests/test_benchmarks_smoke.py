"""The benchmark suite's smoke mode: every section and table is produced, with numbers, so the suite cannot rot.

It runs ``benchmarks/run.py --smoke`` for real (``cmfleet dev`` with SDK replicas, functions-framework on
gunicorn, tox, git); nothing is timed against a target here: figures belong in BENCHMARKS.md, not in tests. The
run works in temp folders only and leaves nothing in the checkout; only a full run may write BENCHMARKS.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
CHECKOUT = Path(__file__).resolve().parents[3]
SECTIONS = [
    "Machine",
    "Versions",
    "Targets",
    "Invocation",
    "A fleet of fifty modules",
    "Fleet-scale commands",
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


def checkout_state() -> set[str]:
    """Every untracked or ignored path of the checkout (``git status --ignored``): what a run could leave behind.
    Python's byte-code caches are left out: any import of the checkout's packages writes them, pytest's too."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = {line[3:] for line in out.splitlines() if line[:2] in ("??", "!!")}
    return {p for p in paths if "__pycache__/" not in p and not p.endswith(".pyc")}


def runner(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUNNER), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args", [["--only", "invocation"], ["--smoke"]])
def test_partial_runs_refuse_to_write_benchmarks_md(args):
    before = BENCHMARKS_MD.read_bytes()
    proc = runner(*args, "--output", str(BENCHMARKS_MD))
    assert proc.returncode == 2, proc.stderr
    assert "BENCHMARKS.md is written only by a full run" in proc.stderr
    assert BENCHMARKS_MD.read_bytes() == before


def test_only_says_where_it_writes_and_rejects_unknown_sections():
    helped = runner("--help")
    assert helped.returncode == 0
    assert "never into BENCHMARKS.md" in " ".join(helped.stdout.split())
    proc = runner("--only", "invocation,nosuch")
    assert proc.returncode == 2
    assert "unknown section(s) nosuch" in proc.stderr and "invocation" in proc.stderr


def test_smoke_run_writes_every_section_with_numbers(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    before = checkout_state()
    proc = runner("--smoke", "--output", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert checkout_state() - before == set()
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
        assert re.search(r"Load average \(1 / 5 / 15 min\) at the start [\d.]+ / [\d.]+ / [\d.]+, at the end", body)
        section_tables = tables(body)
        assert section_tables, f"{name} has no table"
        for table in section_tables:
            assert table, f"{name} has an empty table"
            for row in table:
                # every row carries a measured number beside its label (median, min, max, runs, ratio, verdict)
                assert any(NUMBER.match(c) for c in row[1:]), (name, row)

    invocation = found["Invocation"]
    for label in (
        "bare function",
        "registry.invoke",
        "functions-framework (gunicorn)",
        "cmfleet dev",
        "| p99 latency |",
        "| throughput, 8 clients |",
        "cmfleet dev process alone",
        "cmfleet side, whole (runtime + replicas)",
        "functions-framework, whole server",
        "**Round by round**",
    ):
        assert label in invocation, label
    assert "### Scaling" in invocation
    fleet = found["A fleet of fifty modules"]
    for label in ("first-ever start", "warm start", "scale to zero", "call to a module scaled to zero"):
        assert label in fleet, label
    commands = found["Fleet-scale commands"]
    for label in ("`cmfleet list`, parse cache warm", "parse cache cold", "`cmfleet status`", "`cmfleet check`"):
        assert label in commands, label
    assert "tox -l" in found["Discovery"] and "cmfleet list --json" in found["Discovery"]
    assert "git diff --name-only" in found["Affected"]
    assert "tox + pip" in found["Test matrix"] and "affected only" in found["Test matrix"]
    assert "envs reused" in found["Test matrix"]
    assert "`hatch --version`" in found["Start-up"]
    assert "module file saved -> first call" in found["Hot reload"]
    assert "shared-library file saved -> first call" in found["Hot reload"]

    targets = tables(found["Targets"])[0]
    names = [row[0] for row in targets]
    for wanted in ("p50", "p95", "p99", "throughput with 8 clients", "CPU per job", "cmfleet list (table", "status"):
        assert any(wanted in n for n in names), wanted
    assert any("scaling" in n for n in names) and any("fleet idle" in n for n in names)
    assert all(row[3] in ("**PASS**", "**MISS**") for row in targets)
    for row in targets:  # a miss says by how much; the why column is left for a person
        assert (row[3] == "**MISS**") == bool(re.search(r"(over|short) \(", row[4])), row
