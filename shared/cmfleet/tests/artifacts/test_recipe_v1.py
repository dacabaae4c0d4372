"""The v1 recipe.yaml `cmfleet build` writes beside each rendered meta.yaml, rendered by rattler-build's own
renderer (py-rattler-build, a real one: the cmfleet tox env installs the build extra)."""

from __future__ import annotations

import sys
from pathlib import Path

import rattler_build
from buildrepo import leftovers, run_build
from ruamel.yaml import YAML

from cmfleet.artifacts.recipe_v1 import dump, render_problems, v1_recipe, v1_spec

META = {
    "package": {"name": "report", "version": "1.4.0"},
    "source": {"path": "../.."},
    "build": {"noarch": "python", "number": 0, "script": "python -m pip install . --no-deps -vv",
              "entry_points": ["report = report.cli:main"]},
    "requirements": {"host": ["python 3.11", "pip"], "run": ["python 3.11", "textkit >=1.2", "numpy 2.1.*"]},
    "test": {"imports": ["report"], "commands": ["report --help"], "requires": ["pytest 8"]},
    "about": {"home": "https://example.com", "license": "Apache-2.0", "license_family": "APACHE", "summary": "s"},
}  # fmt: skip


def test_bare_versions_become_v1_match_specs_and_the_rest_is_kept():
    assert v1_spec("python 3.11") == "python 3.11.*"
    for kept in ("pip", "textkit >=1.2", "numpy 2.1.*", "a >=1,<2", "b 1.0 py_0", "c ==1.0", "d 1|2"):
        assert v1_spec(kept) == kept


def test_a_rendered_meta_yaml_becomes_a_v1_recipe_that_rattler_build_renders():
    recipe, problems = v1_recipe(META)
    assert problems == []
    assert recipe["context"] == {"name": "report", "version": "1.4.0"}
    assert recipe["package"] == {"name": "${{ name }}", "version": "${{ version }}"}
    assert recipe["build"]["python"] == {"entry_points": ["report = report.cli:main"]}
    assert recipe["tests"] == [
        {"python": {"imports": ["report"], "pip_check": False}},
        {"script": ["report --help"], "requirements": {"run": ["pytest 8.*"]}},
    ]
    assert recipe["about"] == {"homepage": "https://example.com", "license": "Apache-2.0", "summary": "s"}
    text = dump(recipe, "# made here\n")
    assert text.startswith("# made here\nschema_version: 1\n")
    expected = ["python 3.11.*", "textkit >=1.2", "numpy 2.1.*"]
    assert render_problems(text, "3.11", expected, "recipe.yaml") == []
    (variant,) = rattler_build.Stage0Recipe.from_yaml(text).render(
        rattler_build.VariantConfig({"python": ["3.11"]}), rattler_build.RenderConfig()
    )
    rendered = variant.recipe.to_dict()
    assert rendered["package"] == {"name": "report", "version": "1.4.0"}
    assert rendered["build"]["noarch"] == "python"


def test_what_cannot_be_carried_over_or_rendered_is_named():
    meta = {**META, "outputs": [], "build": {**META["build"], "ignore_run_exports": ["x"]}}
    _, problems = v1_recipe(meta)
    assert problems == ["outputs: no v1 equivalent known to cmfleet", "build.ignore_run_exports: not carried over"]
    recipe, _ = v1_recipe({**META, "requirements": {"run": ["numpy >=>1"]}})
    (problem,) = render_problems(dump(recipe, ""), "3.11", ["numpy >=>1"], "recipes/report/recipe.yaml")
    assert problem.startswith("recipes/report/recipe.yaml: rattler-build cannot render it: ")
    assert "unable to parse version spec: >=>1" in problem and "\n" not in problem
    text = dump(v1_recipe(META)[0], "")
    (mismatch,) = render_problems(text, "3.11", ["python 3.11.*"], "r.yaml")
    assert mismatch.startswith("r.yaml: rattler-build renders requirements.run as ['python 3.11.*', 'textkit >=1.2'")


def test_the_build_writes_a_v1_recipe_per_unit_beside_meta_yaml(released):
    out = released / "dist" / "wordcount" / "2.0.0" / "recipes"
    for unit, run in (
        ("wordcount", ["python 3.11.*", "foundry-compute-modules >=0.34", "textkit >=0.0.0"]),
        ("textkit", ["python 3.11.*"]),
    ):
        text = (out / unit / "recipe.yaml").read_text()
        assert text.startswith("# v1 recipe (rattler-build) made by `cmfleet build` from ")
        data = YAML(typ="safe").load(text)
        assert data["schema_version"] == 1 and data["context"]["name"] == unit
        assert sorted(data["requirements"]["run"]) == sorted(run)
        assert render_problems(text, "3.11", data["requirements"]["run"], unit) == []


def test_a_recipe_key_without_a_v1_equivalent_fails_the_build(fresh_repo):
    def edit(root: Path) -> None:
        recipe = root / "modules/hello/conda_recipe/meta.yaml"
        recipe.write_text(recipe.read_text().replace("  number: 0\n", "  number: 0\n  ignore_run_exports:\n    - x\n"))

    repo = fresh_repo(edit=edit)
    proc = run_build(repo, "hello")
    assert proc.returncode == 1
    assert (
        "recipes/hello/recipe.yaml (from modules/hello/conda_recipe/meta.yaml): build.ignore_run_exports: "
        "not carried over" in proc.stderr
    )
    assert leftovers(repo / "dist") == []


def test_without_py_rattler_build_nothing_is_claimed_checked(monkeypatch):
    monkeypatch.setitem(sys.modules, "rattler_build", None)  # as if the build extra were not installed
    assert render_problems(dump(v1_recipe(META)[0], ""), "3.11", [], "r.yaml") is None
