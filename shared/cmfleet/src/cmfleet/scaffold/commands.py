"""Built-in plugin: ``cmfleet new`` (registered through ``cmfleet_register_commands``)."""

from __future__ import annotations

import click

from cmfleet.hookspecs import hookimpl


@click.command("new")
@click.argument("name")
@click.option("--shared", is_flag=True, help="Create a shared library (shared/NAME) instead of a module.")
@click.option("--dry-run", is_flag=True, help="List the files that would be written and write nothing.")
@click.option(
    "--command",
    "command",
    metavar="CMD",
    help='A module in another language run by CMD (e.g. "node index.js"): its folder and its command setting.',
)
def new_command(name: str, shared: bool, dry_run: bool, command: str | None) -> None:
    """Create the module modules/NAME (or with --shared the library shared/NAME) ready to pass `cmfleet check`.

    A module gets app.py with an example @function, pyproject.toml (version from NAME/v* tags),
    conda_recipe/meta.yaml, tests and CHANGELOG.md. A shared library gets src/NAME/, pyproject.toml, tests,
    conda_recipes/NAME/meta.yaml and a pin in conda_recipes/conda_build_config.yaml. Invalid or taken names
    exit 2 before anything is written.

    With --command, a module in another language: modules/NAME/ (a README) and
    [tool.cmfleet.dev.modules.NAME] command = [...] in the root pyproject.toml, for `cmfleet dev`.

    Example: cmfleet new invoices && tox -e module-invoices
    """
    from cmfleet.cli import EXIT_USAGE, fail, load_repository
    from cmfleet.scaffold.generate import ScaffoldError, plan_command_module, plan_unit, write_plan

    kind = "shared" if shared else "module"
    label = "shared library" if shared else "module"
    if command is not None and shared:
        fail("--command makes a module in another language; it does not go with --shared", EXIT_USAGE)
    repo = load_repository()
    try:
        if command is not None:
            import shlex

            plan = plan_command_module(repo, name, shlex.split(command))
        else:
            plan = plan_unit(repo, name, kind)
    except (ScaffoldError, ValueError) as exc:
        fail(f"cannot create {label} {name!r}: {exc}", EXIT_USAGE)
    for line in plan.describe():
        click.echo(("would " if dry_run else "") + line)
    if dry_run:
        return
    write_plan(plan)
    if command is not None:
        click.echo(
            f"created module {name!r} run by {command!r}; next: put its code in modules/{name}, cmfleet dev {name}"
        )
        return
    env = f"{kind}-{name}"  # the tox env the plugin generates for the new unit
    click.echo(f"created {label} {name!r}; next: cmfleet check {name} && tox -e {env}")
    if not shared:  # resolving needs the package index, so `new` leaves it to the team (builds say it is unpinned)
        click.echo(f"pin its image's third-party wheels with: cmfleet lock {name}")


@hookimpl
def cmfleet_register_commands(cli: click.Group) -> None:
    """Register ``cmfleet new``."""
    cli.add_command(new_command)
