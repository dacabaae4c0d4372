"""Rule about what a module ships: its wheel holds every module-folder file ``app.py`` imports, transitively."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.checks.packaging import line_of
from cmfleet.discovery import DiscoveryError, Unit, normalize, read_toml


def unit_build_system(unit: Unit) -> dict[str, Any]:
    """The ``[build-system]`` table of the unit's pyproject (``{}`` without one)."""
    return read_toml(unit.pyproject).get("build-system", {}) if unit.pyproject.exists() else {}


def imports_in_artifact(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """Every helper file or package app.py imports (transitively) is in the module's wheel."""
    from cmfleet.artifacts.contents import missing_from_wheel, wheel_files

    if not unit.app.exists():
        return  # app-location reports it
    backend = unit_build_system(unit).get("build-backend")
    if backend != "hatchling.build":
        return  # another backend's file selection cannot be read without building; cmfleet build checks its wheel
    try:
        files = wheel_files(unit)
    except DiscoveryError as exc:
        yield Finding(
            unit.pyproject,
            line_of(unit.pyproject, r"^\[tool\.hatch\.build"),
            str(exc).split(": ", 1)[1],
            f'give {unit.rel}/pyproject.toml [tool.hatch.build.targets.wheel] include = ["*"] (as cmfleet new does)',
        )
        return
    for imp, missing in missing_from_wheel(unit, files):
        listed = ", ".join(f"{unit.rel}/{f}" for f in missing)
        yield Finding(
            imp.ref.file,
            imp.ref.line,
            f"imports {imp.ref.module!r} from {listed}, which the module's wheel (what the image installs) "
            "does not hold",
            f"remove what leaves it out of [tool.hatch.build.targets.wheel] in {unit.rel}/pyproject.toml "
            '(include = ["*"] takes the whole module folder) or from .gitignore',
        )


def _declared_closure(unit: Unit, ctx: CheckContext) -> set[str]:
    """Normalised names of the distributions the module's image gets from its declarations: its own and its
    shared libraries' dependencies, and what those require in turn (as installed here)."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    todo = [r for owner in [unit, *ctx.repo.closure(unit)] for r in owner.dependencies]
    todo += [lib.distribution for lib in ctx.repo.closure(unit)]
    seen: set[str] = set()
    while todo:
        req = Requirement(todo.pop())
        name = normalize(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        known: dict[str, list[str]] = ctx.shared.setdefault("requires", {})  # each distribution's, read once
        if name not in known:
            try:
                known[name] = requires(req.name) or []
            except PackageNotFoundError:
                known[name] = []
        todo += known[name]
    return seen


def third_party_declared(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """Every third-party package the module imports comes from a distribution it declares (directly, through a
    shared library, or as their requirement); read from what this environment has installed."""
    import sys
    from importlib.metadata import packages_distributions

    # one scan of every installed distribution's file list, not one per unit (it costs ~0.1 s)
    providers = ctx.shared.get("packages_distributions")
    if providers is None:
        providers = ctx.shared["packages_distributions"] = packages_distributions()
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    allowed: set[str] | None = None
    for ref in unit.imports:
        top = ref.top
        if ref.level or top in stdlib or top in unit.local_names or top in ctx.repo.by_import:
            continue
        dists = providers.get(top)
        if not dists:
            continue  # not installed here: the sdk-schema probe and the build name it
        allowed = _declared_closure(unit, ctx) if allowed is None else allowed
        if any(normalize(d) in allowed for d in dists):
            continue
        yield Finding(
            ref.file,
            ref.line,
            f"imports {top!r} (from the distribution {dists[0]}), which {unit.rel}/pyproject.toml does not "
            "declare; the image would not install it",
            f'add "{dists[0]}" to [project].dependencies in {unit.rel}/pyproject.toml, then run '
            f"`cmfleet sync-recipes {unit.name}` and `cmfleet lock {unit.name}`",
        )
