"""The tox plugin through real tox: one env per unit, in the default env_list, overridable from tox.ini."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys


def _tox(root, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOX_") and k != "CMFLEET_ROOT"}
    return subprocess.run(
        [sys.executable, "-m", "tox", *args], cwd=root, capture_output=True, text=True, env=env, timeout=120
    )


def _copy_repo(repo_root, dest):
    files = subprocess.run(["git", "ls-files"], cwd=repo_root, capture_output=True, text=True, check=True)
    for rel in files.stdout.splitlines():
        if rel.startswith(("modules/", "conda_recipes/")) or rel in ("pyproject.toml", "tox.ini"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo_root / rel, dest / rel)
    (dest / "shared").mkdir()
    return dest


def test_every_unit_has_an_env_in_the_default_list(repo_root, tmp_path):
    root = _copy_repo(repo_root, tmp_path / "repo")
    proc = _tox(root, "l", "--no-desc")
    assert proc.returncode == 0, proc.stderr
    default = proc.stdout.split("additional environments")[0].split()
    assert {"lint", "module-hello", "module-typed", "module-streaming", "module-wordcount"} <= set(default)


def test_a_testenv_section_overrides_generated_settings(repo_root, tmp_path):
    root = _copy_repo(repo_root, tmp_path / "repo")
    with (root / "tox.ini").open("a") as fh:
        fh.write('\n[testenv:module-hello]\ndescription = overridden\ncommands = python -c "print(42)"\n')
    proc = _tox(root, "config", "-e", "module-hello,module-typed", "-k", "commands", "description", "labels")
    assert proc.returncode == 0, proc.stderr
    hello, typed = proc.stdout.split("[testenv:module-typed]")
    assert "description = overridden" in hello and "print(42)" in hello
    assert "labels =\n  all\n  modules\n" in hello  # what the section does not set still comes from the plugin
    assert "pytest modules/typed/tests" in typed and "cmfleet check typed" in typed


def test_every_module_has_an_artifact_env_that_builds_installs_and_tests_it(repo_root, tmp_path):
    root = _copy_repo(repo_root, tmp_path / "repo")
    proc = _tox(root, "l", "--no-desc")
    assert proc.returncode == 0, proc.stderr
    default = proc.stdout.split("additional environments")[0].split()
    modules = sorted(p.name for p in (root / "modules").iterdir() if (p / "app.py").exists())
    assert {f"artifact-{m}" for m in modules} <= set(default)
    proc = _tox(root, "config", "-e", "artifact-hello", "-k", "commands", "labels", "deps")
    assert proc.returncode == 0, proc.stderr
    assert "labels =\n  all\n  artifacts\n" in proc.stdout  # `artifacts` selects the artifact envs, `all` every env
    commands = proc.stdout.split("commands =")[1].split("labels =")[0].split("\n")
    assert [c.strip() for c in commands if c.strip()] == [
        "python -m cmfleet.artifacts.installed prepare hello",
        "python -m cmfleet.artifacts.installed schemas hello",
        "pytest modules/hello/tests --cm-target artifact",
    ]


def test_label_all_selects_every_env(repo_root, tmp_path):
    root = _copy_repo(repo_root, tmp_path / "repo")
    listed = _tox(root, "l", "--no-desc")
    assert listed.returncode == 0, listed.stderr
    every = set(listed.stdout.split("additional environments")[0].split()) - {"default", "environments:"}
    proc = _tox(root, "config", "-m", "all", "-k", "labels")
    assert proc.returncode == 0, proc.stderr
    selected = set(re.findall(r"^\[testenv:([^\]]+)\]", proc.stdout, re.M))
    assert {"lint", "module-hello", "module-typed"} <= selected and selected == every


def test_the_toolkits_fast_tests_get_an_env_per_other_python(repo_root, tmp_path, monkeypatch):
    from cmfleet.discovery import Repository
    from cmfleet.tox_plugin import OTHER_PYTHONS, python_for, toolkit_python_envs

    for patch in ("2", "13", "9"):  # pyenv's layout; the newest patch release is chosen
        python = tmp_path / "versions" / f"3.10.{patch}" / "bin" / "python3.10"
        python.parent.mkdir(parents=True)
        python.touch()
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert python_for("3.10") == str(tmp_path / "versions/3.10.13/bin/python3.10")
    assert python_for("3.13") == "python3.13"  # not in pyenv: tox-uv looks on PATH (or uv downloads it)

    envs = toolkit_python_envs(Repository.load(repo_root), ("-x",))
    assert OTHER_PYTHONS == ("3.10", "3.13") and list(envs) == ["cmfleet-python3.10", "cmfleet-python3.13"]
    assert [c.args for c in envs["cmfleet-python3.10"]["commands"]] == [
        ["pytest", "shared/cmfleet/tests", "-m", "not slow", "-x"]
    ]
    assert envs["cmfleet-python3.10"]["labels"] == ["toolkit", "all"]
    # every shared library from its folder, cmcore (the toolkit's own dependency, on no index) first
    deps = envs["cmfleet-python3.10"]["deps"]
    assert (
        deps[0] == f"-e {repo_root / 'shared/cmcore'}"
        and deps[-1] == f"-e {repo_root / 'shared/cmfleet'}[runtime,test,build]"
    )
    assert f"-e {repo_root / 'shared/textkit'}" in deps and f"-e {repo_root / 'shared/cmhealth'}" in deps
