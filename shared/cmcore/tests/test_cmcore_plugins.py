"""The image's plugin manager: its built-ins, the allow-list, and the toolkit's hooks (ignored in the image)."""

from __future__ import annotations

import types

import pluggy
import pytest

from cmcore import hookimpl, plugins


def test_the_image_manager_has_the_in_image_hooks_and_builtins_only():
    pm = plugins.new_plugin_manager(load_entry_points=False)
    assert [name for name, _ in pm.list_name_plugin()] == list(plugins.BUILTIN_PLUGINS)
    assert {"cmfleet_register_endpoints", "cmfleet_invoke"} <= {h for h in dir(pm.hook) if h.startswith("cmfleet_")}
    infos = plugins.list_plugins(pm, {name: ("cmcore", "1.2.3") for name in plugins.BUILTIN_PLUGINS})
    assert [(i.name, i.hooks, i.builtin, i.version) for i in infos] == [
        (plugins.SDK_APP_PLUGIN, ["cmfleet_register_endpoints"], True, "1.2.3"),
        ("cmcore.builtin.invoke_call", ["cmfleet_invoke"], True, "1.2.3"),
    ]


def test_a_toolkit_hook_is_ignored_by_the_image_and_refused_by_a_strict_manager():
    @hookimpl
    def cmfleet_replica_environment(module, environ):
        environ["X"] = "1"

    plugin = types.SimpleNamespace(cmfleet_replica_environment=cmfleet_replica_environment)
    pm = plugins.new_plugin_manager(load_entry_points=False)
    pm.register(plugin, name="toolkit-user")  # the image never calls it: no error
    strict = plugins.new_plugin_manager(load_entry_points=False, strict=True)
    strict.register(plugin, name="toolkit-user")
    with pytest.raises(pluggy.PluginValidationError):
        strict.check_pending()


def test_the_allow_list(monkeypatch):
    monkeypatch.setenv(plugins.ALLOW_LIST_ENV, " a, b ,,")
    assert plugins.allowed_entry_points() == {"a", "b"}
    monkeypatch.delenv(plugins.ALLOW_LIST_ENV)
    assert plugins.allowed_entry_points() is None
    monkeypatch.setenv(plugins.ALLOW_LIST_ENV, "")
    assert plugins.allowed_entry_points() == set()
    first = plugins.get_plugin_manager()
    assert plugins.get_plugin_manager() is first
    plugins.reset_plugin_manager()
    assert plugins.get_plugin_manager() is not first
