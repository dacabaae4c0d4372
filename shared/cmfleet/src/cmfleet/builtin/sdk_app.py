"""Built-in plugin: the functions the official SDK collects from a module's unchanged ``app.py``."""

from __future__ import annotations

from cmfleet.hookspecs import hookimpl


@hookimpl
def cmfleet_register_endpoints(module, register):
    """Import ``app.py`` (SDK start-up disabled) and register every ``@function`` / ``add_function``."""
    from cmfleet.loader import load_app

    loaded = load_app(module.path)
    register.set_app(loaded.module)
    for reg in loaded.registrations:
        register(
            reg.func,
            name=reg.name,
            streaming=reg.streaming,
            edits=reg.edits,
            _prepared=(reg.schema, reg.conversion, reg.context_typed),
        )
