"""Rules about where code lives and how it is imported: app.py's fixed place, absolute imports only."""

from __future__ import annotations

from collections.abc import Iterator

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.discovery import ImportRef, Unit


def app_at_fixed_place(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """A module's entry point is modules/<name>/app.py."""
    if not unit.app.exists():
        yield Finding(
            unit.path,
            1,
            f"module {unit.name!r} has no app.py",
            f"create {unit.rel}/app.py with the module's @function endpoints (cmfleet new scaffolds one)",
        )


def absolute_name(unit: Unit, ref: ImportRef) -> str:
    """What a relative import resolves to, written absolutely (helper files beside app.py are top level)."""
    base = unit.path / "src" if not unit.is_module and (unit.path / "src").is_dir() else unit.path
    try:
        package = list(ref.file.parent.relative_to(base).parts)
    except ValueError:
        package = []
    if ref.level > 1:
        package = package[: max(0, len(package) - (ref.level - 1))]
    parts = [*package, *[p for p in ref.module.lstrip(".").split(".") if p]]
    return ".".join(parts) or "<helper module>"


def no_relative_imports(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """Foundry runs app.py as a top-level script: helper files must be imported absolutely."""
    for ref in unit.imports:
        if ref.level:
            absolute = absolute_name(unit, ref)
            why = (
                "app.py runs as a top-level script, not as a package, so a relative import fails in Foundry"
                if unit.is_module
                else "shared libraries use absolute imports only"
            )
            yield Finding(
                ref.file,
                ref.line,
                f"relative import 'from {ref.module} import ...': {why}",
                f"import it absolutely: 'from {absolute} import ...'",
            )
