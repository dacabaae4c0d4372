"""The toolkit's hooks: commands, check rules, local replica environments.

The hooks a container runs (``cmfleet_register_endpoints``, ``cmfleet_invoke``) are in ``cmcore.hookspecs``,
the small distribution images install; ``hookimpl`` is the same marker in both. A plugin is a Python module (or
object) with functions named like the hooks, decorated with ``cmcore.hookimpl`` (``cmfleet.hookimpl`` is the
same object). Built-in features use these same hooks (see ``cmfleet.plugins.TOOLKIT_BUILTINS``); a shared
library adds its own through the entry-point group ``cmfleet``::

    # shared/mylib/pyproject.toml
    [project.entry-points.cmfleet]
    mylib = "mylib.cmfleet_plugin"

Keep plugin modules import-light: import heavy libraries inside the hook functions, so that
``cmfleet --help`` stays fast with many plugins installed. Every hook takes keyword arguments only, and
pluggy passes only those an implementation declares, so new arguments never break old plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cmcore.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    import click

    from cmfleet.checks.base import CheckRegistrar
    from cmfleet.discovery import Unit

__all__ = ["RegisterEndpoint", "hookimpl", "hookspec"]


@hookspec
def cmfleet_register_commands(cli: click.Group) -> None:
    """Add commands to the ``cmfleet`` command-line interface.

    Built-in commands (``list``, ``invoke``, ``check``...) are registered through this hook too.

    Example::

        import click

        @hookimpl
        def cmfleet_register_commands(cli):
            @cli.command()
            def hello():
                "Say hello."
                click.echo("hello")
    """


@hookspec
def cmfleet_register_checks(register: CheckRegistrar) -> None:
    """Add rules to ``cmfleet check``.

    ``register(rule_id, func, applies_to="module", description="...")``. ``func(unit, ctx)`` yields
    ``cmfleet.checks.Finding`` objects, each with a file, line, message and fix. The built-in rules use this
    hook as well. ``applies_to`` is ``"module"``, ``"shared"`` or ``"any"``.

    Example, forbid ``print`` in app.py::

        import ast
        from cmfleet.checks import Finding

        @hookimpl
        def cmfleet_register_checks(register):
            def no_print(unit, ctx):
                tree = ctx.ast_of(unit.path / "app.py")
                for node in ast.walk(tree):
                    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print":
                        yield Finding(unit.path / "app.py", node.lineno, "print() in app.py",
                                      "use the SDK's logger (compute_modules.logging.get_logger)")
            register("no-print", no_print, description="app.py does not print")
    """


@hookspec
def cmfleet_replica_environment(module: Unit, environ: dict[str, str]) -> None:
    """Adjust the environment a local replica of ``module`` starts with (``cmfleet dev``).

    ``environ`` already holds every variable the Foundry runtime gives a container; edit it in place.

    Example::

        @hookimpl
        def cmfleet_replica_environment(module, environ):
            environ["FOUNDRY_URL"] = "localhost"
    """


#: Type of the ``register`` callback of ``cmcore.hookspecs.cmfleet_register_endpoints`` (``cmcore.EndpointRegistrar``).
RegisterEndpoint = Callable[..., None]
