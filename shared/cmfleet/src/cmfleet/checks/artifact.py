"""Rule about what a module ships: its wheel holds every module-folder file ``app.py`` imports, transitively."""

from __future__ import annotations

from collections.abc import Iterator

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.checks.packaging import line_of
from cmfleet.discovery import DiscoveryError, Unit, read_toml


def unit_build_system(unit: Unit) -> dict:
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
        files = ", ".join(f"{unit.rel}/{f}" for f in missing)
        yield Finding(
            imp.ref.file,
            imp.ref.line,
            f"imports {imp.ref.module!r} from {files}, which the module's wheel (what the image installs) "
            "does not hold",
            f"remove what leaves it out of [tool.hatch.build.targets.wheel] in {unit.rel}/pyproject.toml "
            '(include = ["*"] takes the whole module folder) or from .gitignore',
        )
