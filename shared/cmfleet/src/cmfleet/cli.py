"""The ``cmfleet`` command line: a thin click group whose commands come from the ``cmfleet_register_commands``
hook (built-in commands included), loaded only when click asks for them."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from cmfleet.discovery import Repository

#: Exit codes, the same for every command (documented in the README).
EXIT_OK = 0
EXIT_FAILED = 1  # the function failed, a check found problems, tests failed
EXIT_USAGE = 2  # bad input: unknown module or function, malformed JSON or name (click uses 2 as well)
EXIT_IMPORT = 3  # a module's app.py failed to import


def fail(message: str, code: int) -> NoReturn:
    """Print ``Error: message`` to stderr and exit with ``code``."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def emit_json(data: Any) -> None:
    """Print JSON for scripts (stable key order, UTF-8)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def load_repository(*, validate: bool = True) -> Repository:
    """The repository around the current directory, or exit 2 with the reason.

    With ``validate`` (every command but ``check``, which reports them as findings) a unit graph that breaks
    the rules of :func:`cmfleet.discovery.graph_problems` stops the command with one line and exit 2.
    """
    from cmfleet.discovery import DiscoveryError, Repository

    try:
        repo = Repository.load()
        if validate:
            repo.validate()
        return repo
    except DiscoveryError as exc:
        fail(str(exc), EXIT_USAGE)


class CmfleetGroup(click.Group):
    """A click group that asks the plugins for its commands the first time it needs them."""

    _plugins_loaded = False

    def _load(self) -> None:
        if not self._plugins_loaded:
            self._plugins_loaded = True
            from cmfleet.plugins import get_plugin_manager

            get_plugin_manager().hook.cmfleet_register_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            # an optional dependency a command imports when it runs: one line with the extra to install
            from cmfleet.errors import missing_extra

            message = missing_extra(exc, ctx.invoked_subcommand or "")
            if message is None:
                raise
            click.echo(f"Error: {message}", err=True)
            sys.exit(EXIT_USAGE)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # click.version_option needs the version when the decorator runs; this reads it only for --version.
    if not value or ctx.resilient_parsing:
        return
    from cmfleet import __version__

    click.echo(f"cmfleet, version {__version__}")
    ctx.exit()


@click.group(cls=CmfleetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
def cli() -> None:
    """cmfleet: one repository, many Foundry compute modules.

    Exit codes: 0 success, 1 a function, check, build or release failed, 2 bad input (unknown or invalid name,
    malformed JSON, a version or ref that does not apply) or a missing optional part, 3 a module's app.py failed
    to import or does not parse.
    """


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="cmfleet")
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
