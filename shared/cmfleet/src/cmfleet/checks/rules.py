"""Built-in plugin: the rules of ``cmfleet check`` and the ``check`` command.

Each rule is a function ``(unit, ctx) -> Iterable[Finding]`` living in the module of its topic; this file only
registers them through the same ``cmfleet_register_checks`` hook that plugins use.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cmfleet.hookspecs import hookimpl

if TYPE_CHECKING:
    from cmfleet.checks.base import CheckRegistrar


@hookimpl
def cmfleet_register_checks(register: CheckRegistrar) -> None:
    """The built-in rules."""
    from cmfleet.checks import artifact, endpoints, graph, layout, live, lockfile, packaging, versioning

    register("unit-graph", graph.unit_graph, applies_to="any")
    register("app-location", layout.app_at_fixed_place, applies_to="module")
    register("no-relative-imports", layout.no_relative_imports, applies_to="any")
    register("endpoint-signature", endpoints.endpoint_signature, applies_to="module")
    register("sdk-schema", live.sdk_schema, applies_to="module")
    register("serializable-return", endpoints.serializable_return, applies_to="module")
    register("duplicate-functions", endpoints.duplicate_functions, applies_to="module")
    register("shared-deps-declared", packaging.shared_deps_declared, applies_to="any")
    register("recipe", packaging.recipe_valid, applies_to="any")
    register("recipe-requirements", packaging.recipe_requirements, applies_to="any")
    register("shared-layout", packaging.shared_layout, applies_to="shared")
    register("requirements-lock", lockfile.lock_current, applies_to="module")
    register("artifact-imports", artifact.imports_in_artifact, applies_to="module")
    register("third-party-declared", artifact.third_party_declared, applies_to="module")
    register("version-config", versioning.version_config, applies_to="any")


@click.command("check")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--rules", "list_rules", is_flag=True, help="List the rules (built-in and from plugins) and exit.")
def check_command(names: tuple[str, ...], as_json: bool, list_rules: bool) -> None:
    """Check units (default: all) and print each finding with file:line and the fix.

    Exit 0 when clean, 1 when there are findings, 2 for an unknown unit name.

    Example: cmfleet check hello typed
    """
    from cmfleet.checks.base import collect_rules, run_checks
    from cmfleet.cli import EXIT_FAILED, EXIT_USAGE, emit_json, fail, load_repository
    from cmfleet.discovery import UnknownUnitError

    if list_rules:
        rules = collect_rules()
        if as_json:
            emit_json(
                [
                    {"id": r.id, "applies_to": r.applies_to, "plugin": r.plugin, "description": r.description}
                    for r in rules.values()
                ]
            )
        else:
            for r in rules.values():
                click.echo(f"{r.id:22} {r.applies_to:7} {r.description}")
        return
    repo = load_repository(validate=False)  # graph problems are findings here
    try:
        units = [repo.get(n) for n in names] if names else list(repo.units.values())
    except UnknownUnitError as exc:
        fail(str(exc), EXIT_USAGE)
    from cmfleet.progress import steps

    with steps(f"checking {len(units)} unit(s)") as step:  # the first unit's step includes every module's probe
        findings = run_checks(repo, units, on_unit=lambda unit: step(unit.name))
    if as_json:
        emit_json([f.as_json(repo.root) for f in findings])
    else:
        for f in findings:
            click.echo(f"{f.location(repo.root)}: [{f.rule}] {f.message}\n    fix: {f.fix}")
        click.echo(f"{len(findings)} problem(s) in {len(units)} unit(s)" if findings else f"{len(units)} unit(s) OK")
    if findings:
        sys.exit(EXIT_FAILED)


@hookimpl
def cmfleet_register_commands(cli: click.Group) -> None:
    """Register ``cmfleet check``."""
    cli.add_command(check_command)
