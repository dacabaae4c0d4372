"""``cmfleet new`` through the real CLI: bad names write nothing; what it writes passes check, pytest and tox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import pytest
from test_checks_support import check, fixture_env, make_repo

BASE_CONFIG_COMMENT = "# Pins of the fixture repository (comments must survive `cmfleet new --shared`)."


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def new(cmfleet, root: Path, *args: str):
    return cmfleet("new", *args, cwd=root, env=fixture_env(root))


def run_pytest(root: Path, tests: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Real pytest (with cmfleet's fixtures) on ``tests`` of the repository at ``root``."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root), tests]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120, env={**os.environ, **env})


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["a/b"], "path separator"),
        (["../escape"], "path separator or '..'"),
        (["..x"], "'..'"),
        (["two words"], "contains spaces"),
        (["Upper"], "upper-case"),
        (["bad!name"], "not a valid module name"),
        (["--", "-dash"], "not a valid module name"),
        (["9lives"], "not a valid module name"),
        ([""], "the name is empty"),
        (["good"], "a unit named 'good' already exists (modules/good)"),
        (["fixlib"], "a unit named 'fixlib' already exists (shared/fixlib)"),
        (["--shared", "good"], "a unit named 'good' already exists"),
        (["--shared", "with-dash"], "not a valid shared name"),
        (["--shared", "Lib"], "upper-case"),
        (["--shared", "fix.lib"], "not a valid shared name"),
        (["foundry_compute_modules"], "third-party package this repository depends on (modules/good/pyproject.toml"),
        (["--shared", "json"], "a module of Python's standard library"),
    ],
)
def test_bad_or_taken_name_exits_2_and_writes_nothing(cmfleet, tmp_path, args, reason):
    root = make_repo(tmp_path)
    before = tree(root)
    proc = new(cmfleet, root, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Error: cannot create" in proc.stderr and reason in proc.stderr
    assert tree(root) == before


def test_a_name_the_repository_uses_for_a_third_party_package_is_refused(cmfleet, tmp_path, repo_root):
    # a module called `requests` would take the place of the real one wherever a lock pins it (or pluggy, tox...)
    root = make_repo(tmp_path)
    lock = repo_root / "modules" / "hello" / "requirements.lock"
    shutil.copy(lock, root / "modules" / "good" / "requirements.lock")
    line = next(n for n, text in enumerate(lock.read_text().splitlines(), 1) if text.startswith("requests=="))
    with (root / "pyproject.toml").open("a") as fh:
        fh.write('\n[tool.hatch.envs.default]\ndependencies = ["tox>=4.29"]\n')
    before = tree(root)
    for args, where in (
        (["requests"], f"(modules/good/requirements.lock:{line})"),
        (["--shared", "tox"], "(pyproject.toml [tool.hatch.envs.default] dependencies)"),
    ):
        proc = new(cmfleet, root, *args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"is a third-party package this repository depends on {where}" in proc.stderr
    assert tree(root) == before
    assert new(cmfleet, root, "requests-report").returncode == 0  # only the exact (normalised) name is taken


def test_a_former_name_or_a_name_with_release_tags_is_refused(cmfleet, tmp_path):
    # a new unit would take over the releases (versions, changelog entries) of the one that had the name
    root = make_repo(tmp_path)
    pyproject = root / "modules" / "good" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.cmfleet]\nrenamed-from = ["hello"]\n')
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=root, check=True)
    subprocess.run([*git, "tag", "-a", "gone/v1.4.0", "-m", "gone 1.4.0"], cwd=root, check=True)

    def files() -> dict[str, bytes]:  # .git holds the discovery cache, written by any command
        return {k: v for k, v in tree(root).items() if not k.startswith(".git/")}

    before = files()
    proc = new(cmfleet, root, "hello")
    assert proc.returncode == 2 and "'hello' is the former name of good (modules/good)" in proc.stderr
    proc = new(cmfleet, root, "--shared", "gone")
    assert proc.returncode == 2 and "release tags of a unit called 'gone' already exist (gone/v1.4.0" in proc.stderr
    assert files() == before


def test_existing_folder_that_is_not_a_unit_is_refused(cmfleet, tmp_path):
    root = make_repo(tmp_path)
    (root / "modules" / "demo").mkdir()
    (root / "modules" / "demo" / "notes.txt").write_text("mine")
    proc = new(cmfleet, root, "demo")
    assert proc.returncode == 2
    assert "modules/demo already exists" in proc.stderr
    assert sorted(p.name for p in (root / "modules" / "demo").iterdir()) == ["notes.txt"]


def test_dry_run_lists_files_and_writes_nothing(cmfleet, tmp_path):
    root = make_repo(tmp_path)
    before = tree(root)
    proc = new(cmfleet, root, "--dry-run", "demo")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "would create modules/demo/CHANGELOG.md",
        "would create modules/demo/app.py",
        "would create modules/demo/conda_recipe/meta.yaml",
        "would create modules/demo/pyproject.toml",
        "would create modules/demo/tests/test_demo.py",
    ]
    assert tree(root) == before


def test_new_module_passes_check_and_its_tests(cmfleet, tmp_path):
    root = make_repo(tmp_path)
    proc = new(cmfleet, root, "demo-app")
    assert proc.returncode == 0, proc.stderr
    assert "created module 'demo-app'" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "pin its image's third-party wheels with: cmfleet lock demo-app"
    assert not list(root.glob(".cmfleet-new-*"))  # the staging folder is gone
    module = root / "modules" / "demo-app"
    assert sorted(p.relative_to(module).as_posix() for p in module.rglob("*") if p.is_file()) == [
        "CHANGELOG.md",
        "app.py",
        "conda_recipe/meta.yaml",
        "pyproject.toml",
        "tests/test_demo_app.py",
    ]
    pyproject = (module / "pyproject.toml").read_text()
    # new units read pre-release tags too (demo-app/v1.3.0rc1): cmfleet release --pre
    assert "tag-pattern = '^demo-app/v(?P<version>\\d+\\.\\d+\\.\\d+(?:(?:a|b|rc)\\d+)?)$'" in pyproject
    assert '"--match", "demo-app/v*"]' in pyproject
    # conda-build builds outside git: the recipe hands hatch-vcs the package version
    assert (
        "script: SETUPTOOLS_SCM_PRETEND_VERSION={{ version }} {{ PYTHON }}"
        in (module / "conda_recipe/meta.yaml").read_text()
    )
    proc, findings = check(cmfleet, root)
    assert proc.returncode == 0 and findings == [], findings
    tests = run_pytest(root, "modules/demo-app/tests", fixture_env(root))
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_new_shared_library_adds_recipe_and_pin_keeping_comments(cmfleet, tmp_path):
    root = make_repo(tmp_path)
    config = root / "conda_recipes" / "conda_build_config.yaml"
    before = config.read_text()
    proc = new(cmfleet, root, "--shared", "textutil")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2] == "update conda_recipes/conda_build_config.yaml"
    assert config.read_text() == before + 'textutil:\n  - ">=0.0.0"\n'
    assert config.read_text().startswith(BASE_CONFIG_COMMENT)
    lib = root / "shared" / "textutil"
    assert (lib / "src" / "textutil" / "__init__.py").is_file()
    recipe = (root / "conda_recipes" / "textutil" / "meta.yaml").read_text()
    assert "script: SETUPTOOLS_SCM_PRETEND_VERSION={{ version }} {{ PYTHON }}" in recipe
    proc, findings = check(cmfleet, root)
    assert proc.returncode == 0 and findings == [], findings
    tests = run_pytest(root, "shared/textutil/tests", {"PYTHONPATH": str(lib / "src")})
    assert tests.returncode == 0, tests.stdout + tests.stderr
    # A second library with the same name is now refused, and the pin is not added twice.
    again = new(cmfleet, root, "--shared", "textutil")
    assert again.returncode == 2 and config.read_text().count("textutil:") == 1


def copy_repository(repo_root: Path, target: Path) -> Path:
    """The tracked files of the repository as they are in the working tree (git ls-files)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo_root, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = repo_root / rel
        if source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)
    return target


@pytest.mark.slow
@pytest.mark.network
def test_new_module_passes_its_tox_env_in_a_copy_of_the_repository(cmfleet, tmp_path, repo_root):
    """Real tox with tox-uv: the env cmfleet's tox plugin generates runs the new module's tests and check."""
    root = copy_repository(repo_root, tmp_path / "repo")
    tox_ini = (root / "tox.ini").read_text()
    proc = new(cmfleet, root, "demo")
    assert proc.returncode == 0, proc.stderr
    # Outer tox variables (TOX_WORK_DIR, TOX_ENV_DIR...) would point the inner tox at the outer envs.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOX_", "CMFLEET_")) and k != "VIRTUAL_ENV"}
    tox = subprocess.run(
        [sys.executable, "-m", "tox", "-e", "module-demo"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert tox.returncode == 0, tox.stdout[-4000:] + tox.stderr[-2000:]
    assert "2 passed" in tox.stdout
    assert "1 unit(s) OK" in tox.stdout  # `cmfleet check demo`, the env's second command
    assert (root / "tox.ini").read_text() == tox_ini
    # Its version comes from its own tags exactly as hello's does.
    hello = tomllib.loads((root / "modules/hello/pyproject.toml").read_text())["tool"]["hatch"]["version"]
    demo = tomllib.loads((root / "modules/demo/pyproject.toml").read_text())["tool"]["hatch"]["version"]
    assert demo == json.loads(json.dumps(hello).replace("hello", "demo"))


def test_new_shared_library_joins_the_hatch_workspace(cmfleet, tmp_path):
    root = make_repo(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        "# the dev environment\n"
        "[tool.hatch.envs.default]\n"
        "workspace.members = [\n"
        '  { path = "shared/cmfleet", features = ["runtime"] },  # the toolkit\n'
        '  "shared/textkit",\n'
        "]\n\n"
        "[tool.ruff.lint.isort]\n"
        'known-first-party = ["cmfleet"]\n'
    )
    proc = new(cmfleet, root, "--shared", "textutil")
    assert proc.returncode == 0, proc.stderr
    text = pyproject.read_text()
    assert text.startswith("# the dev environment\n")
    assert '{ path = "shared/cmfleet", features = ["runtime"] },  # the toolkit' in text
    data = tomllib.loads(text)
    assert data["tool"]["hatch"]["envs"]["default"]["workspace"]["members"][-1] == "shared/textutil"
    assert data["tool"]["ruff"]["lint"]["isort"]["known-first-party"] == ["cmfleet", "textutil"]
