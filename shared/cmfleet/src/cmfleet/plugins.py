"""The plugin manager: built-in plugins, the entry-point group ``cmfleet``, the allow-list, lazy loading.

Entry points are loaded only when something first asks for the plugin manager, never at import time.
``CMFLEET_LOAD_PLUGINS`` is a comma-separated allow-list of entry-point names (``""`` loads none), as
``LLM_LOAD_PLUGINS`` is for llm.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from cmfleet import hookspecs

ENTRY_POINT_GROUP = "cmfleet"
ALLOW_LIST_ENV = "CMFLEET_LOAD_PLUGINS"

#: Built-in features, registered through the same hooks as third-party plugins.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "cmfleet.builtin.sdk_app",
    "cmfleet.builtin.invoke_call",
    "cmfleet.builtin.commands",
    "cmfleet.checks.rules",
    "cmfleet.scaffold.commands",
    "cmfleet.runtime.commands",
    "cmfleet.release.commands",
    "cmfleet.artifacts.commands",
)

_manager: pluggy.PluginManager | None = None


@dataclass
class PluginInfo:
    """One registered plugin, as ``cmfleet plugins`` shows it."""

    name: str
    hooks: list[str]
    version: str | None = None
    distribution: str | None = None
    builtin: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """The JSON shape of ``cmfleet plugins --json``."""
        return {
            "name": self.name,
            "hooks": self.hooks,
            "version": self.version,
            "distribution": self.distribution,
            "builtin": self.builtin,
        }


def allowed_entry_points() -> set[str] | None:
    """The allow-list from ``CMFLEET_LOAD_PLUGINS``: ``None`` means every entry point may load."""
    raw = os.environ.get(ALLOW_LIST_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = allowed_entry_points()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        plugin = ep.load()
        pm.register(plugin, name=ep.name)
        # pluggy's list_plugin_distinfo wants the distribution next to the plugin.
        pm._plugin_distinfo.append((plugin, ep.dist))  # noqa: SLF001


def new_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the hookspecs, the built-ins and (optionally) the entry points."""
    pm = pluggy.PluginManager("cmfleet")
    pm.add_hookspecs(hookspecs)
    for dotted in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(dotted), name=dotted)
    if load_entry_points:
        _load_entry_points(pm)
    pm.check_pending()
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        _manager = new_plugin_manager()
    return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests, or after changing ``CMFLEET_LOAD_PLUGINS``)."""
    global _manager
    _manager = None


def list_plugins(pm: pluggy.PluginManager | None = None) -> list[PluginInfo]:
    """Every registered plugin with its hooks and, for entry points, its distribution and version."""
    pm = pm or get_plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        dist = dists.get(id(plugin))
        if dist is not None:
            infos.append(PluginInfo(name, hooks, dist.version, dist.metadata["Name"]))
        else:
            from cmfleet import __version__

            infos.append(PluginInfo(name, hooks, __version__, "cmfleet", builtin=name in BUILTIN_PLUGINS))
    return infos
