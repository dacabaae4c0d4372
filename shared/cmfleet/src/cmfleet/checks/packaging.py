"""Rules about how a unit is packaged: declared shared dependencies, conda recipes, shared-library layout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.discovery import SDK_DISTRIBUTION, Unit, normalize, requirement_name
from cmfleet.recipes import BUILD_CONFIG, RecipeError, RenderedRecipe, load_build_config, render_recipe


def rendered(unit: Unit, ctx: CheckContext) -> RenderedRecipe | RecipeError:
    """The unit's rendered recipe, or the error rendering it (read once)."""
    cache: dict[Path, RenderedRecipe | RecipeError] = ctx.shared.setdefault("recipes", {})
    if unit.recipe not in cache:
        try:
            cache[unit.recipe] = render_recipe(unit.recipe, ctx.repo.root)
        except RecipeError as exc:
            cache[unit.recipe] = exc
    return cache[unit.recipe]


def line_of(path: Path, pattern: str, after: str | None = None) -> int:
    """The first line of ``path`` matching ``pattern`` (after the first line matching ``after``), else 1."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 1
    start = 0
    if after is not None:
        start = next((i for i, text in enumerate(lines) if re.search(after, text)), 0)
    for i in range(start, len(lines)):
        if re.search(pattern, lines[i]):
            return i + 1
    return 1


def _run_line(recipe: Path) -> int:
    return line_of(recipe, r"^\s*run:\s*(#.*)?$", after=r"^requirements:")


def _in_recipe(recipe: RenderedRecipe, lib: Unit) -> bool:
    names = {normalize(n) for n in recipe.requirement_names("run")}
    return normalize(lib.name) in names or lib.distribution in names


def shared_deps_declared(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """Imported shared libs are declared in pyproject and in the recipe's run requirements."""
    repo = ctx.repo
    declared = {requirement_name(r) for r in unit.dependencies}
    rendering = rendered(unit, ctx)
    recipe = rendering if isinstance(rendering, RenderedRecipe) else None  # a broken recipe is the recipe rule's job
    recipe_rel = unit.recipe.relative_to(repo.root).as_posix()
    missing_in_recipe: dict[str, Unit] = {}
    for lib, ref in repo.imported_shared(unit):
        if lib.distribution not in declared:
            yield Finding(
                ref.file,
                ref.line,
                f"imports the shared library {lib.name!r} but {unit.rel}/pyproject.toml does not declare it",
                f'add "{lib.distribution}" to [project].dependencies in {unit.rel}/pyproject.toml',
            )
        if recipe is not None and not _in_recipe(recipe, lib):
            missing_in_recipe[lib.name] = lib
    if recipe is not None:
        for lib in repo.shared_deps(unit):
            if not _in_recipe(recipe, lib):
                missing_in_recipe[lib.name] = lib
    for name in sorted(missing_in_recipe):
        yield Finding(
            unit.recipe,
            _run_line(unit.recipe),
            f"{unit.name!r} depends on the shared library {name!r} but its recipe's run requirements lack it",
            f"add '- {name} {{{{ {name} }}}}' under requirements: run: in {recipe_rel}",
        )


def recipe_valid(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """The conda recipe renders with the pins, parses, names the unit, and (modules) requires the SDK."""
    rel = unit.recipe.relative_to(ctx.repo.root).as_posix()
    if not unit.recipe.exists():
        if unit.is_module:  # a shared library's missing recipe is reported by shared-layout
            yield Finding(
                unit.path,
                1,
                f"module {unit.name!r} has no conda recipe ({rel})",
                f"create {rel} (copy one from another module, or see what 'cmfleet new --dry-run' writes)",
            )
        return
    recipe = rendered(unit, ctx)
    if isinstance(recipe, RecipeError):
        yield Finding(
            recipe.file, recipe.line, f"the recipe does not render: {recipe.reason}", "fix the recipe at this line"
        )
        return
    package = recipe.data.get("package") or {}
    name = str(package.get("name", "")) if isinstance(package, dict) else ""
    if normalize(name) not in (normalize(unit.name), unit.distribution):
        yield Finding(
            unit.recipe,
            line_of(unit.recipe, r"^\s+name:", after=r"^package:"),
            f"the recipe's package name {name!r} does not match the unit {unit.name!r}",
            f"set package: name: to {unit.name!r} (the set name line at the top of {rel})",
        )
    if unit.is_module and SDK_DISTRIBUTION not in {normalize(n) for n in recipe.requirement_names("run")}:
        yield Finding(
            unit.recipe,
            _run_line(unit.recipe),
            f"the recipe's run requirements lack {SDK_DISTRIBUTION} (the SDK every module runs on)",
            f"add '- {SDK_DISTRIBUTION} {{{{ foundry_compute_modules }}}}' under requirements: run: in {rel}",
        )


def shared_layout(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """A shared lib has src/<name>/__init__.py, conda_recipes/<name>/meta.yaml and a pin in conda_build_config."""
    root = ctx.repo.root
    package = unit.path / "src" / unit.name / "__init__.py"
    if not package.exists():
        yield Finding(
            unit.pyproject if unit.pyproject.exists() else unit.path,
            1,
            f"shared library {unit.name!r} has no importable package {unit.rel}/src/{unit.name}/",
            f"create {unit.rel}/src/{unit.name}/__init__.py: modules import it absolutely as 'import {unit.name}'",
        )
    if not unit.recipe.exists():
        rel = unit.recipe.relative_to(root).as_posix()
        yield Finding(
            unit.pyproject if unit.pyproject.exists() else unit.path,
            1,
            f"shared library {unit.name!r} has no conda recipe {rel}",
            f"create {rel} (copy another library's recipe and change the name)",
        )
    config_path = root / BUILD_CONFIG
    try:
        pins = load_build_config(root)
    except RecipeError as exc:
        yield Finding(exc.file, exc.line, exc.reason, f"fix the YAML of {BUILD_CONFIG.as_posix()}")
        return
    if unit.name not in pins:
        yield Finding(
            config_path,
            1,
            f"{BUILD_CONFIG.as_posix()} has no pin for the shared library {unit.name!r}",
            f"add '{unit.name}:' with a list value such as '  - \">=0.0.0\"' to {BUILD_CONFIG.as_posix()} "
            "(recipes use it as {{ " + unit.name + " }})",
        )


def recipe_requirements(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """The recipe's run requirements equal what pyproject.toml declares (names through the conda-names mapping),
    as `cmfleet build` demands: so `release` never tags what `build` refuses."""
    from cmfleet.artifacts.recipe import image_python, run_requirement_drift

    recipe = rendered(unit, ctx) if unit.recipe.exists() else None
    if not isinstance(recipe, RenderedRecipe):
        return  # a missing or broken recipe is the recipe rule's finding
    drift = run_requirement_drift(ctx.repo, unit, recipe, image_python(ctx.repo))
    if drift:
        rel = unit.recipe.relative_to(ctx.repo.root).as_posix()
        yield Finding(
            unit.recipe,
            _run_line(unit.recipe),
            drift,
            f"run `cmfleet sync-recipes {unit.name}` (writes {rel}'s run list from {unit.rel}/pyproject.toml)",
        )
