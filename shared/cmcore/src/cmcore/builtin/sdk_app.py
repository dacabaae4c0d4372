"""Built-in plugin: the functions the official SDK collects from a module's unchanged ``app.py``."""

from __future__ import annotations

from cmcore.hookspecs import hookimpl
from cmcore.registry import EndpointRegistrar, ModuleRef


@hookimpl
def cmfleet_register_endpoints(module: ModuleRef, register: EndpointRegistrar) -> None:
    """Import ``app.py`` (SDK start-up disabled) and register every ``@function`` / ``add_function``."""
    from cmcore.loader import load_app

    loaded = load_app(module.path)
    register.set_app(loaded.module)
    for endpoint in loaded.endpoints:
        register.add(endpoint)
