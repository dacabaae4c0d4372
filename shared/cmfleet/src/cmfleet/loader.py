"""Moved to ``cmcore.loader`` (what the container runs); this re-export keeps ``cmfleet.loader`` imports working."""

from __future__ import annotations

from cmcore.loader import (
    LoadedApp,
    ModuleLoadError,
    clear_sdk_registries,
    disable_sdk_startup,
    load_app,
)

__all__ = ["LoadedApp", "ModuleLoadError", "clear_sdk_registries", "disable_sdk_startup", "load_app"]
