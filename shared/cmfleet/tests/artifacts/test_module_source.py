"""A module's wheel holds its whole folder (helper files, helper packages, data files), without a hand-kept list.

The module is written as Foundry's template says (a helper ``myExampleLib.py`` beside ``app.py``, imported
absolutely), scaffolded by ``cmfleet new``'s own templates; it is built with the real ``cmfleet build`` and
installed as the Dockerfile does (cmfleet.artifacts.installed.install), then called from the install
folder. Leaving a helper out of the wheel fails ``cmfleet check`` and ``cmfleet build`` naming ``file:line``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from buildrepo import CALL, clean_env, git, run_build

from cmfleet.artifacts.installed import install as install_artifact
from cmfleet.discovery import Repository
from cmfleet.scaffold.generate import plan_unit, write_plan

APP = '''\
"""Foundry's template, with a helper file beside app.py."""

from compute_modules.annotations import function
from myExampleLib import ExampleClass


@function
def describe(context, event):
    return ExampleClass(event["name"]).describe()
'''

LIB = '''\
"""The template's helper file; it uses a helper package and a data file of the module folder."""

from pathlib import Path

from helpers.text import shout

PREFIX = (Path(__file__).parent / "data" / "prefix.txt").read_text().strip()


class ExampleClass:
    def __init__(self, name):
        self.name = name

    def describe(self):
        return f"{PREFIX} {shout(self.name)}"
'''


def add_template_module(repo: Path) -> None:
    """``cmfleet new tmpl``'s files, then app.py, a helper file, a helper package and a data file."""
    write_plan(plan_unit(Repository.load(repo), "tmpl", "module"))
    module = repo / "modules" / "tmpl"
    (module / "app.py").write_text(APP)
    (module / "myExampleLib.py").write_text(LIB)
    (module / "helpers").mkdir()
    (module / "helpers" / "__init__.py").write_text("")
    (module / "helpers" / "text.py").write_text("def shout(text):\n    return text.upper() + '!'\n")
    (module / "data").mkdir()
    (module / "data" / "prefix.txt").write_text("Hi\n")
    test = next((module / "tests").glob("test_*.py"))
    test.write_text(
        "def test_describe(cm_invoke):\n    assert cm_invoke('tmpl', 'describe', {'name': 'x'}) == 'Hi X!'\n"
    )


def cmfleet(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cmfleet", *args], cwd=repo, capture_output=True, text=True, env=clean_env(), timeout=300
    )


def test_template_module_builds_installs_and_answers(fresh_repo, tmp_path):
    repo = fresh_repo(edit=add_template_module)
    check = cmfleet(repo, "check", "tmpl")
    assert check.returncode == 0, check.stdout + check.stderr
    proc = run_build(repo, "tmpl", "--dev")
    assert proc.returncode == 0, proc.stderr
    [context] = (repo / "dist" / "tmpl").iterdir()
    [wheel] = (context / "wheels").glob("tmpl-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        files = {n for n in zf.namelist() if ".dist-info/" not in n}
    assert files == {
        "app.py",
        "myExampleLib.py",
        "helpers/__init__.py",
        "helpers/text.py",
        "data/prefix.txt",
    }  # no tests/, conda_recipe/, CHANGELOG.md, pyproject.toml
    installation = install_artifact(context, tmp_path / "image")
    call = subprocess.run(
        [
            installation.python,
            "-c",
            CALL,
            installation.workdir,
            json.dumps([["describe", {"name": "ada"}]]),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert call.returncode == 0, call.stderr
    assert json.loads(call.stdout.strip().splitlines()[-1])["results"] == {"describe": "Hi ADA!"}


def test_a_helper_left_out_of_the_wheel_fails_check_and_build(fresh_repo):
    def leave_out(repo: Path) -> None:
        add_template_module(repo)
        pyproject = repo / "modules" / "tmpl" / "pyproject.toml"
        text = pyproject.read_text()
        pyproject.write_text(text.replace('"/pyproject.toml"]', '"/pyproject.toml", "/helpers"]'))

    repo = fresh_repo(edit=leave_out)
    check = cmfleet(repo, "check", "tmpl", "--json")
    assert check.returncode == 1
    findings = [f for f in json.loads(check.stdout) if f["rule"] == "artifact-imports"]
    assert [f["location"] for f in findings] == ["modules/tmpl/myExampleLib.py:5"]
    assert "modules/tmpl/helpers/__init__.py, modules/tmpl/helpers/text.py" in findings[0]["message"]
    build = run_build(repo, "tmpl", "--dev")
    assert build.returncode == 1
    assert "modules/tmpl/myExampleLib.py:5" in build.stderr and "artifact-imports" in build.stderr
    assert not (repo / "dist").exists()


def test_a_git_ignored_helper_is_named_where_app_py_imports_it(fresh_repo):
    def ignore_helper(repo: Path) -> None:
        add_template_module(repo)
        (repo / "modules" / "tmpl" / ".gitignore").write_text("myExampleLib.py\n")

    repo = fresh_repo(edit=ignore_helper)
    # the ignored helper is still on disk (as on the author's machine) but not committed
    assert (repo / "modules" / "tmpl" / "myExampleLib.py").exists()
    assert "myExampleLib.py" not in git(repo, "ls-files", "modules/tmpl")
    check = cmfleet(repo, "check", "tmpl", "--json")
    assert check.returncode == 1
    findings = [f for f in json.loads(check.stdout) if f["rule"] == "artifact-imports"]
    assert [f["location"] for f in findings] == ["modules/tmpl/app.py:4"]
    assert "modules/tmpl/myExampleLib.py" in findings[0]["message"]
