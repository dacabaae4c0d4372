"""The units' conda recipes: conda-build copies a unit's folder out of the git checkout (a ``path:`` source), where
hatch-vcs cannot read the unit's tags, so each recipe's build script must hand the package version to the build.
No conda here: the rendered ``build.script`` runs as conda-build would run it, with ``python`` a fresh venv's,
in a copy of the source folder outside any git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from buildrepo import IGNORED, MAIN

from cmfleet.discovery import Repository
from cmfleet.recipes import render_recipe

REPO = Repository.load(MAIN)


@pytest.mark.parametrize("unit", sorted(REPO.units))
def test_every_recipe_passes_its_version_to_hatch_vcs(unit):
    found = REPO.units[unit]
    assert found.recipe.exists(), f"{unit} has no conda recipe"
    rendered = render_recipe(found.recipe, MAIN, {"CMFLEET_VERSION": "4.5.6"})
    assert rendered.data["package"] == {"name": unit, "version": "4.5.6"}
    assert str(rendered.data["build"]["script"]).startswith("SETUPTOOLS_SCM_PRETEND_VERSION=4.5.6 ")


def test_recipe_script_installs_cmfleet_as_the_package_version(tmp_path):
    rendered = render_recipe(MAIN / "conda_recipes/cmfleet/meta.yaml", MAIN, {"CMFLEET_VERSION": "0.3.0"})
    assert rendered.data["package"] == {"name": "cmfleet", "version": "0.3.0"}
    work = tmp_path / "work"  # conda-build's $SRC_DIR: the source folder alone
    shutil.copytree(MAIN / "shared/cmfleet", work, ignore=IGNORED)
    outside = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=work, capture_output=True, text=True)
    assert outside.returncode != 0  # hatch-vcs would fall back to 0.0.0.dev0 here
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CMFLEET_ROOT")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    script = str(rendered.data["build"]["script"])
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The run requirements (pluggy, ...) are conda's to install, so cmfleet is not imported: its metadata and
    # the _version.py that cmfleet.__version__ reads are.
    code = "import importlib.metadata as m; d = m.distribution('cmfleet'); print(d.version); "
    code += "print(d.locate_file('cmfleet/_version.py').read_text())"
    python = str(venv / "bin" / "python")
    check = subprocess.run([python, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[0] == "0.3.0"
    assert "__version__ = '0.3.0'" in check.stdout
