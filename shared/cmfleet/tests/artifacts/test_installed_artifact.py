"""The artifact target of the tox matrix (``artifact-<module>``): the module's built artifact installed as its
Dockerfile says (cmfleet.artifacts.installed), its schemas checked against ``cmfleet schema``, and the module's
own tests run against it through its entrypoint and a local runtime (``--cm-target artifact``). Real builds, pip,
venvs and runtime; no Docker engine (the Dockerfile's commands run with the venv's python, paths mapped to tmp)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from buildrepo import MAIN, git

from cmfleet.artifacts import BuildError
from cmfleet.artifacts.installed import Installation, install, smoke


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CMFLEET_ROOT", "PYTHONPATH") and not k.startswith("TOX_")}
    return {**env, **extra}


def run(repo: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv], cwd=repo, capture_output=True, text=True, env=_env(**env), timeout=600
    )


@pytest.fixture(scope="module")
def repo(released, tmp_path_factory) -> Path:
    """A copy of the released repository (its dist/ included) holding hello's own tests."""
    copy = tmp_path_factory.mktemp("artifact-target") / "repo"
    shutil.copytree(released, copy, symlinks=True)
    shutil.copytree(MAIN / "modules/hello/tests", copy / "modules/hello/tests")
    return copy


def fresh_install(repo: Path, tmp_path: Path) -> Installation:
    return install(repo / "dist/hello/1.0.0", tmp_path / "image")


def test_the_modules_own_tests_pass_against_its_installed_artifact(repo, tmp_path):
    installation = fresh_install(repo, tmp_path)
    assert smoke(installation) == ["add", "hello"]
    proc = run(
        repo, "-m", "pytest", "-p", "no:cacheprovider", "modules/hello/tests", "--cm-target", "artifact",
        "--cm-artifacts", str(tmp_path / "image"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cm_invoke / cm_module target: artifact" in proc.stdout and "4 passed" in proc.stdout


def test_the_schemas_it_posts_must_equal_cmfleet_schema(repo, tmp_path):
    fresh_install(repo, tmp_path)
    schemas = ("-m", "cmfleet.artifacts.installed", "schemas", "hello", str(tmp_path / "image"))
    proc = run(repo, *schemas, CMFLEET_LOAD_PLUGINS="")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello: the installed artifact posts exactly `cmfleet schema hello`"
    app = tmp_path / "image/app/hello/app.py"
    app.write_text(app.read_text() + "\n\n@function\ndef extra(context, event) -> str:\n    return 'x'\n")
    proc = run(repo, *schemas, CMFLEET_LOAD_PLUGINS="")
    assert proc.returncode == 1
    assert "hello: the installed artifact's schemas differ from `cmfleet schema`" in proc.stderr
    assert "extra: posted by the installed module, not in `cmfleet schema`" in proc.stderr


def test_a_helper_missing_from_the_artifact_fails_naming_the_import(repo, tmp_path):
    installation = fresh_install(repo, tmp_path)
    (Path(installation.workdir) / "greeting.py").unlink()
    source = (Path(installation.workdir) / "app.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if text.startswith("from greeting import"))
    with pytest.raises(BuildError) as raised:
        smoke(installation)
    assert f"app.py:{line}: importing app.py failed: ModuleNotFoundError: No module named 'greeting'" in str(
        raised.value
    )
    proc = run(
        repo, "-m", "pytest", "-p", "no:cacheprovider", "-x", "modules/hello/tests", "--cm-target", "artifact",
        "--cm-artifacts", str(tmp_path / "image"),
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"app.py:{line}: importing app.py failed: ModuleNotFoundError: No module named 'greeting'" in proc.stdout


def test_prepare_builds_an_untagged_module_as_dev_outside_the_checkout(fresh_repo, tmp_path):
    repo = fresh_repo(tags=())
    folder = tmp_path / "artifact"
    proc = run(repo, "-m", "cmfleet.artifacts.installed", "prepare", "hello", str(folder))
    assert proc.returncode == 0, proc.stderr
    installation = Installation.load(folder)
    assert ".dev" in installation.version and proc.stdout.startswith(f"hello {installation.version}: installed")
    assert (folder / "dist/hello" / installation.version / "Dockerfile").is_file()
    assert not (repo / "dist").exists() and git(repo, "status", "--porcelain") == ""
    pip = subprocess.run([installation.python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True)
    installed = {line.split("==")[0].lower() for line in pip.stdout.split()}
    assert "cmcore" in installed and "cmfleet" not in installed and "click" not in installed


def test_a_shared_library_missing_from_the_image_fails_naming_the_import(released, tmp_path):
    installation = install(released / "dist/wordcount/2.0.0", tmp_path / "image")
    assert smoke(installation) == ["count_words", "summarize"]
    removed = subprocess.run(
        [installation.python, "-m", "pip", "uninstall", "-y", "-q", "textkit"], capture_output=True, text=True
    )
    assert removed.returncode == 0, removed.stderr
    with pytest.raises(BuildError) as raised:
        smoke(installation)
    assert "No module named 'textkit'" in str(raised.value) and raised.value.exit_code == 1
