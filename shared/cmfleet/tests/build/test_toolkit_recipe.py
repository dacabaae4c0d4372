"""cmfleet's conda recipe: conda-build copies ``shared/cmfleet`` out of the git checkout (a ``path:`` source), where
hatch-vcs cannot read cmfleet's tags, so the recipe's build script must hand the package version to the build.
No conda here: the rendered ``build.script`` runs as conda-build would run it, with ``python`` a fresh venv's,
in a copy of the source folder outside any git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from buildrepo import IGNORED, MAIN

from cmfleet.recipes import render_recipe


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
