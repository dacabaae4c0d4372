"""The plugin manager: the built-in plugins, the entry-point group ``cmfleet``, the allow-list, lazy loading.

Entry points are loaded only when something first asks for the plugin manager, never at import time.
``CMFLEET_LOAD_PLUGINS`` is a comma-separated allow-list of entry-point names (``""`` loads none).

The image's manager knows the in-image hooks only (``cmcore.hookspecs``). A plugin may also implement the
toolkit's hooks (commands, check rules, local replica environments): the image never calls them, so they are
not validated here; the toolkit's manager (``cmfleet.plugins``) adds their specifications and validates every
hook strictly, so a misspelt hook fails in ``cmfleet`` commands and tests.

    >>> pm = new_plugin_manager(load_entry_points=False)
    >>> sorted(name for name, _ in pm.list_name_plugin())
    ['cmcore.builtin.invoke_call', 'cmcore.builtin.sdk_app']
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

import pluggy

from cmcore import hookspecs

ENTRY_POINT_GROUP = "cmfleet"
ALLOW_LIST_ENV = "CMFLEET_LOAD_PLUGINS"
#: The built-in plugin that registers the SDK's own functions of ``app.py``.
SDK_APP_PLUGIN = "cmcore.builtin.sdk_app"

#: The image's built-in plugins, registered through the same hooks as third-party plugins.
BUILTIN_PLUGINS: tuple[str, ...] = (SDK_APP_PLUGIN, "cmcore.builtin.invoke_call")

_manager: pluggy.PluginManager | None = None


@dataclass
class PluginInfo:
    """One registered plugin: its hooks and, for an entry point, its distribution and version."""

    name: str
    hooks: list[str]
    version: str | None = None
    distribution: str | None = None
    builtin: bool = False

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
        pm._plugin_distinfo.append((plugin, ep.dist))  # type: ignore[arg-type]  # noqa: SLF001


def new_plugin_manager(
    *,
    load_entry_points: bool = True,
    extra_specs: Iterable[ModuleType] = (),
    extra_builtins: Iterable[str] = (),
    strict: bool = False,
) -> pluggy.PluginManager:
    """A fresh plugin manager with the in-image hooks, the built-ins and (optionally) the entry points.

    ``extra_specs`` and ``extra_builtins`` (dotted module names) are the toolkit's own; ``strict`` fails on any
    hook implementation without a specification (``pluggy.PluginManager.check_pending``).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for specs in extra_specs:
        pm.add_hookspecs(specs)
    for dotted in (*BUILTIN_PLUGINS, *extra_builtins):
        pm.register(importlib.import_module(dotted), name=dotted)
    if load_entry_points:
        _load_entry_points(pm)
    if strict:
        pm.check_pending()
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The image's process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        _manager = new_plugin_manager()
    return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests, or after changing ``CMFLEET_LOAD_PLUGINS``)."""
    global _manager
    _manager = None


def list_plugins(pm: pluggy.PluginManager, builtins: dict[str, tuple[str, str]]) -> list[PluginInfo]:
    """Every registered plugin with its hooks; ``builtins`` maps a built-in's name to its (distribution,
    version), an entry point's come from its distribution."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        dist = dists.get(id(plugin))
        if dist is not None:
            infos.append(PluginInfo(name, hooks, dist.version, dist.metadata["Name"]))
        elif name in builtins:
            distribution, version = builtins[name]
            infos.append(PluginInfo(name, hooks, version, distribution, builtin=True))
        else:
            infos.append(PluginInfo(name, hooks))
    return infos
