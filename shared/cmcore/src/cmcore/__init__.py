"""cmcore: what a compute module's container runs, and the typed API plugin authors import.

    from cmcore import hookimpl

    @hookimpl
    def cmfleet_register_endpoints(module, register):
        def ping(context, event) -> str:
            return "pong"
        register(ping)

Depends on pluggy and the official SDK only; the cmfleet toolkit builds on it.
"""

from __future__ import annotations

from cmcore.hookspecs import hookimpl, hookspec
from cmcore.loader import LoadedApp, ModuleLoadError, load_app
from cmcore.registry import (
    Call,
    Endpoint,
    EndpointRegistrar,
    ModuleDir,
    ModuleRef,
    ModuleRegistry,
    Outcome,
    RegistryError,
    UnknownFunctionError,
    load_registry,
)

__all__ = [
    "Call",
    "Endpoint",
    "EndpointRegistrar",
    "LoadedApp",
    "ModuleDir",
    "ModuleLoadError",
    "ModuleRef",
    "ModuleRegistry",
    "Outcome",
    "RegistryError",
    "UnknownFunctionError",
    "__version__",
    "hookimpl",
    "hookspec",
    "load_app",
    "load_registry",
]


def __getattr__(name: str) -> str:
    # Resolved on first use: the image's start-up and every plugin import must not pay for a version lookup.
    if name == "__version__":
        try:
            from cmcore._version import __version__ as built
        except ImportError:
            from importlib import metadata

            try:
                built = metadata.version("cmcore")
            except metadata.PackageNotFoundError:
                built = "0+unknown"
        globals()["__version__"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
