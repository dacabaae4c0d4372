"""The v1 recipe (``recipe.yaml``, the format of rattler-build and of conda-forge's newer feedstocks) beside each
rendered ``meta.yaml`` of a build.

It is made from the rendered ``meta.yaml`` (so the pins of ``conda_build_config.yaml`` and the version being built
are already in), not from a second template a team would keep in step by hand. What changes on the way: the
name and version go to ``context`` and are referred to as ``${{ name }}`` and ``${{ version }}``, ``test`` becomes
``tests``, ``about``'s keys take their v1 names, and a bare version in a requirement (``python 3.11``, which
conda-build reads as "3.11 or any 3.11.x") is written as the ``3.11.*`` that v1 match specs require.
A key it does not know how to carry over is a problem, not silently dropped.

``rattler-build``'s own renderer (py-rattler-build, the ``build`` extra) then reads the result for the image's
Python: a recipe it cannot render, or whose rendered run requirements differ from ``meta.yaml``'s, fails the build.
"""

from __future__ import annotations

import re
from typing import Any

_OPERATOR = re.compile(r"^(==|!=|>=|<=|>|<|~=|=)")
_ABOUT = {
    "home": "homepage",
    "license": "license",
    "license_file": "license_file",
    "license_family": None,  # v1 has no such key: dropped on purpose
    "summary": "summary",
    "description": "description",
    "doc_url": "documentation",
    "dev_url": "repository",
}
_SOURCE_KEYS = {"path", "url", "sha256", "md5", "patches", "folder"}
_BUILD_KEYS = {"number", "noarch", "script", "string", "skip"}


def v1_spec(spec: str) -> str:
    """A conda match spec as v1 reads it: ``python 3.11`` becomes ``python 3.11.*``; others are unchanged."""
    parts = str(spec).split()
    if len(parts) != 2:
        return str(spec)
    name, version = parts
    if _OPERATOR.match(version) or any(c in version for c in "*,|"):
        return str(spec)
    return f"{name} {version}.*"


def v1_recipe(meta: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The v1 recipe of a rendered ``meta.yaml`` (parsed), and what could not be carried over (one line each,
    naming the key)."""
    problems: list[str] = []
    unknown = sorted(set(meta) - {"package", "source", "build", "requirements", "test", "about", "extra"})
    problems += [f"{key}: no v1 equivalent known to cmfleet" for key in unknown]
    package = meta.get("package") or {}
    recipe: dict[str, Any] = {
        "schema_version": 1,
        "context": {"name": str(package.get("name", "")), "version": str(package.get("version", ""))},
        "package": {"name": "${{ name }}", "version": "${{ version }}"},
    }
    source = meta.get("source")
    if source:
        sources = source if isinstance(source, list) else [source]
        for i, item in enumerate(sources):
            problems += [f"source.{key}: not carried over" for key in sorted(set(item) - _SOURCE_KEYS)]
            sources[i] = {k: v for k, v in item.items() if k in _SOURCE_KEYS}
        recipe["source"] = sources if isinstance(source, list) else sources[0]
    build = dict(meta.get("build") or {})
    problems += [f"build.{key}: not carried over" for key in sorted(set(build) - _BUILD_KEYS - {"entry_points"})]
    v1_build = {k: build[k] for k in ("number", "string", "skip", "noarch", "script") if k in build}
    if build.get("entry_points"):
        v1_build["python"] = {"entry_points": list(build["entry_points"])}
    if v1_build:
        recipe["build"] = v1_build
    requirements = meta.get("requirements") or {}
    problems += [
        f"requirements.{key}: not carried over" for key in sorted(set(requirements) - {"build", "host", "run"})
    ]
    v1_requirements = {
        section: [v1_spec(spec) for spec in requirements[section]]
        for section in ("build", "host", "run")
        if requirements.get(section)
    }
    if v1_requirements:
        recipe["requirements"] = v1_requirements
    tests, test_problems = _tests(meta.get("test") or {})
    problems += test_problems
    if tests:
        recipe["tests"] = tests
    about = meta.get("about") or {}
    problems += [f"about.{key}: not carried over" for key in sorted(set(about) - set(_ABOUT))]
    v1_about = {_ABOUT[k]: v for k, v in about.items() if _ABOUT.get(k)}
    if v1_about:
        recipe["about"] = v1_about
    if meta.get("extra"):
        recipe["extra"] = meta["extra"]
    return recipe, problems


def _tests(test: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    problems = [f"test.{key}: not carried over" for key in sorted(set(test) - {"imports", "commands", "requires"})]
    tests: list[dict[str, Any]] = []
    if test.get("imports"):
        tests.append({"python": {"imports": list(test["imports"]), "pip_check": False}})
    if test.get("commands"):
        script: dict[str, Any] = {"script": list(test["commands"])}
        if test.get("requires"):
            script["requirements"] = {"run": [v1_spec(s) for s in test["requires"]]}
        tests.append(script)
    return tests, problems


def dump(recipe: dict[str, Any], header: str) -> str:
    """The recipe as YAML text, after a comment ``header``."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096  # one line per script, as written
    out = io.StringIO()
    yaml.dump(recipe, out)
    return header + out.getvalue()


def render_problems(text: str, python: str, expected_run: list[str], where: str) -> list[str] | None:
    """Render ``text`` with rattler-build for CPython ``python``: problems naming ``where``, or None when
    py-rattler-build is not installed (nothing could be checked)."""
    try:
        import rattler_build
    except ImportError:
        return None
    try:
        recipe = rattler_build.Stage0Recipe.from_yaml(text)
        variants = recipe.render(rattler_build.VariantConfig({"python": [python]}), rattler_build.RenderConfig())
    except Exception as exc:  # noqa: BLE001 - rattler-build raises its own error types; each names the problem
        return [f"{where}: rattler-build cannot render it: {' '.join(str(exc).split())}"]
    problems = []
    for variant in variants:
        run = [str(r) for r in (variant.recipe.to_dict().get("requirements") or {}).get("run") or []]
        if run != expected_run:
            problems.append(f"{where}: rattler-build renders requirements.run as {run}, expected {expected_run}")
    return problems
