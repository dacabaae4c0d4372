"""The registry through the hooks: the SDK's own registrations of app.py, plugins' endpoints and middleware."""

from __future__ import annotations

import types

import pytest

from cmcore import Endpoint, ModuleDir, ModuleLoadError, RegistryError, UnknownFunctionError, hookimpl, load_registry
from cmcore.plugins import SDK_APP_PLUGIN, new_plugin_manager

APP = """
from compute_modules.annotations import function
from helper import double


@function
def add(context, event):
    return event["x"] + event["y"]


@function
def twice(context, event) -> int:
    return double(event["n"])


@function(streaming=True)
def count(context, event):
    for i in range(event["n"]):
        yield i
"""


def test_app_py_functions_are_endpoints_with_the_sdks_schemas(module_dir):
    registry = load_registry(module_dir(APP, helper="def double(n):\n    return 2 * n\n"))
    assert registry.names() == ["add", "twice", "count"]
    assert registry.module == ModuleDir("demo", registry.module.path)
    endpoint = registry.get("twice")
    assert isinstance(endpoint, Endpoint) and endpoint.plugin == SDK_APP_PLUGIN and not endpoint.streaming
    assert registry.get("count").streaming is True
    [schema] = [s for s in registry.schemas() if s["functionName"] == "twice"]
    assert schema["output"]["single"]["dataType"]["type"] == "integer"
    assert registry.invoke("add", {"x": 1, "y": 2}).value == 3
    assert registry.invoke("twice", {"n": 4}).body == b"8"
    assert registry.invoke("count", {"n": 3}).streamed == [0, 1, 2]


def test_errors_are_the_sdks_results_and_unknown_names_list_the_known(module_dir):
    registry = load_registry(module_dir(APP, helper="def double(n):\n    return 2 * n\n"))
    failed = registry.invoke("add", {"x": 1})
    assert not failed.ok and "KeyError: 'y'" in failed.error_message
    assert "app.py" in failed.user_traceback() and "/cmcore/" not in failed.user_traceback()
    assert registry.invoke("nope", {}).value == {"error": "Unknown query type"}
    with pytest.raises(UnknownFunctionError) as raised:
        registry.get("nope")
    assert str(raised.value) == "module 'demo' has no function 'nope'; known functions: add, twice, count"


def test_a_missing_helper_names_the_file_line_and_the_import(module_dir):
    with pytest.raises(ModuleLoadError) as raised:
        load_registry(module_dir(APP))
    assert "app.py:3: importing app.py failed: ModuleNotFoundError: No module named 'helper'" in str(raised.value)


def test_plugins_add_endpoints_and_wrap_every_call_and_duplicates_name_both(module_dir):
    seen: list[str] = []

    @hookimpl
    def cmfleet_register_endpoints(module, register):
        def health(context, event) -> str:
            return f"{module.name} ok"

        register(health)

    @hookimpl(wrapper=True)
    def cmfleet_invoke(call):
        seen.append(f"{call.module}.{call.name}")
        return (yield)

    plugin = types.SimpleNamespace(cmfleet_register_endpoints=cmfleet_register_endpoints, cmfleet_invoke=cmfleet_invoke)
    pm = new_plugin_manager(load_entry_points=False)
    pm.register(plugin, name="extra")
    folder = module_dir(APP, helper="def double(n):\n    return 2 * n\n")
    registry = load_registry(folder, pm)
    assert registry.get("health").plugin == "extra"
    assert registry.invoke("health", {}).value == "demo ok"
    assert registry.invoke("twice", {"n": 1}).value == 2
    assert seen == ["demo.health", "demo.twice"]

    @hookimpl
    def again(module, register):
        def add(context, event) -> int:
            return 0

        register(add)

    clash = new_plugin_manager(load_entry_points=False)
    clash.register(types.SimpleNamespace(cmfleet_register_endpoints=again), name="clash")
    with pytest.raises(RegistryError) as raised:
        load_registry(folder, clash)
    assert f"'add' is registered twice in module 'demo' (by {SDK_APP_PLUGIN} and by clash)" in str(raised.value)


def test_a_signature_the_sdk_rejects_is_a_registry_error(module_dir):
    @hookimpl
    def cmfleet_register_endpoints(register):
        def bad(context, event: dict) -> dict:
            return event

        register(bad)

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(types.SimpleNamespace(cmfleet_register_endpoints=cmfleet_register_endpoints), name="bad-plugin")
    with pytest.raises(RegistryError) as raised:
        load_registry(module_dir("x = 1\n"), pm)
    assert "the SDK rejects the signature of 'bad' (from bad-plugin)" in str(raised.value)
