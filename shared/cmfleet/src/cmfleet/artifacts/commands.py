"""Built-in plugin: the `build` and `lock` commands (registered through `cmfleet_register_commands`).

Thin: they resolve names, call ``builder.build_modules``, ``check.check_plan`` or ``lock`` and print.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cmfleet.hookspecs import hookimpl

if TYPE_CHECKING:
    from rich.console import Console

    from cmfleet.artifacts import BuildError
    from cmfleet.artifacts.builder import BuildResult
    from cmfleet.artifacts.preflight import ModulePlan
    from cmfleet.discovery import Repository


def affected_modules(repo: Repository, since: str) -> list[str]:
    """Modules affected by changes since ``since``, from ``cmfleet.repo.affected`` (imported lazily)."""
    from cmfleet.artifacts import BuildError

    try:
        from cmfleet.repo.affected import affected
        from cmfleet.repo.git import GitError
    except ImportError:
        raise BuildError("--affected needs cmfleet.repo.affected, which this cmfleet does not have", 2) from None
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
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Modules built at once (default: the number of cores, at most 4).",
)
def build_command(
    names: tuple[str, ...],
    affected: bool,
    since: str | None,
    out: Path | None,
    dev: bool,
    check_only: bool,
    as_json: bool,
    jobs: int | None,
) -> None:
    """Build deployable artifacts of modules into DIR/<module>/<version>/: wheels (module, shared libraries,
    cmcore, third-party), rendered conda recipes, a Foundry container context and manifest.json. Several modules
    build at once (--jobs), and a shared library they all ship is built once per run.

    Examples: cmfleet build hello; cmfleet build --affected --since origin/main; cmfleet build --check wordcount
    """
    from rich.console import Console

    from cmfleet.artifacts import BuildError
    from cmfleet.artifacts.preflight import plan_module
    from cmfleet.cli import EXIT_USAGE, emit_json, fail, load_repository

    repo = load_repository()
    if affected and names:
        fail("give module names or --affected, not both", EXIT_USAGE)
    if affected != bool(since):
        fail("--affected and --since REF go together (e.g. --affected --since origin/main)", EXIT_USAGE)
    try:
        if affected:
            assert since is not None  # --affected without --since was refused above
            targets = affected_modules(repo, since)
        else:
            targets = list(dict.fromkeys(names))
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
    from cmfleet.artifacts.lock import current_lock, lock_path

    for plan in plans:  # every lock is checked before anything is built
        try:
            lock = current_lock(plan)
        except BuildError as exc:
            fail(str(exc), exc.exit_code)
        if lock is None:
            rel = lock_path(plan.module).relative_to(repo.root).as_posix()
            click.echo(
                f"{plan.module.name}: no {rel}, third-party versions are unpinned (the newest allowed today); "
                f"pin them with `cmfleet lock {plan.module.name}`",
                err=True,
            )

    results, failures = _build_all(plans, out_dir, console, jobs or min(4, os.cpu_count() or 1))
    for result in results:
        if not as_json:
            where = result.path.relative_to(repo.root) if result.path.is_relative_to(repo.root) else result.path
            note = " (dev)" if result.dev else ""
            click.echo(f"{result.module} {result.version}{note}: {where}  image {result.image}")
    if failures:
        for failure in failures[1:]:
            click.echo(f"cmfleet: {failure}", err=True)
        fail(str(failures[0]), failures[0].exit_code)
    if as_json:
        emit_json(
            [
                {"module": r.module, "version": r.version, "dev": r.dev, "path": str(r.path), "image": r.image}
                for r in results
            ]
        )
    if affected and not results and not as_json:
        click.echo(f"no module affected since {since}")


def _build_all(
    plans: list[ModulePlan], out_dir: Path, console: Console, jobs: int
) -> tuple[list[BuildResult], list[BuildError]]:
    from cmfleet.artifacts.builder import build_modules
    from cmfleet.progress import StepBoard

    with StepBoard(console) as board:
        return build_modules(plans, out_dir, board, jobs)


def _check(plans: list[ModulePlan], out_dir: Path, as_json: bool, emit_json: Callable[[Any], None]) -> None:
    from cmfleet.artifacts.check import check_plan
    from cmfleet.artifacts.preflight import shared_check_facts
    from cmfleet.cli import EXIT_FAILED

    shared = shared_check_facts(plans)
    report = {plan.module.name: check_plan(plan, out_dir, shared) for plan in plans}
    if as_json:
        emit_json([{"module": name, "problems": problems} for name, problems in report.items()])
    else:
        for name, problems in report.items():
            click.echo(f"{name}: OK" if not problems else f"{name}: {len(problems)} problem(s)")
            for problem in problems:
                click.echo(f"  {problem}")
    if any(report.values()):
        sys.exit(EXIT_FAILED)


@click.command("lock")
@click.argument("names", nargs=-1)
@click.option("--all", "all_modules", is_flag=True, help="Every module of the repository.")
@click.option("--check", "check_only", is_flag=True, help="Exit 1 listing stale or missing locks; write nothing.")
@click.option("--upgrade", is_flag=True, help="Take the newest versions the requirements allow (default: keep pins).")
@click.option(
    "--upgrade-package",
    "upgrade_packages",
    multiple=True,
    metavar="NAME",
    help="Let this package move to its newest allowed version (or NAME<spec, NAME==X.Y); repeatable.",
)
def lock_command(
    names: tuple[str, ...], all_modules: bool, check_only: bool, upgrade: bool, upgrade_packages: tuple[str, ...]
) -> None:
    """Pin every third-party wheel of modules' images in modules/<module>/requirements.lock (exact versions and
    sha256 hashes for the image's Python on linux/amd64, resolved by uv); `cmfleet build` installs exactly those.
    Existing pins are kept unless --upgrade or --upgrade-package allow newer ones.

    Examples: cmfleet lock hello; cmfleet lock --all --upgrade; cmfleet lock hello --upgrade-package rich;
    cmfleet lock --check (CI: exit 1 when a lock is stale or missing)
    """
    from cmfleet.artifacts import BuildError
    from cmfleet.artifacts.preflight import resolve_module
    from cmfleet.cli import EXIT_FAILED, EXIT_USAGE, fail, load_repository
    from cmfleet.recipes import RecipeError

    repo = load_repository()
    if names and all_modules:
        fail("give module names or --all, not both", EXIT_USAGE)
    if check_only and (upgrade or upgrade_packages):
        fail("--check writes nothing: drop --upgrade/--upgrade-package", EXIT_USAGE)
    if not names and not all_modules and not check_only:
        fail("name at least one module (cmfleet list --kind module), or use --all", EXIT_USAGE)
    targets = list(dict.fromkeys(names)) if names else sorted(u.name for u in repo.modules())
    try:  # every name is resolved before anything is resolved or written
        plans = [resolve_module(repo, name) for name in targets]
        if check_only:
            _check_locks(plans)
        else:
            _write_locks(plans, upgrade, list(upgrade_packages))
    except BuildError as exc:
        fail(str(exc), exc.exit_code)
    except RecipeError as exc:  # the image's Python comes from conda_build_config.yaml
        fail(str(exc), EXIT_FAILED)


def _check_locks(plans: list[ModulePlan]) -> None:
    from cmfleet.artifacts.lock import lock_path, read_lock
    from cmfleet.cli import EXIT_FAILED

    if not plans:  # a CI log is never silent
        click.echo("No module to check: nothing to report.")
        return
    failed = []
    for plan in plans:
        name, root = plan.module.name, plan.repo.root
        rel = lock_path(plan.module).relative_to(root).as_posix()
        lock, problems = read_lock(plan)
        if lock is None and not problems:
            click.echo(f"{name}: no {rel}; create it with `cmfleet lock {name}`")
        elif problems:
            click.echo(f"{name}: {rel} {'is stale' if lock else 'cannot be read'}")
            for problem in problems:
                click.echo(f"  {problem.render(root)}")
        else:
            click.echo(f"{name}: OK")
            continue
        failed.append(name)
    if failed:
        click.echo(f"update with `cmfleet lock {' '.join(failed)}` and commit the locks", err=True)
        sys.exit(EXIT_FAILED)


def _write_locks(plans: list[ModulePlan], upgrade: bool, upgrade_packages: list[str]) -> None:
    from cmfleet.artifacts.lock import write_locks

    def progress(plan: ModulePlan) -> None:
        click.echo(f"{plan.module.name}: resolving for Python {plan.python} linux/amd64", err=True)

    for plan, path, written, pins in write_locks(plans, upgrade, upgrade_packages, progress):
        state = "written" if written else "unchanged"
        click.echo(f"{plan.module.name}: {path.relative_to(plan.repo.root).as_posix()} {state} ({pins} pins)")


@click.command("sync-recipes")
@click.argument("names", nargs=-1)
@click.option("--check", "check_only", is_flag=True, help="Exit 1 naming the recipes that differ; write nothing.")
def sync_recipes_command(names: tuple[str, ...], check_only: bool) -> None:
    """Write the run requirements of units' conda recipes (default: every unit) from their pyproject.toml, the
    one place dependencies are declared; the rest of each recipe stays as written.

    Examples: cmfleet sync-recipes invoices; cmfleet sync-recipes --check
    """
    from cmfleet.artifacts.recipe_sync import RecipeSyncError, sync_recipe
    from cmfleet.cli import EXIT_FAILED, EXIT_USAGE, fail, load_repository
    from cmfleet.discovery import UnknownUnitError, rel_path
    from cmfleet.recipes import RecipeError

    repo = load_repository()
    try:
        units = [repo.get(n) for n in dict.fromkeys(names)] if names else list(repo.units.values())
    except UnknownUnitError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        changed = [u for u in units if sync_recipe(repo, u, write=False)]  # every recipe readable before any write
        if not check_only:
            for unit in changed:
                sync_recipe(repo, unit)
    except (RecipeSyncError, RecipeError) as exc:
        fail(str(exc), EXIT_FAILED)
    for unit in units:
        state = ("differs" if check_only else "written") if unit in changed else "unchanged"
        click.echo(f"{unit.name}: {rel_path(repo.root, unit.recipe)} {state}")
    if check_only and changed:
        click.echo(f"update with `cmfleet sync-recipes {' '.join(u.name for u in changed)}`", err=True)
        sys.exit(EXIT_FAILED)


@hookimpl
def cmfleet_register_commands(cli: click.Group) -> None:
    """Register ``cmfleet build``, ``cmfleet lock`` and ``cmfleet sync-recipes``."""
    cli.add_command(build_command)
    cli.add_command(lock_command)
    cli.add_command(sync_recipes_command)
