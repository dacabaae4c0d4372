"""``cmfleet build`` of several modules: they build at once (``--jobs``), a unit they all ship is built once per
run, the result is the same as one at a time, and a module that fails leaves the others built."""

from __future__ import annotations

import re
from pathlib import Path

from buildrepo import RUNTIME_WHEEL, leftovers, manifest, run_build


def _wheel_steps(stderr: str, unit: str) -> list[str]:
    return re.findall(rf"^building (\w+): wheel of {unit}( \(built once for this run\))? \(\d+\.\d s\)$", stderr, re.M)


def test_modules_build_at_once_and_a_shared_unit_is_built_once_per_run(fresh_repo, tmp_path):
    repo = fresh_repo()
    proc = run_build(repo, "hello", "wordcount", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    # cmcore is in both images: one build of the two made its wheel, the other took that one
    said = _wheel_steps(proc.stderr, "cmcore")
    assert sorted(module for module, _ in said) == ["hello", "wordcount"], proc.stderr
    assert sorted(bool(reused) for _, reused in said) == [False, True], proc.stderr
    hello, wordcount = repo / "dist/hello/1.0.0", repo / "dist/wordcount/2.0.0"
    assert (hello / "wheels" / RUNTIME_WHEEL).read_bytes() == (wordcount / "wheels" / RUNTIME_WHEEL).read_bytes()
    # one at a time gives the same bytes
    serial = tmp_path / "serial"
    proc = run_build(repo, "hello", "wordcount", "--jobs", "1", "--out", str(serial))
    assert proc.returncode == 0, proc.stderr
    for built in (hello, wordcount):
        other = serial / built.parent.name / built.name
        assert manifest(other) == manifest(built)
        for wheel in (built / "wheels").glob("*.whl"):
            assert (other / "wheels" / wheel.name).read_bytes() == wheel.read_bytes(), wheel.name


def test_a_module_that_fails_leaves_the_others_built_and_is_named(fresh_repo):
    def edit(root: Path) -> None:
        app = root / "modules/wordcount/app.py"
        app.write_text("import textkit.missing_helper\n" + app.read_text())

    repo = fresh_repo(edit=edit)
    proc = run_build(repo, "wordcount", "hello")
    assert proc.returncode == 1, proc.stderr
    assert "wordcount:" in proc.stderr and "modules/wordcount/app.py:1:" in proc.stderr
    assert "hello 1.0.0: dist/hello/1.0.0" in proc.stdout  # the other module was built, whole
    assert manifest(repo / "dist/hello/1.0.0")["module"]["name"] == "hello"
    assert [p for p in leftovers(repo / "dist") if p.startswith("wordcount")] == []
    assert not [p for p in leftovers(repo / "dist") if p.startswith(".")]  # no temporary folder left


def test_jobs_must_be_a_positive_number(fresh_repo):
    repo = fresh_repo()
    proc = run_build(repo, "hello", "--jobs", "0")
    assert proc.returncode == 2
    assert "--jobs" in proc.stderr and "0" in proc.stderr
    assert leftovers(repo / "dist") == []
