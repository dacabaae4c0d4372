"""``cmfleet build`` of several modules: they build at once (``--jobs``), a unit they all ship is built once per
run, the result is the same as one at a time, and a module that fails leaves the others built. Modules whose
contexts hold the same wheels (but their own) get one offline install check; when it fails, each is checked on
its own and the error names the module."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from buildrepo import RELEASE_TAGS, RUNTIME_WHEEL, leftovers, manifest, run_build

JOINT = re.compile(r"^checking (.+): offline install check, one pip run for (\d+) modules with the same wheels", re.M)


def add_twin(root: Path, name: str = "twin", requires_python: str | None = None) -> None:
    """A copy of ``hello`` named ``name``, with hello's lock: its context holds the same third-party wheels."""
    dest = root / "modules" / name
    shutil.copytree(root / "modules" / "hello", dest)
    for rel in ("pyproject.toml", "conda_recipe/meta.yaml", "requirements.lock"):
        path = dest / rel
        path.write_text(re.sub(r"\bhello\b", name, path.read_text()))
    if requires_python is not None:
        pyproject = dest / "pyproject.toml"
        text = pyproject.read_text()
        assert 'requires-python = ">=3.10"' in text
        pyproject.write_text(text.replace('requires-python = ">=3.10"', f'requires-python = "{requires_python}"'))


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


def test_contexts_with_the_same_wheels_get_one_offline_check(fresh_repo):
    repo = fresh_repo(tags=(*RELEASE_TAGS, "twin/v1.0.0"), edit=add_twin)
    proc = run_build(repo, "hello", "twin", "wordcount")
    assert proc.returncode == 0, proc.stderr
    # hello and its twin differ only in their own wheels: one pip run; wordcount also ships textkit: its own run
    assert JOINT.findall(proc.stderr) == [("hello, twin", "2")], proc.stderr
    assert re.search(r"^checking wordcount: offline install check \(", proc.stderr, re.M), proc.stderr
    hello, twin = repo / "dist/hello/1.0.0", repo / "dist/twin/1.0.0"
    assert manifest(twin)["module"]["name"] == "twin"
    assert manifest(twin)["third_party"] == manifest(hello)["third_party"]
    assert (twin / "wheels/twin-1.0.0-py3-none-any.whl").exists()
    assert not (twin / "wheels/hello-1.0.0-py3-none-any.whl").exists()  # each context holds its own wheels only
    assert (twin / "wheels/requirements.txt").read_text() == (hello / "wheels/requirements.txt").read_text()


def test_a_failed_joint_check_names_the_module_and_builds_the_others(fresh_repo):
    def edit(root: Path) -> None:
        add_twin(root, requires_python=">=3.99")  # no image Python satisfies it: pip refuses the twin's wheel

    repo = fresh_repo(tags=(*RELEASE_TAGS, "twin/v1.0.0"), edit=edit)
    proc = run_build(repo, "hello", "twin")
    assert proc.returncode == 1, proc.stderr
    assert JOINT.findall(proc.stderr) == [("hello, twin", "2")], proc.stderr
    assert "offline install check failed together: each module on its own" in proc.stderr
    assert re.search(
        r"twin: resolving the context's wheels offline .*\n.*'twin' requires a different Python", proc.stderr
    )
    assert "hello:" not in proc.stderr.split("failed together")[1]  # hello passed on its own
    assert "hello 1.0.0: dist/hello/1.0.0" in proc.stdout
    assert [p for p in leftovers(repo / "dist") if p.startswith(("twin", "."))] == []
