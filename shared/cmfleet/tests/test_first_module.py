"""The README's "Your first module" walkthrough, run end to end on a scratch copy of the repository.

The commands are read out of README.md (every ```bash block of that section, in order), so the README and this
test cannot drift. They run as written, in bash, in a fresh git repository holding a copy of this checkout's tracked
files:
real cmfleet, uv, tox, git, curl; PyPI is reached for the module's environments, lock and wheels.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_new import copy_repository

REPO = Path(__file__).resolve().parents[3]
HEADING = "## Your first module"


def walkthrough_commands(readme: str) -> list[str]:
    """The ```bash blocks of the walkthrough section, in order."""
    start = readme.index(f"\n{HEADING}\n")
    end = readme.find("\n## ", start + 1)
    section = readme[start : end if end != -1 else None]
    return re.findall(r"^```bash\n(.*?)^```$", section, flags=re.S | re.M)


def walkthrough_env() -> dict[str, str]:
    """This environment's tools first on PATH, a git identity, nothing that points back at this checkout."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "CMFLEET_ROOT", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("TOX_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for who in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{who}_NAME"] = "First Module"
        env[f"GIT_{who}_EMAIL"] = "first@example.com"
    return env


def test_the_walkthrough_has_every_step():
    blocks = walkthrough_commands((REPO / "README.md").read_text(encoding="utf-8"))
    script = "\n".join(blocks)
    for step in ("cmfleet new", "uv add", "cmfleet lock", "tox -e", "cmfleet dev", "cmfleet release", "cmfleet build"):
        assert step in script, f"the walkthrough lost its {step!r} step"


@pytest.mark.slow
def test_readme_first_module_walkthrough_runs_as_written(tmp_path):
    repo = copy_repository(REPO, tmp_path / "repo")
    env = walkthrough_env()
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "chore: start"]):
        subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True)
    script = "\n".join(walkthrough_commands((REPO / "README.md").read_text(encoding="utf-8")))
    proc = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the walkthrough's background `cmfleet dev` goes with it if a step fails
    )
    try:
        out, err = proc.communicate(timeout=1200)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, f"{out[-4000:]}\n{err[-4000:]}"
    assert '{"due": "2026-02-28", "ref": "march-rent"}' in out  # the local call through cmfleet dev
    assert "1 passed" in out  # the module's own test in its tox env
    tags = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    assert "invoices/v0.1.0" in tags
    recipe = (repo / "modules/invoices/conda_recipe/meta.yaml").read_text()
    assert "    - python-dateutil >=2.8\n" in recipe and "    - textkit {{ textkit }}\n" in recipe
    assert "python-dateutil==" in (repo / "modules/invoices/requirements.lock").read_text()
    context = repo / "dist" / "invoices" / "0.1.0"
    assert (context / "manifest.json").is_file() and (context / "Dockerfile").is_file()
    [wheel] = (context / "wheels").glob("invoices-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert {"app.py", "invoice_math.py"} <= set(zf.namelist())
    assert any(p.name.startswith("python_dateutil-") for p in (context / "wheels").iterdir())
