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

from typing import TYPE_CHECKING, Any

from cmcore.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
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

# Imported on first use (PEP 562): a plugin's ``from cmcore import hookimpl`` costs pluggy alone.
_LAZY = {
    **dict.fromkeys(("LoadedApp", "ModuleLoadError", "load_app"), "cmcore.loader"),
    **dict.fromkeys(
        (
            "Call",
            "Endpoint",
            "EndpointRegistrar",
            "ModuleDir",
            "ModuleRef",
            "ModuleRegistry",
            "Outcome",
            "RegistryError",
            "UnknownFunctionError",
            "load_registry",
        ),
        "cmcore.registry",
    ),
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
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
