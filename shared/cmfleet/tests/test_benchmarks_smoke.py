"""The benchmark suite's smoke mode: every section and table is produced, with numbers, so the suite cannot rot.

It runs ``benchmarks/run.py --smoke`` for real (``cmfleet dev`` with SDK replicas, functions-framework on
gunicorn, tox, git); nothing is timed against a target here: figures belong in BENCHMARKS.md, not in tests. The
run works in temp folders only and leaves nothing in the checkout; only a full run may write BENCHMARKS.md.
"""

from __future__ import annotations

import importlib.util
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
    "Builds",
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


OTHER_TOOLS = (".pytest_cache/", ".ruff_cache/", ".coverage")  # written by test runs that may run beside this one


def checkout_state() -> set[str]:
    """The untracked and ignored entries of the checkout (``git status --ignored``, folders wholly untracked or
    ignored as one entry): what a run could leave behind. Left out: Python's byte-code caches (any import of the
    checkout's packages writes them, pytest's too) and other tools' caches, which concurrent test runs write."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = {line[3:] for line in out.splitlines() if line[:2] in ("??", "!!")}
    return {p for p in paths if "__pycache__/" not in p and not p.endswith(".pyc") and p not in OTHER_TOOLS}


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


@pytest.fixture
def suite(tmp_path, monkeypatch):
    """``run.py`` imported, its sections replaced by ``fake`` ones, BENCHMARKS.md and scratch files in tmp."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(RUNNER.parent))
    spec = importlib.util.spec_from_file_location("bench_run_under_test", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "OUTPUT", tmp_path / "BENCHMARKS.md")
    monkeypatch.setattr(module, "SCRATCH", tmp_path / "scratch")
    monkeypatch.setattr(module, "tool_versions", lambda: {"Python": "3"})
    return module


def fake_section(title: str, fail: bool = False):
    """A benchmark that returns a one-table section with a missed target (or raises)."""

    def bench(smoke, workdir):
        from benchlib import Section, at_most

        if fail:
            raise RuntimeError(f"{title} broke")
        section = Section(title)
        section.add("| a | b |\n|---|---|\n| x | 1 |")
        section.targets = [at_most(f"{title} time", 2.0, 1.0, "s")]
        return section

    return bench


def test_full_run_writes_only_its_own_sections(suite):
    suite.OUTPUT.write_text("# Benchmarks\n\n## Old section\n\nkept from an earlier run\n")
    suite.SECTIONS = {"one": ("One", fake_section("One")), "two": ("Two", fake_section("Two"))}
    assert suite.main([]) == 0
    text = suite.OUTPUT.read_text()
    assert "Old section" not in text and "kept from an earlier run" not in text
    assert "## One" in text and "## Two" in text and "0 of 2 targets met, all from this run" in text
    assert "| One time | <= 1.00 s | 2.00 s | **MISS** | 1.00 s over (2.00x the limit) |  |" in text
    assert not (suite.SCRATCH / "cmfleet-BENCHMARKS-in-progress.md").exists()


def test_full_run_with_a_failed_section_leaves_benchmarks_md_alone(suite):
    suite.OUTPUT.write_text("the previous full run\n")
    suite.SECTIONS = {"one": ("One", fake_section("One")), "two": ("Two", fake_section("Two", fail=True))}
    assert suite.main([]) == 1
    assert suite.OUTPUT.read_text() == "the previous full run\n"
    report = (suite.SCRATCH / "cmfleet-BENCHMARKS-in-progress.md").read_text()
    assert "**FAILED**: Two broke" in report and "## One" in report


def test_only_writes_a_separate_file(suite):
    suite.OUTPUT.write_text("the previous full run\n")
    suite.SECTIONS = {"one": ("One", fake_section("One")), "two": ("Two", fake_section("Two"))}
    assert suite.main(["--only", "two"]) == 0
    assert suite.OUTPUT.read_text() == "the previous full run\n"
    text = (suite.SCRATCH / "cmfleet-BENCHMARKS-only.md").read_text()
    assert "## Two" in text and "## One" not in text and "by a run of only two" in text


def test_measured_commands_do_not_inherit_an_outer_tox(monkeypatch):
    """Under ``tox -e cmfleet`` the suite sees TOX_WORK_DIR & co.: the benchmark's own tox must not, or its envs
    (``shared-tinylib``) land in the checkout's .tox."""
    sys.path.insert(0, str(RUNNER.parent))
    try:
        from benchlib import bench_env
    finally:
        sys.path.remove(str(RUNNER.parent))
    for name, value in {"TOX_WORK_DIR": "/x/.tox", "TOX_ENV_DIR": "/x/.tox/cmfleet", "TOX_ENV_NAME": "cmfleet"}.items():
        monkeypatch.setenv(name, value)
    env = bench_env()
    assert not [k for k in env if k.startswith("TOX_")]
    assert env["PATH"] == __import__("os").environ["PATH"]


@pytest.mark.slow  # the whole benchmark suite in smoke mode
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
