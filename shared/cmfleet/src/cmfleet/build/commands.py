"""Built-in plugin: the `build` command (registered through `cmfleet_register_commands`).

Thin: it resolves names, calls ``builder.build_module`` or ``check.check_plan`` and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cmfleet.hookspecs import hookimpl


def affected_modules(repo, since: str) -> list[str]:
    """Modules affected by changes since ``since``, from ``cmfleet.release.affected`` (imported lazily)."""
    from cmfleet.build import BuildError

    try:
        from cmfleet.release.affected import affected
        from cmfleet.release.git import GitError
    except ImportError:
        raise BuildError("--affected needs cmfleet.release.affected, which this cmfleet does not have", 2) from None
    try:
        result = affected(repo, since)
    except GitError as exc:
        raise BuildError(str(exc), 2) from None
    return [name for name, unit in result.units.items() if unit.kind == "module"]


@click.command("build")
@click.argument("names", nargs=-1)
@click.option("--affected", is_flag=True, help="Build the modules affected by changes since --since.")
@click.option("--since", metavar="REF", help="The git ref --affected compares against (e.g. origin/main).")
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: dist/ at the root)."
)
@click.option("--dev", is_flag=True, help="Allow untagged units; their dev versions are marked in the manifest.")
@click.option("--check", "check_only", is_flag=True, help="Validate what a build would produce, build nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def build_command(
    names: tuple[str, ...],
    affected: bool,
    since: str | None,
    out: Path | None,
    dev: bool,
    check_only: bool,
    as_json: bool,
) -> None:
    """Build deployable artifacts of modules into DIR/<module>/<version>/: wheels (module, shared libraries,
    cmfleet, third-party), rendered conda recipes, a Foundry container context and manifest.json.

    Examples: cmfleet build hello; cmfleet build --affected --since origin/main; cmfleet build --check wordcount
    """
    from rich.console import Console

    from cmfleet.build import BuildError
    from cmfleet.build.preflight import plan_module
    from cmfleet.builtin.commands import emit_json, fail, load_repository
    from cmfleet.cli import EXIT_USAGE

    repo = load_repository()
    if affected and names:
        fail("give module names or --affected, not both", EXIT_USAGE)
    if affected != bool(since):
        fail("--affected and --since REF go together (e.g. --affected --since origin/main)", EXIT_USAGE)
    try:
        targets = affected_modules(repo, since) if affected else list(dict.fromkeys(names))
    except BuildError as exc:
        fail(str(exc), exc.exit_code)
    if not targets and not affected:
        fail("name at least one module (cmfleet list --kind module), or use --affected --since REF", EXIT_USAGE)
    out_dir = (out or repo.root / "dist").resolve()
    console = Console(stderr=True)
    try:  # resolve every name before building anything
        plans = [plan_module(repo, name, dev=dev) for name in targets]
    except BuildError as exc:
        fail(str(exc), exc.exit_code)
    if check_only:
        _check(plans, out_dir, as_json, emit_json)
        return
    from cmfleet.build.builder import build_module

    results = []
    for plan in plans:
        with console.status(f"building {plan.module.name}") as status:
            try:
                result = build_module(plan, out_dir, lambda msg, n=plan.module.name: status.update(f"{n}: {msg}"))
            except BuildError as exc:
                fail(str(exc), exc.exit_code)
        results.append(result)
        if not as_json:
            where = result.path.relative_to(repo.root) if result.path.is_relative_to(repo.root) else result.path
            note = " (dev)" if result.dev else ""
            click.echo(f"{result.module} {result.version}{note}: {where}  image {result.image}")
    if as_json:
        emit_json(
            [
                {"module": r.module, "version": r.version, "dev": r.dev, "path": str(r.path), "image": r.image}
                for r in results
            ]
        )
    if affected and not results and not as_json:
        click.echo(f"no module affected since {since}")


def _check(plans, out_dir: Path, as_json: bool, emit_json) -> None:
    from cmfleet.build.check import check_plan
    from cmfleet.cli import EXIT_FAILED

    report = {plan.module.name: check_plan(plan, out_dir) for plan in plans}
    if as_json:
        emit_json([{"module": name, "problems": problems} for name, problems in report.items()])
    else:
        for name, problems in report.items():
            click.echo(f"{name}: OK" if not problems else f"{name}: {len(problems)} problem(s)")
            for problem in problems:
                click.echo(f"  {problem}")
    if any(report.values()):
        sys.exit(EXIT_FAILED)


@hookimpl
def cmfleet_register_commands(cli):
    """Register ``cmfleet build``."""
    cli.add_command(build_command)
