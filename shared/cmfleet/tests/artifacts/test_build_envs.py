"""A run's shared build environment: units declaring the same build requirements build in one environment made
once, and their wheels are the bytes an isolated build makes; a unit whose build needs more than its declared
requirements (another backend, a build hook's dependencies) still builds isolated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from buildrepo import RELEASE_TAGS, run_build

from cmfleet.artifacts.wheels import build_wheel, make_build_env, shared_build_requirements

HATCH = '[build-system]\nrequires = ["hatchling>=1.27", "hatch-vcs>=0.4"]\nbuild-backend = "hatchling.build"\n'


def _unit(tmp_path: Path, text: str) -> Path:
    unit = tmp_path / "unit"
    unit.mkdir(exist_ok=True)
    (unit / "pyproject.toml").write_text(text)
    return unit


def test_hatchling_units_share_and_others_build_isolated(tmp_path):
    assert shared_build_requirements(_unit(tmp_path, HATCH)) == ("hatch-vcs>=0.4", "hatchling>=1.27")
    setuptools = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    assert shared_build_requirements(_unit(tmp_path, setuptools)) is None
    assert shared_build_requirements(_unit(tmp_path, "[project]\nname = 'x'\n")) is None


@pytest.mark.parametrize(
    "hooks",
    [
        '[tool.hatch.build.hooks.custom]\ndependencies = ["cython"]\n',
        "[tool.hatch.build.targets.wheel.hooks.custom]\nrequire-runtime-dependencies = true\n",
    ],
)
def test_a_build_hook_asking_for_more_builds_isolated(tmp_path, hooks):
    assert shared_build_requirements(_unit(tmp_path, HATCH + hooks)) is None
    assert shared_build_requirements(_unit(tmp_path, HATCH + "[tool.hatch.build.hooks.vcs]\n")) is not None


def test_the_shared_environment_makes_the_isolated_builds_bytes(fresh_repo, tmp_path):
    repo = fresh_repo()
    unit = repo / "shared" / "cmcore"
    requires = shared_build_requirements(unit)
    assert requires is not None
    python = make_build_env(requires, tmp_path / "env")
    isolated = build_wheel(unit, tmp_path / "isolated", 1_700_000_000, "cmcore")
    shared = build_wheel(unit, tmp_path / "shared", 1_700_000_000, "cmcore", build_python=python)
    assert (shared.name, shared.version) == (isolated.name, isolated.version) == ("cmcore", "0.3.0")
    assert shared.path.read_bytes() == isolated.path.read_bytes()


def test_a_run_makes_one_build_environment(fresh_repo):
    repo = fresh_repo(tags=RELEASE_TAGS)
    proc = run_build(repo, "hello", "wordcount", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    made = re.findall(
        r"^building \w+: build environment \(hatch-vcs>=0.4, hatchling>=1.27\)( \(made once for this run\))? ",
        proc.stderr,
        re.M,
    )
    # five unit wheels asked for (hello: cmcore, hello; wordcount: cmcore, textkit, wordcount), one environment
    assert len(made) == 5 and made.count("") == 1, proc.stderr
