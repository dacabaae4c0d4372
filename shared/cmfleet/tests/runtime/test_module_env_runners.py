"""Every runner uses the module's own env when this Python lacks what the module declares: ``cmfleet invoke``, the
import probe of ``cmfleet check`` and the pytest fixtures run ``pricing`` (which declares python-dateutil, absent
from cmfleet's test env) in ``.cmfleet/envs/pricing``, the venv ``cmfleet dev`` makes (real uv, real venv), and a
module whose dependencies are installed here still runs in process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cmfleet.checks.probe import run_probe_for
from cmfleet.discovery import Repository
from cmfleet.runtime.environments import STAMP, read_stamp
from cmfleet.runtime.environments.select import missing_requirements

PRICING_APP = '''"""Due dates a month apart: needs python-dateutil."""

import datetime

from compute_modules.annotations import function
from dateutil.relativedelta import relativedelta


@function
def due(context, event):
    start = datetime.date.fromisoformat(event["date"])
    return (start + relativedelta(months=event["months"])).isoformat()
'''
PLAIN_APP = """from compute_modules.annotations import function


@function
def add(context, event):
    return event["x"] + event["y"]
"""
PRICING_TEST = """def test_due(cm_invoke):
    assert cm_invoke("pricing", "due", {"date": "2026-01-31", "months": 1}) == "2026-02-28"


def test_a_failure_carries_the_error(cm_module):
    outcome = cm_module("pricing").invoke("due", {"date": "not a date", "months": 1})
    assert not outcome.ok and "Invalid isoformat" in outcome.error_message
"""


def _module(root: Path, name: str, app: str, deps: list[str]) -> None:
    folder = root / "modules" / name
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(app)
    requirements = ", ".join(json.dumps(d) for d in ["foundry-compute-modules>=0.34", *deps])
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = [{requirements}]\n'
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own-env") / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.cmfleet]\n")
    _module(root, "pricing", PRICING_APP, ["python-dateutil>=2.8"])
    _module(root, "plain", PLAIN_APP, [])
    return root


def test_invoke_runs_a_module_with_a_dependency_missing_here_in_its_own_env(fleet, cmfleet):
    # dateutil is absent here, or this test would prove nothing
    assert subprocess.run([sys.executable, "-c", "import dateutil"], capture_output=True).returncode != 0
    repo = Repository.load(fleet)
    assert missing_requirements(repo, repo.module("pricing")) == ["python-dateutil>=2.8"]
    first = cmfleet("invoke", "pricing", "due", '{"date": "2026-01-31", "months": 1}', cwd=fleet, env={})
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == '"2026-02-28"'
    # made by this call, or reused when another test of this file made it first (any order)
    said = r"pricing: this Python lacks python-dateutil>=2.8: running in its environment(, creating it)? "
    assert re.search(said + r"\(\.cmfleet/envs/pricing\)", first.stderr), first.stderr
    stamp = read_stamp(fleet / ".cmfleet" / "envs" / "pricing")
    assert stamp is not None and "python-dateutil>=2.8" in stamp["requirements"]

    again = cmfleet("invoke", "pricing", "due", "--json", cwd=fleet, input='{"date": "2026-03-31", "months": 2}')
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["result"] == "2026-05-31"
    assert "running in its environment (.cmfleet/envs/pricing)" in again.stderr  # reused, not made again
    assert json.loads((fleet / ".cmfleet/envs/pricing" / STAMP).read_text())["created"] == stamp["created"]

    failed = cmfleet("invoke", "pricing", "due", '{"date": "nope", "months": 1}', cwd=fleet)
    assert failed.returncode == 1 and "Invalid isoformat string" in failed.stderr


def test_a_module_whose_dependencies_are_installed_runs_in_process(fleet, cmfleet):
    done = cmfleet("invoke", "plain", "add", '{"x": 2, "y": 3}', cwd=fleet)
    assert done.returncode == 0 and done.stdout.strip() == "5", done.stderr
    assert "running in its environment" not in done.stderr
    assert not (fleet / ".cmfleet" / "envs" / "plain").exists()


def test_the_check_probe_imports_app_py_in_the_modules_env(fleet):
    repo = Repository.load(fleet)
    result = run_probe_for(repo, repo.module("pricing"))
    assert result.ok, result.error
    assert [e["name"] for e in result.endpoints] == ["due"]


def test_the_pytest_fixtures_call_the_module_in_its_env(fleet):
    tests = fleet / "modules" / "pricing" / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "test_pricing.py").write_text(PRICING_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tests)],
        cwd=fleet,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
