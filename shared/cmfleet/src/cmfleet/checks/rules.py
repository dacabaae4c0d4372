"""Built-in plugin: the rules of ``cmfleet check`` and the ``check`` command."""

from __future__ import annotations

import sys

import click

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.discovery import Unit
from cmfleet.hookspecs import hookimpl


def app_at_fixed_place(unit: Unit, ctx: CheckContext):
    """A module's entry point is modules/<name>/app.py."""
    if not unit.app.exists():
        yield Finding(
            unit.path,
            1,
            f"module {unit.name!r} has no app.py",
            f"create {unit.rel}/app.py with the module's @function endpoints (cmfleet new scaffolds one)",
        )


def no_relative_imports(unit: Unit, ctx: CheckContext):
    """Foundry imports app.py as a script: helper files must be imported absolutely."""
    for ref in unit.imports:
        if ref.level:
            absolute = ref.module.lstrip(".") or "<helper module>"
            yield Finding(
                ref.file,
                ref.line,
                f"relative import 'from {ref.module} import ...'",
                f"import it absolutely: 'from {absolute} import ...' (app.py runs as a top-level script)",
            )


@hookimpl
def cmfleet_register_checks(register):
    """The built-in rules."""
    register("app-location", app_at_fixed_place, applies_to="module")
    register("no-relative-imports", no_relative_imports, applies_to="any")


@click.command("check")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def check_command(names: tuple[str, ...], as_json: bool) -> None:
    """Check units (default: all) and print each finding with file:line and the fix.

    Example: cmfleet check hello typed
    """
    from cmfleet.builtin.commands import emit_json, fail, load_repository
    from cmfleet.checks.base import run_checks
    from cmfleet.cli import EXIT_USAGE
    from cmfleet.discovery import UnknownUnitError

    repo = load_repository()
    try:
        units = [repo.get(n) for n in names] if names else list(repo.units.values())
    except UnknownUnitError as exc:
        fail(str(exc), EXIT_USAGE)
    findings = run_checks(repo, units)
    if as_json:
        emit_json([f.as_json(repo.root) for f in findings])
    else:
        for f in findings:
            click.echo(f"{f.location(repo.root)}: [{f.rule}] {f.message}\n    fix: {f.fix}")
        click.echo(f"{len(findings)} problem(s) in {len(units)} unit(s)" if findings else f"{len(units)} unit(s) OK")
    if findings:
        sys.exit(1)


@hookimpl
def cmfleet_register_commands(cli):
    """Register ``cmfleet check``."""
    cli.add_command(check_command)
