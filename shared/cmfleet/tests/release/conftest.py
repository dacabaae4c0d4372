"""A factory of real git repositories laid out like a cmfleet monorepo, for the release tests.

No git is mocked: every repository is made with ``git init`` in a temporary folder, with real commits, tags,
merges and renames. The commit identity comes from the environment (set for every test below).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Release Tester",
    "GIT_AUTHOR_EMAIL": "tester@example.com",
    "GIT_COMMITTER_NAME": "Release Tester",
    "GIT_COMMITTER_EMAIL": "tester@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


@pytest.fixture(autouse=True)
def git_identity(monkeypatch):
    """A fixed git identity and no user or system git config (no signing, no hooks from outside)."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CMFLEET_ROOT", raising=False)
    monkeypatch.delenv("CMFLEET_SINCE", raising=False)


def version_section(name: str) -> str:
    """The [tool.hatch.version] text every unit uses (the same as the repository's own units)."""
    return textwrap.dedent(
        f"""\
        [tool.hatch.version]
        source = "vcs"
        tag-pattern = '^{name}/v(?P<version>\\d+\\.\\d+\\.\\d+(?:(?:a|b|rc)\\d+)?)$'
        fallback-version = "0.0.0.dev0"

        [tool.hatch.version.raw-options]
        root = "../.."
        local_scheme = "no-local-version"
        git_describe_command = ["git", "describe", "--dirty", "--tags", "--long", "--match", "{name}/v*"]
        """
    )


def unit_pyproject(name: str, deps: tuple[str, ...], wheel: str) -> str:
    """A unit's pyproject.toml: hatchling + hatch-vcs, its dependencies, its version section."""
    dep_list = "".join(f'  "{d}",\n' for d in deps)
    head = (
        '[build-system]\nrequires = ["hatchling>=1.27", "hatch-vcs>=0.4"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "{name}"\ndynamic = ["version"]\nrequires-python = ">=3.10"\n'
        f"dependencies = [\n{dep_list}]\n\n"
    )
    return head + version_section(name) + f"\n[tool.hatch.build.targets.wheel]\n{wheel}\n"


ROOT_PYPROJECT = """\
# the workspace root
[tool.cmfleet]
tag-format = "{unit}/v{version}"
"""

BUILD_CONFIG = """\
# pins shared by every recipe
python:
  - "3.11"
foundry_compute_modules:
  - ">=0.34"
# shared libraries
textkit:
  - ">=0.0.0"  # keep this comment
fmtlib:
  - ">=0.0.0"
"""


#: The recipes' version: what `cmfleet build` passes (a recipe's own constant fails `build --check`).
RECIPE_VERSION = '{{ environ.get("CMFLEET_VERSION", "0.0.0") }}'


class GitRepo:
    """A real git repository in a temp folder, with helpers to lay out units and commit."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- git --------------------------------------------------------------------------------------------------------

    def git(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def commit(self, message: str, *paths: str) -> str:
        """Stage ``paths`` (everything when none) and commit; returns the sha."""
        self.git("add", "--", *(paths or ["."]))
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def change(self, rel: str, message: str, text: str | None = None) -> str:
        """Append a line to ``rel`` (or write ``text``) and commit it."""
        path = self.root / rel
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        self.write(rel, text if text is not None else old + f"# {message}\n")
        return self.commit(message, rel)

    def tag(self, name: str, ref: str = "HEAD") -> None:
        self.git("tag", "-a", name, "-m", name, ref)

    def tags(self) -> list[str]:
        return sorted(self.git("tag", "--list").split())

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def snapshot(self) -> tuple:
        """Everything a refused command must leave as it was: HEAD, branch, tags, index, every file."""
        files = {}
        for path in sorted(self.root.rglob("*")):
            if ".git" in path.relative_to(self.root).parts or not path.is_file():
                continue
            files[path.relative_to(self.root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        status = self.git("status", "--porcelain=v1", "--untracked-files=all")
        branch = self.git("symbolic-ref", "-q", "HEAD", check=False)
        return self.head(), branch, self.tags(), status, files

    # -- layout -----------------------------------------------------------------------------------------------------

    def add_shared(self, name: str, deps: tuple[str, ...] = ()) -> None:
        """A shared library ``shared/<name>`` with src/, tests/ and ``conda_recipes/<name>/meta.yaml``."""
        self.write(
            f"shared/{name}/pyproject.toml",
            unit_pyproject(name, deps, f'packages = ["src/{name}"]'),
        )
        imports = "".join(f"import {d}  # noqa: F401\n" for d in deps)
        self.write(f"shared/{name}/src/{name}/__init__.py", f'"""{name}."""\n{imports}\n\ndef hello():\n    return 1\n')
        self.write(
            f"shared/{name}/tests/test_{name}.py",
            f"import {name}\n\n\ndef test_it():\n    assert {name}.hello() == 1\n",
        )
        run = "".join(f"    - {d} {{{{ {d} }}}}\n" for d in deps)
        self.write(
            f"conda_recipes/{name}/meta.yaml",
            f"package:\n  name: {name}\n  version: {RECIPE_VERSION}\n"
            f"requirements:\n  run:\n    - python {{{{ python }}}}\n{run}",
        )

    def add_module(self, name: str, deps: tuple[str, ...] = (), extra_files: dict[str, str] | None = None) -> None:
        """A compute module ``modules/<name>`` with app.py (SDK @function), tests and its conda recipe."""
        self.write(
            f"modules/{name}/pyproject.toml",
            unit_pyproject(name, ("foundry-compute-modules>=0.34", *deps), 'only-include = ["app.py"]'),
        )
        # shared libraries are imported inside the function: the fixture's libraries are not installed, and
        # `cmfleet check` imports app.py (the imports are still seen statically)
        imports = "".join(f"    import {d}  # noqa: F401\n" for d in deps)
        self.write(
            f"modules/{name}/app.py",
            "from compute_modules.annotations import function\n\n\n"
            f"@function\ndef ping(context, event) -> str:\n{imports}    return 'pong'\n",
        )
        self.write(f"modules/{name}/tests/test_app.py", "def test_ping():\n    assert True\n")
        run = "".join(f"    - {d} {{{{ {d} }}}}\n" for d in deps)
        self.write(
            f"modules/{name}/conda_recipe/meta.yaml",
            f"package:\n  name: {name}\n  version: {RECIPE_VERSION}\n"
            f"requirements:\n  run:\n    - python {{{{ python }}}}\n"
            f"    - foundry-compute-modules {{{{ foundry_compute_modules }}}}\n{run}",
        )
        for rel, text in (extra_files or {}).items():
            self.write(f"modules/{name}/{rel}", text)

    # -- the CLI ----------------------------------------------------------------------------------------------------

    def cmfleet(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """The real CLI: ``python -m cmfleet args...`` with the repository as working directory."""
        # releases run the units' tox envs unless told not to: only the gate's own tests run them
        full_env = {**os.environ, **GIT_ENV, "CMFLEET_NO_TESTS": "1", **(env or {})}
        full_env.pop("CMFLEET_ROOT", None)
        return subprocess.run(
            [sys.executable, "-m", "cmfleet", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=120,
        )


def build_repo(root: Path, *, toolkit: bool = False) -> GitRepo:
    """The standard layout, committed once on ``main``.

    Libraries: textkit; fmtlib (depends on textkit). Modules: hello (none), wordcount (textkit),
    report (fmtlib, so textkit transitively). With ``toolkit`` also ``shared/cmfleet`` and ``shared/cmcore`` (what
    images run) folders, each with a static version.
    """
    root.mkdir(parents=True, exist_ok=True)
    repo = GitRepo(root)
    repo.git("init", "-q", "-b", "main")
    repo.write("pyproject.toml", ROOT_PYPROJECT)
    repo.write("tox.ini", "[tox]\nenv_list = lint\n")
    repo.write(".ci/run", "#!/bin/sh\necho ci\n")
    repo.write("README.md", "# a fleet\n")
    repo.write("conda_recipes/conda_build_config.yaml", BUILD_CONFIG)
    repo.add_shared("textkit")
    repo.add_shared("fmtlib", deps=("textkit",))
    repo.add_module("hello")
    repo.add_module("wordcount", deps=("textkit",))
    repo.add_module("report", deps=("fmtlib",))
    if toolkit:
        repo.write("shared/cmfleet/pyproject.toml", '[project]\nname = "cmfleet"\nversion = "0.1.0"\n')
        repo.write("shared/cmfleet/src/cmfleet/__init__.py", "")
        repo.write("shared/cmcore/pyproject.toml", '[project]\nname = "cmcore"\nversion = "0.1.0"\n')
        repo.write("shared/cmcore/src/cmcore/__init__.py", "")
        repo.write(
            "conda_recipes/cmcore/meta.yaml",
            f"package:\n  name: cmcore\n  version: {RECIPE_VERSION}\n"
            "requirements:\n  run:\n    - python {{ python }}\n",
        )
        repo.write("conda_recipes/conda_build_config.yaml", BUILD_CONFIG + 'cmcore:\n  - ">=0.0.0"\n')
    repo.commit("chore: initial layout")
    return repo


@pytest.fixture
def make_repo(tmp_path):
    """``make_repo(name="repo", toolkit=False)`` -> a fresh :class:`GitRepo` with the standard layout."""

    def factory(name: str = "repo", **kwargs) -> GitRepo:
        return build_repo(tmp_path / name, **kwargs)

    return factory


@pytest.fixture
def fleet(make_repo) -> GitRepo:
    """The standard layout, freshly committed."""
    return make_repo()
