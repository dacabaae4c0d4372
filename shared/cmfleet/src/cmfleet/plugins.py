"""The toolkit's plugin manager: the image's (``cmcore.plugins``) plus the toolkit's hooks and built-ins.

Entry points (group ``cmfleet``) are loaded only when something first asks for the plugin manager, never at
import time. ``CMFLEET_LOAD_PLUGINS`` is a comma-separated allow-list of entry-point names (``""`` loads none),
as ``LLM_LOAD_PLUGINS`` is for llm. Unlike the image's, this manager validates every hook implementation.
"""

from __future__ import annotations

import pluggy

from cmcore.plugins import (
    ALLOW_LIST_ENV,
    ENTRY_POINT_GROUP,
    SDK_APP_PLUGIN,
    PluginInfo,
    allowed_entry_points,
)
from cmcore.plugins import BUILTIN_PLUGINS as IMAGE_BUILTINS
from cmcore.plugins import list_plugins as _list_plugins
from cmcore.plugins import new_plugin_manager as _new_image_manager
from cmfleet import hookspecs

__all__ = [
    "ALLOW_LIST_ENV",
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "SDK_APP_PLUGIN",
    "PluginInfo",
    "allowed_entry_points",
    "get_plugin_manager",
    "list_plugins",
    "new_plugin_manager",
    "reset_plugin_manager",
]

#: The toolkit's built-in features, registered through the same hooks as third-party plugins.
TOOLKIT_BUILTINS: tuple[str, ...] = (
    "cmfleet.builtin.commands",
    "cmfleet.checks.rules",
    "cmfleet.scaffold.commands",
    "cmfleet.runtime.commands",
    "cmfleet.release.commands",
    "cmfleet.artifacts.commands",
)
#: Every built-in of the toolkit's manager: the image's, then the toolkit's.
BUILTIN_PLUGINS: tuple[str, ...] = (*IMAGE_BUILTINS, *TOOLKIT_BUILTINS)

_manager: pluggy.PluginManager | None = None


def new_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh toolkit plugin manager: every hookspec, the built-ins and (optionally) the entry points."""
    return _new_image_manager(
        load_entry_points=load_entry_points,
        extra_specs=(hookspecs,),
        extra_builtins=TOOLKIT_BUILTINS,
        strict=True,
    )


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide toolkit plugin manager, built on first use."""
    global _manager
    if _manager is None:
        _manager = new_plugin_manager()
    return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide managers, the toolkit's and the image's (tests, or after changing
    ``CMFLEET_LOAD_PLUGINS``)."""
    global _manager
    from cmcore.plugins import reset_plugin_manager as reset_image_manager

    _manager = None
    reset_image_manager()


def list_plugins(pm: pluggy.PluginManager | None = None) -> list[PluginInfo]:
    """Every registered plugin with its hooks and, for entry points, its distribution and version."""
    import cmcore
    from cmfleet import __version__

    builtins = {name: ("cmcore", cmcore.__version__) for name in IMAGE_BUILTINS}
    builtins.update({name: ("cmfleet", __version__) for name in TOOLKIT_BUILTINS})
    return _list_plugins(pm or get_plugin_manager(), builtins)
