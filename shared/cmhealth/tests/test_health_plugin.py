"""cmhealth's endpoint appears in every module through the entry-point group ``cmfleet``."""

from pathlib import Path

import pytest

from cmfleet.plugins import list_plugins, new_plugin_manager
from cmfleet.registry import load_registry

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def pm(monkeypatch):
    monkeypatch.delenv("CMFLEET_LOAD_PLUGINS", raising=False)
    return new_plugin_manager()


@pytest.mark.parametrize("module", ["hello", "typed"])
def test_health_is_registered_in_every_module(pm, module):
    registry = load_registry(REPO / "modules" / module, pm=pm)
    assert "health" in registry.endpoints
    assert registry.endpoints["health"].plugin == "cmhealth"
    outcome = registry.invoke("health", {})
    assert outcome.ok
    assert outcome.value["module"] == module
    assert outcome.value["status"] == "ok"


def test_wrapper_counts_calls_and_errors(pm):
    registry = load_registry(REPO / "modules" / "hello", pm=pm)
    assert registry.invoke("add", {"x": 1, "y": 2}).ok
    assert not registry.invoke("add", {"x": 1}).ok
    health = registry.invoke("health", {}).value
    assert health["calls"]["add"] >= 2
    assert health["errors"]["add"] >= 1


def test_listed_by_plugins_with_its_version(pm):
    (info,) = [p for p in list_plugins(pm) if p.name == "cmhealth"]
    assert info.distribution == "cmhealth"
    assert "cmfleet_register_endpoints" in info.hooks and "cmfleet_invoke" in info.hooks


def test_allow_list_excludes_it(monkeypatch):
    monkeypatch.setenv("CMFLEET_LOAD_PLUGINS", "")
    pm = new_plugin_manager()
    registry = load_registry(REPO / "modules" / "hello", pm=pm)
    assert "health" not in registry.endpoints


def test_callable_through_cmfleet_invoke(monkeypatch):
    import json
    import subprocess
    import sys

    monkeypatch.delenv("CMFLEET_LOAD_PLUGINS", raising=False)
    proc = subprocess.run(
        [sys.executable, "-m", "cmfleet", "invoke", "hello", "health", "{}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["module"] == "hello"
    listed = subprocess.run(
        [sys.executable, "-m", "cmfleet", "plugins", "--json"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    names = [p["name"] for p in json.loads(listed.stdout)]
    assert "cmhealth" in names


def test_callable_through_the_pytest_fixture(cm_invoke):
    assert cm_invoke("streaming", "health", {})["module"] == "streaming"
