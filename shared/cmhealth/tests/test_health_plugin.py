"""cmhealth's endpoint appears, through the entry-point group ``cmfleet``, in every module that depends on it (the
modules its image installs it in): a copy of the example modules declares it (conftest.py)."""

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
def test_health_is_registered_in_every_module_that_depends_on_it(pm, module, health_fleet):
    registry = load_registry(health_fleet / "modules" / module, pm=pm)
    assert "health" in registry.endpoints
    assert registry.endpoints["health"].plugin == "cmhealth"
    outcome = registry.invoke("health", {})
    assert outcome.ok
    assert outcome.value["module"] == module
    assert outcome.value["status"] == "ok"


def test_a_module_that_does_not_depend_on_it_gets_no_endpoint(pm):
    registry = load_registry(REPO / "modules" / "hello", pm=pm)  # hello declares no cmhealth
    assert registry.names() == ["add", "hello"]
    assert registry.invoke("add", {"x": 1, "y": 2}).value == 3


def test_wrapper_counts_calls_and_errors(pm, health_fleet):
    registry = load_registry(health_fleet / "modules" / "hello", pm=pm)
    assert registry.invoke("add", {"x": 1, "y": 2}).ok
    assert not registry.invoke("add", {"x": 1}).ok
    health = registry.invoke("health", {}).value
    assert health["calls"]["add"] >= 2
    assert health["errors"]["add"] >= 1


def test_listed_by_plugins_with_its_version(pm):
    (info,) = [p for p in list_plugins(pm) if p.name == "cmhealth"]
    assert info.distribution == "cmhealth"
    assert "cmfleet_register_endpoints" in info.hooks and "cmfleet_invoke" in info.hooks


def test_allow_list_excludes_it(monkeypatch, health_fleet):
    monkeypatch.setenv("CMFLEET_LOAD_PLUGINS", "")
    pm = new_plugin_manager()
    registry = load_registry(health_fleet / "modules" / "hello", pm=pm)
    assert "health" not in registry.endpoints


def test_callable_through_cmfleet_invoke(monkeypatch, health_fleet):
    import json
    import subprocess
    import sys

    monkeypatch.delenv("CMFLEET_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("CMFLEET_ROOT", raising=False)
    proc = subprocess.run(
        [sys.executable, "-m", "cmfleet", "invoke", "hello", "health", "{}"],
        cwd=health_fleet,
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


def test_callable_through_the_pytest_fixture(monkeypatch, health_fleet):
    import subprocess
    import sys

    monkeypatch.delenv("CMFLEET_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("CMFLEET_ROOT", str(health_fleet))
    tests = health_fleet / "fixture_check"
    tests.mkdir(exist_ok=True)
    (tests / "test_fixture.py").write_text(
        "def test_health(cm_invoke):\n    assert cm_invoke('streaming', 'health', {})['module'] == 'streaming'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        cwd=tests,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
