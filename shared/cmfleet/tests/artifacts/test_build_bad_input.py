"""Bad input: unknown names, untagged modules, failing checks, relative and undeclared imports, recipes that
disagree with pyproject. Each gives a clear message, its exit code, and nothing in the output folder."""

from __future__ import annotations

from pathlib import Path

from buildrepo import RELEASE_TAGS, RUNTIME_TAG, git, leftovers, manifest, run_build


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_unknown_name_exit_2_nothing_written(fresh_repo):
    repo = fresh_repo()
    proc = run_build(repo, "hello", "nope")
    assert proc.returncode == 2
    assert "unknown module 'nope'" in proc.stderr and "hello" in proc.stderr
    assert leftovers(repo / "dist") == []  # hello is not built either: names are resolved first


def test_untagged_module_needs_dev_then_builds_marked_dev(fresh_repo):
    repo = fresh_repo(tags=("hello/v1.0.0",))
    proc = run_build(repo, "wordcount")
    assert proc.returncode == 2
    assert "wordcount: not a release build" in proc.stderr
    assert "textkit has no release tag" in proc.stderr and "--dev" in proc.stderr
    assert "cmcore has no release tag" in proc.stderr  # the image's entrypoint goes into the image too
    assert "cmfleet has no release tag" not in proc.stderr  # the toolkit does not
    assert leftovers(repo / "dist") == []
    proc = run_build(repo, "wordcount", "--dev")
    assert proc.returncode == 0, proc.stderr
    [built] = (repo / "dist" / "wordcount").iterdir()
    assert ".dev" in built.name
    data = manifest(built)
    assert data["dev"] is True and data["module"]["version"] == built.name
    assert ".dev" in data["shared"]["textkit"] and ".dev" in data["shared"]["cmcore"]
    assert "cmfleet" not in data["shared"]
    image = (built / "IMAGE").read_text().strip()
    assert image.startswith("wordcount:") and "+" not in image and image != "wordcount:latest"
    assert "(dev)" in proc.stdout
    # a dev build carries its identity: the commit, and a dirty mark for uncommitted changes
    head = git(repo, "rev-parse", "--short=7", "HEAD").strip()
    assert built.name.endswith(f"+g{head}") and data["commit"].startswith(head) and data["dirty"] is False
    assert image.endswith(f"-g{head}")
    app = repo / "modules" / "wordcount" / "app.py"
    app.write_text(app.read_text() + "# local edit\n")
    proc = run_build(repo, "wordcount", "--dev")
    assert proc.returncode == 0, proc.stderr
    dirty = next(p for p in (repo / "dist" / "wordcount").iterdir() if p.name != built.name)
    assert dirty.name == f"{built.name}.dirty" and manifest(dirty)["dirty"] is True
    assert (dirty / "IMAGE").read_text().strip() == f"{image}.dirty"


def test_release_build_refuses_while_cmcore_is_untagged_and_names_the_fix(fresh_repo):
    # The image carries cmcore's wheel (its entrypoint), versioned by cmcore's own tags like any unit: a
    # tagged module alone does not make a release build.
    repo = fresh_repo(tags=tuple(t for t in RELEASE_TAGS if t != RUNTIME_TAG))
    proc = run_build(repo, "hello")
    assert proc.returncode == 2
    assert "hello: not a release build" in proc.stderr
    assert "cmcore has no release tag (create one with `cmfleet release` or `git tag cmcore/vX.Y.Z`)" in proc.stderr
    assert "hello has no release tag" not in proc.stderr
    assert leftovers(repo / "dist") == []
    git(repo, "tag", RUNTIME_TAG)
    proc = run_build(repo, "--check", "hello")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["hello: OK"]


def test_static_version_unit_builds_as_release_without_a_tag(fresh_repo):
    # Other repositories may pin a unit's version in pyproject.toml: it builds as that version, untagged.
    def edit(root: Path) -> None:
        pyproject = root / "shared/textkit/pyproject.toml"
        text = pyproject.read_text()
        start, end = text.index("[tool.hatch.version]"), text.index("[tool.hatch.build.targets.wheel]")
        _replace(pyproject, text[start:end], "")
        _replace(pyproject, 'dynamic = ["version"]', 'version = "1.5.0"')

    repo = fresh_repo(tags=tuple(t for t in RELEASE_TAGS if not t.startswith("textkit/")), edit=edit)
    proc = run_build(repo, "wordcount")
    assert proc.returncode == 0, proc.stderr
    out = repo / "dist" / "wordcount" / "2.0.0"
    assert (out / "wheels" / "textkit-1.5.0-py3-none-any.whl").exists()
    data = manifest(out)
    assert data["dev"] is False and data["shared"]["textkit"] == "1.5.0"
    assert "textkit" not in data["tags"]  # no tag was read for it
    assert "version: 1.5.0" in (out / "recipes" / "textkit" / "meta.yaml").read_text()


def test_relative_import_fails_naming_file_and_line(fresh_repo):
    def edit(root: Path) -> None:
        _replace(root / "modules/hello/app.py", "from greeting import greet", "from .greeting import greet")

    repo = fresh_repo(edit=edit)
    proc = run_build(repo, "hello")
    assert proc.returncode == 1
    assert "modules/hello/app.py:5:" in proc.stderr and "from .greeting import" in proc.stderr
    assert leftovers(repo / "dist") == []


def test_undeclared_shared_library_fails_naming_the_import(fresh_repo):
    def edit(root: Path) -> None:
        _replace(root / "modules/hello/greeting.py", '"""A helper', 'import textkit\n"""A helper')

    repo = fresh_repo(edit=edit)
    proc = run_build(repo, "hello")
    assert proc.returncode == 1
    assert "modules/hello/greeting.py:1:" in proc.stderr and "textkit" in proc.stderr
    assert "pyproject.toml" in proc.stderr
    assert leftovers(repo / "dist") == []
    check = run_build(repo, "--check", "hello")
    assert check.returncode == 1 and "modules/hello/greeting.py:1:" in check.stdout


def test_recipe_run_requirements_must_equal_declared_dependencies(fresh_repo):
    def edit(root: Path) -> None:
        # the recipe-requirements check rule (run by the build first) compares the whole list
        recipe = root / "modules/wordcount/conda_recipe/meta.yaml"
        _replace(recipe, "    - textkit {{ textkit }}\n", "    - textkit {{ textkit }}\n    - numpy\n")

    repo = fresh_repo(edit=edit)
    proc = run_build(repo, "wordcount")
    assert proc.returncode == 1
    message = proc.stderr
    assert "modules/wordcount/conda_recipe/meta.yaml:" in message
    assert "requirements.run must equal the declared dependencies: extra numpy" in message
    assert leftovers(repo / "dist") == []  # the unit wheels were built in a temp folder, then removed


def test_pin_that_excludes_the_built_version_is_reported(fresh_repo):
    def edit(root: Path) -> None:
        _replace(root / "conda_recipes/conda_build_config.yaml", 'textkit:\n  - ">=0.0.0"', 'textkit:\n  - ">=2.0"')

    repo = fresh_repo(edit=edit)
    proc = run_build(repo, "--check", "wordcount")
    assert proc.returncode == 1
    assert "excludes the textkit 1.2.0 being built" in proc.stdout


def test_an_undeclared_import_fails_before_anything_is_built(fresh_repo):
    def edit(root: Path) -> None:
        # pytest is installed in the dev env (so the live check rules pass) but hello does not declare it: the
        # third-party-declared rule names it before any wheel is built or downloaded
        _replace(root / "modules/hello/greeting.py", '"""A helper', 'import pytest\n"""A helper')

    repo = fresh_repo(edit=edit)
    proc = run_build(repo, "hello")
    assert proc.returncode == 1
    assert "modules/hello/greeting.py:1: [third-party-declared] imports 'pytest'" in proc.stderr
    assert "hello: cannot build (fix these first)" in proc.stderr  # the static stage, before the first wheel
    assert leftovers(repo / "dist") == []


def test_affected_and_names_are_exclusive(fresh_repo):
    repo = fresh_repo()
    proc = run_build(repo, "hello", "--affected", "--since", "HEAD")
    assert proc.returncode == 2 and "not both" in proc.stderr
    proc = run_build(repo, "--affected")
    assert proc.returncode == 2 and "--since" in proc.stderr
    proc = run_build(repo)
    assert proc.returncode == 2 and "name at least one module" in proc.stderr


def test_affected_since_selects_dependents_of_a_changed_library(fresh_repo):
    repo = fresh_repo()
    words = repo / "shared/textkit/src/textkit/words.py"
    words.write_text(words.read_text() + "\n# a change after the release\n")
    git(repo, "commit", "-q", "-am", "textkit: change")
    proc = run_build(repo, "--affected", "--since", "HEAD")
    assert proc.returncode == 0 and "no module affected since HEAD" in proc.stdout
    proc = run_build(repo, "--check", "--affected", "--since", "HEAD~1")
    assert proc.returncode == 2  # wordcount and textkit are past their tags now
    assert "wordcount: not a release build" in proc.stderr
    changed = "shared/textkit/src/textkit/words.py changed"
    assert f"wordcount: changed since wordcount/v2.0.0: its shared library textkit: {changed}" in proc.stderr
    assert f"textkit: changed since textkit/v1.2.0: {changed}" in proc.stderr
    proc = run_build(repo, "--check", "--dev", "--affected", "--since", "HEAD~1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["wordcount: OK"]  # hello does not use textkit
