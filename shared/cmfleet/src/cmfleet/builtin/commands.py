"""Built-in plugin: the core commands (``list``, ``invoke``, ``schema``, ``plugins``).

Commands stay thin: they parse arguments, call the library and print. Heavy imports happen inside them.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

# Re-exported (the redundant aliases mark it for type checkers): plugins import them here.
from cmfleet.cli import emit_json as emit_json
from cmfleet.cli import fail as fail
from cmfleet.cli import load_repository as load_repository
from cmfleet.hookspecs import hookimpl

if TYPE_CHECKING:
    from cmfleet.discovery import Repository
    from cmfleet.registry import ModuleRegistry


def load_module_registry(module: str) -> ModuleRegistry:
    """The endpoint registry of ``module``, or exit 2 (unknown) / 3 (import failed) with the reason."""
    from cmfleet.cli import EXIT_IMPORT, EXIT_USAGE
    from cmfleet.discovery import UnknownUnitError
    from cmfleet.loader import ModuleLoadError
    from cmfleet.registry import RegistryError, load_registry

    repo = load_repository()
    try:
        unit = repo.module(module)
    except UnknownUnitError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        return load_registry(unit)
    except ModuleLoadError as exc:
        fail(f"module {module!r}: {exc}", EXIT_IMPORT)
    except RegistryError as exc:
        fail(f"module {module!r}: {exc}", EXIT_IMPORT)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--kind", type=click.Choice(["all", "module", "shared"]), default="all", show_default=True)
def list_command(as_json: bool, kind: str) -> None:
    """List modules and shared libraries, their functions and shared dependencies (read statically).

    A module's functions are app.py's, then those a plugin it depends on adds ("health (from cmhealth)").

    Example: cmfleet list --json
    """
    from cmfleet.cli import EXIT_IMPORT
    from cmfleet.discovery import DiscoveryError, SourceSyntaxError
    from cmfleet.registry import APP_ORIGIN, declared_functions

    repo = load_repository()
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for unit in repo.units.values():
        if kind != "all" and unit.kind != kind:
            continue
        error = None
        try:
            lines = {f.name: f.line for f in unit.functions}
            functions = [
                {
                    "name": f.name,
                    "line": lines.get(f.name) if f.origin == APP_ORIGIN else None,
                    "streaming": f.streaming,
                    "origin": f.origin,
                }
                for f in (declared_functions(unit, repo=repo) if unit.is_module else ())
            ]
        except DiscoveryError as exc:  # one unreadable app.py: listed with where it breaks, the others as usual
            functions = []
            error = str(exc)
            if isinstance(exc, SourceSyntaxError) and exc.file.is_relative_to(repo.root):
                error = f"{exc.file.relative_to(repo.root).as_posix()}:{exc.line}: syntax error: {exc.detail}"
            errors.append(error)
        rows.append(
            {
                "name": unit.name,
                "kind": unit.kind,
                "path": unit.rel,
                "functions": functions,
                "shared_deps": [d.name for d in repo.shared_deps(unit)],
                "shared_closure": [d.name for d in repo.closure(unit)],
                "tox_env": unit.tox_env,
                "error": error,
            }
        )
    _list_output(repo, rows, as_json)
    if errors:
        fail("\n".join(errors), EXIT_IMPORT)


def _list_output(repo: Repository, rows: list[dict[str, Any]], as_json: bool) -> None:
    from cmfleet.registry import APP_ORIGIN

    if as_json:
        emit_json(rows)
        return
    from cmfleet.tables import echo_table

    table = []
    for row in rows:
        fns = ", ".join(
            f["name"]
            + (" (stream)" if f["streaming"] else "")
            + (f" (from {f['origin']})" if f["origin"] != APP_ORIGIN else "")
            for f in row["functions"]
        )
        if row["error"]:
            fns = "cannot read app.py (see below)"
        table.append((row["name"], row["kind"], row["tox_env"], ", ".join(row["shared_closure"]) or "-", fns or "-"))
    echo_table(("name", "kind", "tox env", "shared deps", "functions"), table, f"{len(rows)} units in {repo.root}")


@click.command("invoke")
@click.argument("module")
@click.argument("function")
@click.argument("event", required=False)
@click.option(
    "--json", "as_json", is_flag=True, help="Print {ok, result, error, traceback, hint, job_id, duration_ms}."
)
@click.option("--remote", metavar="URL", help="Call a running `cmfleet dev` gateway instead of in process.")
def invoke_command(module: str, function: str, event: str | None, as_json: bool, remote: str | None) -> None:
    """Run FUNCTION of MODULE with a JSON EVENT, exactly as the runtime does, and print the result.

    EVENT is JSON text, @file.json, or - for standard input (the default when input is piped).

    Example: cmfleet invoke hello add '{"x": 10, "y": 20}'
    """
    import time
    import uuid

    from cmfleet.cli import EXIT_FAILED, EXIT_USAGE
    from cmfleet.events import EventError, read_event

    try:
        payload = read_event(event)
    except EventError as exc:
        fail(str(exc), EXIT_USAGE)
    if remote:
        from cmfleet.remote import invoke_remote

        invoke_remote(remote, module, function, payload, as_json)
        return
    from cmfleet.builtin.invoke_env import invoke_in_module_env

    code = invoke_in_module_env(module, function, payload, as_json)  # when this Python lacks the module's deps
    if code is not None:
        sys.exit(code)
    registry = load_module_registry(module)
    if function not in registry.endpoints:
        fail(
            f"module {module!r} has no function {function!r}; known functions: {registry.described()}",
            EXIT_USAGE,
        )
    job_id = str(uuid.uuid4())
    started = time.perf_counter()
    outcome = registry.invoke(function, payload, job_id=job_id)
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    failure = outcome.failure()
    if as_json:
        emit_json(
            {
                "ok": outcome.ok,
                "result": outcome.value if outcome.ok else None,
                "error": None,
                **(failure.as_json() if failure is not None else {}),
                "job_id": job_id,
                "duration_ms": duration_ms,
            }
        )
    elif outcome.ok:
        if outcome.streamed is not None:
            for item in outcome.streamed:
                click.echo(json.dumps(item, ensure_ascii=False))
        else:
            click.echo(outcome.body.decode("utf-8"))
    else:
        assert failure is not None  # failure() is None only for a call that succeeded
        click.echo(f"Error: {failure.report(f'{module}.{function}')}", err=True)
    if not outcome.ok:
        sys.exit(EXIT_FAILED)


@click.command("schema")
@click.argument("module")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["sdk", "jsonschema", "both"]),
    default="sdk",
    show_default=True,
    help="sdk: exactly what the SDK posts to the runtime; jsonschema: JSON Schema of each event and result.",
)
def schema_command(module: str, fmt: str) -> None:
    """Print the function schemas of MODULE as the SDK posts them, or as JSON Schema.

    Example: cmfleet schema typed --format jsonschema
    """
    from cmfleet.schemas import to_json_schema

    registry = load_module_registry(module)
    sdk = registry.schemas()
    if fmt == "sdk":
        emit_json(sdk)
    elif fmt == "jsonschema":
        emit_json([to_json_schema(s) for s in sdk])
    else:
        emit_json({"sdk": sdk, "jsonschema": [to_json_schema(s) for s in sdk]})


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--all", "show_all", is_flag=True, help="Include cmfleet's built-in plugins.")
def plugins_command(as_json: bool, show_all: bool) -> None:
    """List loaded plugins, their hooks and versions (CMFLEET_LOAD_PLUGINS limits which entry points load).

    Example: cmfleet plugins --all --json
    """
    from cmfleet.plugins import list_plugins

    infos = [p for p in list_plugins() if show_all or not p.builtin]
    if as_json:
        emit_json([p.as_json() for p in infos])
        return
    if not infos:
        click.echo("no plugins installed (add --all to see the built-ins)")
        return
    for p in infos:
        origin = "built-in" if p.builtin else f"{p.distribution} {p.version}"
        click.echo(f"{p.name} ({origin}): {', '.join(p.hooks)}")


@hookimpl
def cmfleet_register_commands(cli: click.Group) -> None:
    """Register the core commands."""
    for command in (list_command, invoke_command, schema_command, plugins_command):
        cli.add_command(command)
