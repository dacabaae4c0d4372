"""Empty results say so: `affected`, `matrix`, `status` and `lock --check` print one line when there is nothing to
report (on stderr where stdout is data for scripts), and their --json stays an empty list."""

from __future__ import annotations

import json


def test_affected_nothing_changed_says_so_and_keeps_stdout_empty(fleet):
    proc = fleet.cmfleet("affected", "--since", "HEAD")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # a list of names for scripts: none
    assert proc.stderr.splitlines() == ["No change since HEAD"]
    assert json.loads(fleet.cmfleet("affected", "--since", "HEAD", "--json").stdout)["affected"] == []


def test_affected_by_files_outside_every_unit(fleet):
    fleet.change("README.md", "docs: words", "# a fleet\n\nmore words\n")
    proc = fleet.cmfleet("affected", "--since", "HEAD~1", "--explain")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["No unit is affected since HEAD~1 (1 changed file(s) in no unit)"]
    untracked = fleet.cmfleet("affected", "--uncommitted")
    assert untracked.stderr.splitlines() == ["No change in the working tree"]


def test_matrix_empty_says_so_on_stderr(fleet):
    proc = fleet.cmfleet("matrix", "--since", "HEAD", "--format", "github")
    assert proc.stderr.splitlines() == ["No change since HEAD: an empty matrix"]
    assert 'matrix={"include":[]}' in proc.stdout.splitlines()
    as_json = fleet.cmfleet("matrix", "--since", "HEAD")
    assert json.loads(as_json.stdout)["shards"] == [{"include": []}] and as_json.stderr.strip()


def test_status_of_a_repository_without_units(fleet):
    fleet.git("rm", "-rq", "modules", "shared")
    fleet.git("commit", "-qm", "chore: no units yet")
    (fleet.root / "modules").mkdir()
    proc = fleet.cmfleet("status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"No unit in {fleet.root.resolve()}: nothing to report."]
    assert json.loads(fleet.cmfleet("status", "--json").stdout) == []


def test_lock_check_without_modules_says_so(fleet):
    fleet.git("rm", "-rq", "modules")
    fleet.git("commit", "-qm", "chore: no modules yet")
    (fleet.root / "modules").mkdir()
    proc = fleet.cmfleet("lock", "--check")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["No module to check: nothing to report."]
