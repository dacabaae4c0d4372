"""Built-in plugin: ``cmfleet new`` (registered through ``cmfleet_register_commands``)."""

from __future__ import annotations

import click

from cmfleet.hookspecs import hookimpl


@click.command("new")
@click.argument("name")
@click.option("--shared", is_flag=True, help="Create a shared library (shared/NAME) instead of a module.")
@click.option("--dry-run", is_flag=True, help="List the files that would be written and write nothing.")
def new_command(name: str, shared: bool, dry_run: bool) -> None:
    """Create the module modules/NAME (or with --shared the library shared/NAME) ready to pass `cmfleet check`.

    A module gets app.py with an example @function, pyproject.toml (version from NAME/v* tags),
    conda_recipe/meta.yaml, tests and CHANGELOG.md. A shared library gets src/NAME/, pyproject.toml, tests,
    conda_recipes/NAME/meta.yaml and a pin in conda_recipes/conda_build_config.yaml. Invalid or taken names
    exit 2 before anything is written.

    Example: cmfleet new invoices && tox -e module-invoices
    """
    from cmfleet.builtin.commands import fail, load_repository
    from cmfleet.cli import EXIT_USAGE
    from cmfleet.scaffold.generate import ScaffoldError, plan_unit, write_plan

    kind = "shared" if shared else "module"
    label = "shared library" if shared else "module"
    repo = load_repository()
    try:
        plan = plan_unit(repo, name, kind)
    except ScaffoldError as exc:
        fail(f"cannot create {label} {name!r}: {exc}", EXIT_USAGE)
    for line in plan.describe():
        click.echo(("would " if dry_run else "") + line)
    if dry_run:
        return
    write_plan(plan)
    env = f"{kind}-{name}"  # the tox env the plugin generates for the new unit
    click.echo(f"created {label} {name!r}; next: cmfleet check {name} && tox -e {env}")
    if not shared:  # resolving needs the package index, so `new` leaves it to the team (builds say it is unpinned)
        click.echo(f"pin its image's third-party wheels with: cmfleet lock {name}")


@hookimpl
def cmfleet_register_commands(cli):
    """Register ``cmfleet new``."""
    cli.add_command(new_command)
