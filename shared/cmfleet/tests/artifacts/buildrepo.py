"""Real git repositories in tmp folders, copied from this repository's modules, libraries and recipes.

A uniquely named module (not ``conftest``): several conftest modules exist in this test tree, so importing
``conftest`` by name would be ambiguous.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cmfleet.artifacts.container import parse_dockerfile, run_commands

MAIN = Path(__file__).resolve().parents[4]
COPIED = ("pyproject.toml", ".gitignore", "conda_recipes", "modules/hello", "modules/wordcount", "shared/textkit")
# _version.py is written by hatch-vcs into this checkout's cmfleet at every build; the copies hold sources only.
IGNORED = shutil.ignore_patterns(
    "__pycache__", ".tox", ".venv", "dist", ".pytest_cache", "tests", "*.pyc", "_version.py"
)
#: cmfleet is versioned by its own tags like every unit: a release build needs it tagged too.
TOOLKIT_VERSION = "0.3.0"
TOOLKIT_TAG = f"cmfleet/v{TOOLKIT_VERSION}"
TOOLKIT_WHEEL = f"cmfleet-{TOOLKIT_VERSION}-py3-none-any.whl"
RELEASE_TAGS = ("hello/v1.0.0", "textkit/v1.2.0", "wordcount/v2.0.0", TOOLKIT_TAG)


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity and dates (commit hashes are then stable too)."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
        "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
    }
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def make_repo(dest: Path, tags: tuple[str, ...] = RELEASE_TAGS, edit: Callable[[Path], None] | None = None) -> Path:
    """Copy the needed parts of the real repository into ``dest``, commit, optionally edit, tag."""
    for rel in COPIED:
        src, target = MAIN / rel, dest / rel
        if src.is_dir():
            shutil.copytree(src, target, ignore=IGNORED)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    toolkit = dest / "shared" / "cmfleet"
    toolkit.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(MAIN / "shared" / "cmfleet" / name, toolkit / name)
    shutil.copytree(MAIN / "shared" / "cmfleet" / "src", toolkit / "src", ignore=IGNORED)
    for recipe in ("cmfleet", "textkit"):
        assert (dest / "conda_recipes" / recipe / "meta.yaml").exists()
    if edit is not None:
        edit(dest)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "initial")
    for tag in tags:
        git(dest, "tag", tag)
    return dest


def run_build(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """``cmfleet build ARGS`` through the real CLI, in ``repo``."""
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    return subprocess.run(
        [sys.executable, "-m", "cmfleet", "build", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def leftovers(out: Path) -> list[str]:
    """Everything under the output folder (a failed build must leave nothing)."""
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) if out.exists() else []


CALL = """
import json, sys
import cmfleet
from cmfleet.registry import load_registry
registry = load_registry(sys.argv[1])
calls = json.loads(sys.argv[2])
out = {name: registry.invoke(name, event).value for name, event in calls}
print(json.dumps({"module": registry.module.name, "cmfleet": cmfleet.__file__, "version": cmfleet.__version__,
                  "results": out}))
"""


def clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "CMFLEET_ROOT", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop}


def install_like_the_dockerfile(context: Path, venv: Path, app_root: Path) -> list[str]:
    """Run every RUN command of the context's Dockerfile in ``venv`` with /wheels and /app mapped to tmp."""
    ran = []
    python = str(venv / "bin" / "python")
    for instruction in parse_dockerfile((context / "Dockerfile").read_text()):
        if instruction.keyword != "RUN":
            continue
        for argv in run_commands(instruction):
            if argv[0] == "rm":
                continue  # cleaning the image layer; the context must stay for the test's assertions
            mapped = [
                python
                if word == "python"
                else word.replace("/wheels", str(context / "wheels"), 1)
                if word.startswith("/wheels")
                else word.replace("/app", str(app_root), 1)
                if word.startswith("/app")
                else word
                for word in argv
            ]
            proc = subprocess.run(mapped, capture_output=True, text=True, env=clean_env(), timeout=300)
            assert proc.returncode == 0, proc.stderr
            ran.append(" ".join(argv))
    return ran
