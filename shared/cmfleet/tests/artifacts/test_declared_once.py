"""Dependencies are declared once, in pyproject.toml: a recipe whose run requirements drift from it fails
``cmfleet check`` (rule recipe-requirements, naming the recipe line and the line to add), so ``release`` refuses
before it tags what ``build`` would refuse. PyPI names that conda-forge spells otherwise go through one mapping
(``CONDA_NAMES``, overridable in ``[tool.cmfleet.conda-names]``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from buildrepo import clean_env, git, run_build


def cmfleet(repo: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "cmfleet", *args]
    return subprocess.run(argv, cwd=repo, capture_output=True, text=True, env=clean_env(), timeout=300)


def add_dependency(repo: Path, requirement: str) -> None:
    pyproject = repo / "modules" / "hello" / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(
        text.replace(
            '  "foundry-compute-modules>=0.34",\n', f'  "foundry-compute-modules>=0.34",\n  "{requirement}",\n'
        )
    )
    (repo / "modules" / "hello" / "requirements.lock").unlink(missing_ok=True)  # the lock rule is not under test


def drift_findings(repo: Path) -> list[dict]:
    proc = cmfleet(repo, "check", "hello", "--json")
    return [f for f in json.loads(proc.stdout) if f["rule"] == "recipe-requirements"]


def test_a_dependency_declared_only_in_pyproject_fails_check_release_and_build(fresh_repo):
    repo = fresh_repo()
    add_dependency(repo, "python-dateutil>=2.8")  # after hello/v1.0.0, so a release of hello is really attempted
    git(repo, "commit", "-qam", "feat(hello): use dateutil")
    [finding] = drift_findings(repo)
    recipe = (repo / "modules/hello/conda_recipe/meta.yaml").read_text().splitlines()
    line = int(finding["location"].rsplit(":", 1)[1])
    assert (
        finding["location"].startswith("modules/hello/conda_recipe/meta.yaml:") and recipe[line - 1].strip() == "run:"
    )
    assert "missing python-dateutil" in finding["message"] and "'- python-dateutil >=2.8'" in finding["message"]
    release = cmfleet(repo, "release", "hello")
    assert release.returncode == 1 and "recipe-requirements" in release.stdout + release.stderr
    assert "hello/v1.1.0" not in git(repo, "tag")
    build = run_build(repo, "hello", "--dev")
    assert build.returncode == 1 and "missing python-dateutil" in build.stderr


def test_sync_recipes_writes_the_run_list_from_pyproject(fresh_repo):
    def edit(root: Path) -> None:
        add_dependency(root, "python-dateutil>=2.8")
        add_dependency(root, "textkit")

    repo = fresh_repo(edit=edit)
    recipe = repo / "modules/hello/conda_recipe/meta.yaml"
    before = recipe.read_text()
    stale = cmfleet(repo, "sync-recipes", "--check")
    assert stale.returncode == 1 and "hello: modules/hello/conda_recipe/meta.yaml differs" in stale.stdout
    assert recipe.read_text() == before  # --check writes nothing
    assert cmfleet(repo, "sync-recipes", "hello").returncode == 0
    sdk = "    - foundry-compute-modules {{ foundry_compute_modules }}\n"
    added = "    - textkit {{ textkit }}\n    - python-dateutil >=2.8\n"  # pyproject's order (each added first)
    assert recipe.read_text() == before.replace(sdk, sdk + added)  # only the run list changed
    assert drift_findings(repo) == []
    assert cmfleet(repo, "sync-recipes", "--check").returncode == 0


def declare_and_list(requirement: str, recipe_line: str):
    """An edit declaring ``requirement`` in hello's pyproject and listing ``recipe_line`` in its recipe."""

    def edit(root: Path) -> None:
        add_dependency(root, requirement)
        recipe = root / "modules/hello/conda_recipe/meta.yaml"
        sdk = "    - foundry-compute-modules {{ foundry_compute_modules }}\n"
        recipe.write_text(recipe.read_text().replace(sdk, f"{sdk}    - {recipe_line}\n"))

    return edit


def test_the_line_check_asks_for_makes_check_pass(fresh_repo):
    repo = fresh_repo(edit=declare_and_list("python-dateutil>=2.8", "python-dateutil >=2.8"))
    assert drift_findings(repo) == []


def test_conda_names_map_pypi_names_and_the_root_overrides_them(fresh_repo):
    repo = fresh_repo(edit=declare_and_list("torch>=2", "pytorch >=2"))
    assert drift_findings(repo) == []  # CONDA_NAMES: torch is pytorch on conda-forge
    root = repo / "pyproject.toml"
    root.write_text(root.read_text() + '\n[tool.cmfleet.conda-names]\ntorch = "torch-cpu"\n')
    [finding] = drift_findings(repo)
    assert "missing torch-cpu" in finding["message"] and "extra pytorch" in finding["message"]


def test_an_undeclared_third_party_import_is_named_at_its_line(fresh_repo):
    def edit(root: Path) -> None:
        (root / "modules/hello/render.py").write_text('"""A helper."""\n\nimport jinja2\n')

    repo = fresh_repo(edit=edit)
    proc = cmfleet(repo, "check", "hello", "--json")
    [finding] = [f for f in json.loads(proc.stdout) if f["rule"] == "third-party-declared"]
    assert proc.returncode == 1 and finding["location"] == "modules/hello/render.py:3"
    assert "jinja2" in finding["message"].lower() and "does not declare" in finding["message"]

    add_dependency(repo, "jinja2>=3")
    proc = cmfleet(repo, "check", "hello", "--json")
    assert [f for f in json.loads(proc.stdout) if f["rule"] == "third-party-declared"] == []
