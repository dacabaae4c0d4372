"""The endpoint registry lives in ``cmcore.registry`` (what the container runs); this module re-exports it and
adds what needs the repository: a module named inside it, loaded with the toolkit's plugin manager."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cmcore.registry import (
    UNKNOWN_QUERY_TYPE,
    Call,
    Endpoint,
    EndpointRegistrar,
    ModuleDir,
    ModuleRef,
    ModuleRegistry,
    Outcome,
    RegistryError,
    UnknownFunctionError,
    format_user_error,
)
from cmcore.registry import load_registry as _load_registry
from cmfleet.discovery import Unit

__all__ = [
    "UNKNOWN_QUERY_TYPE",
    "Call",
    "Endpoint",
    "EndpointRegistrar",
    "ModuleDir",
    "ModuleRef",
    "ModuleRegistry",
    "Outcome",
    "RegistryError",
    "UnknownFunctionError",
    "format_user_error",
    "load_registry",
    "module_unit",
]


def module_unit(target: Unit | Path | str, root: Path | None = None) -> Unit:
    """A Unit for a module given as a Unit, a folder path, or a name in the repository."""
    if isinstance(target, Unit):
        return target
    path = Path(target)
    if path.is_dir() and (path / "app.py").exists():
        path = path.resolve()
        return Unit(path.name, "module", path, path.parent)
    from cmfleet.discovery import Repository

    return Repository.load(root).module(str(target))


def load_registry(target: Unit | Path | str, pm: Any = None) -> ModuleRegistry:
    """Load a module (a Unit, a folder, or a name in the repository) and ask every plugin, the toolkit's
    manager's by default, for its endpoints."""
    from cmfleet.plugins import get_plugin_manager

    return _load_registry(module_unit(target), pm or get_plugin_manager())
