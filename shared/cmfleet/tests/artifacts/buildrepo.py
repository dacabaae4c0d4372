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

MAIN = Path(__file__).resolve().parents[4]
COPIED = (
    "pyproject.toml",
    ".gitignore",
    "conda_recipes",
    "modules/hello",
    "modules/wordcount",
    "shared/textkit",
    "shared/cmcore",
)
# _version.py is written by hatch-vcs into this checkout's cmfleet at every build; the copies hold sources only.
IGNORED = shutil.ignore_patterns(
    "__pycache__", ".tox", ".venv", "dist", ".pytest_cache", "tests", "*.pyc", "_version.py"
)
#: cmcore, the image's entrypoint, is versioned by its own tags like every unit: a release build needs it tagged too.
RUNTIME_VERSION = "0.3.0"
RUNTIME_TAG = f"cmcore/v{RUNTIME_VERSION}"
RUNTIME_WHEEL = f"cmcore-{RUNTIME_VERSION}-py3-none-any.whl"
#: The toolkit has tags of its own too; no image holds it.
TOOLKIT_TAG = "cmfleet/v0.3.0"
RELEASE_TAGS = ("hello/v1.0.0", "textkit/v1.2.0", "wordcount/v2.0.0", RUNTIME_TAG, TOOLKIT_TAG)


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
    for recipe in ("cmcore", "cmfleet", "textkit"):
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
import importlib.util, json, sys
import cmcore
from cmcore import load_registry
registry = load_registry(sys.argv[1])
calls = json.loads(sys.argv[2])
out = {name: registry.invoke(name, event).value for name, event in calls}
print(json.dumps({"module": registry.module.name, "cmcore": cmcore.__file__, "version": cmcore.__version__,
                  "toolkit": importlib.util.find_spec("cmfleet") is not None, "results": out}))
"""


def clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "CMFLEET_ROOT", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop}
