"""Every cmfleet hook, in one file.

A plugin is a Python module (or object) with functions named like the hooks below, decorated with
``cmfleet.hookimpl``. Built-in features use these same hooks (see ``cmfleet.plugins.BUILTIN_PLUGINS``); a
shared library adds its own through the entry-point group ``cmfleet``::

    # shared/mylib/pyproject.toml
    [project.entry-points.cmfleet]
    mylib = "mylib.cmfleet_plugin"

Keep plugin modules import-light: import heavy libraries inside the hook functions, so that
``cmfleet --help`` stays fast with many plugins installed. Every hook takes keyword arguments only, and
pluggy passes only those an implementation declares, so new arguments never break old plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from cmfleet.checks.base import CheckRegistrar
    from cmfleet.discovery import Unit
    from cmfleet.registry import Call, EndpointRegistrar

hookspec = pluggy.HookspecMarker("cmfleet")
hookimpl = pluggy.HookimplMarker("cmfleet")


@hookspec
def cmfleet_register_endpoints(module: Unit, register: EndpointRegistrar) -> None:
    """Register the endpoints (callable functions) of a compute module.

    Called once each time a module is loaded to run: by ``cmfleet invoke``, the pytest fixtures,
    ``cmfleet schema``, the container entrypoint and every local replica. The built-in plugin
    ``cmfleet.builtin.sdk_app`` imports the module's unchanged ``app.py`` and registers every function the
    official SDK collected from ``@function`` and ``add_function``; a shared library can register extra
    endpoints in every module. ``register(func, name=None, streaming=False, edits=None)`` takes a function
    with the SDK's signature ``(context, event)``; its type hints define its schema exactly as in the SDK.

    Example, a ``health`` endpoint in every module::

        @hookimpl
        def cmfleet_register_endpoints(module, register):
            def health(context, event) -> dict[str, str]:
                return {"module": module.name, "status": "ok"}
            register(health)
    """


@hookspec(firstresult=True)
def cmfleet_invoke(call: Call) -> Any:
    """Run one invocation of an endpoint and return its result.

    The built-in implementation calls ``call.endpoint.func(call.context, call.event)`` after the SDK's payload
    conversion. Implement it with ``@hookimpl(wrapper=True)`` to wrap every call of every function of every
    module (timing, log context, validation, metrics): the same wrapper runs in ``cmfleet invoke``, in the
    pytest fixtures, in local replicas and in the deployed container.

    Example, timing middleware::

        import time

        @hookimpl(wrapper=True)
        def cmfleet_invoke(call):
            started = time.perf_counter()
            try:
                return (yield)
            finally:
                print(f"{call.module}.{call.name} took {time.perf_counter() - started:.3f}s")
    """


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


#: Type of the ``register`` callback of :func:`cmfleet_register_endpoints`, for plugin authors' type hints.
RegisterEndpoint = Callable[..., None]
