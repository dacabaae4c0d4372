"""One list of functions per module: ``list``, ``schema``, ``invoke``'s known names, the gateway's 404, its function
listing and ``/api/modules`` (what the console shows) agree, and say where a function comes from when a plugin adds
it. A plugin adds endpoints to the modules that depend on it (its image installs it), not to every module of an
environment where it happens to be installed: the example hello declares no cmhealth, its copy here does."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from cmfleet.runtime.config import load_config
from cmfleet.runtime.server import BackgroundRuntime

REPO = Path(__file__).resolve().parents[3]
SDK_REQUIREMENT = '"foundry-compute-modules>=0.34",'
EXPECTED = [("add", "app.py"), ("hello", "app.py"), ("health", "cmhealth")]
DESCRIBED = "add, hello, health (from cmhealth)"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A repository with the example hello, declaring cmhealth."""
    root = tmp_path_factory.mktemp("agree") / "repo"
    root.mkdir()
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(
        REPO / "modules" / "hello", root / "modules" / "hello", ignore=shutil.ignore_patterns("__pycache__")
    )
    pyproject = root / "modules" / "hello" / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert SDK_REQUIREMENT in text
    pyproject.write_text(text.replace(SDK_REQUIREMENT, SDK_REQUIREMENT + '\n  "cmhealth",', 1), encoding="utf-8")
    return root


def test_list_schema_and_invoke_agree_and_name_the_plugin(fleet, cmfleet):
    units = {u["name"]: u for u in json.loads(cmfleet("list", "--json", cwd=fleet).stdout)}
    assert [(f["name"], f["origin"]) for f in units["hello"]["functions"]] == EXPECTED
    assert units["hello"]["functions"][2]["line"] is None  # not a line of app.py
    table = cmfleet("list", cwd=fleet).stdout
    assert "health (from" in table and "cmhealth)" in table

    schemas = json.loads(cmfleet("schema", "hello", cwd=fleet).stdout)
    assert [s["functionName"] for s in schemas] == [name for name, _ in EXPECTED]

    unknown = cmfleet("invoke", "hello", "nope", "{}", cwd=fleet)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == f"Error: module 'hello' has no function 'nope'; known functions: {DESCRIBED}"


def test_a_module_without_the_plugin_has_none_of_its_functions_anywhere(cmfleet, repo_root):
    units = {u["name"]: u for u in json.loads(cmfleet("list", "--json").stdout)}
    assert [(f["name"], f["origin"]) for f in units["hello"]["functions"]] == EXPECTED[:2]
    schemas = json.loads(cmfleet("schema", "hello").stdout)
    assert [s["functionName"] for s in schemas] == ["add", "hello"]
    unknown = cmfleet("invoke", "hello", "health", "{}")
    assert unknown.returncode == 2 and unknown.stderr.strip().endswith("known functions: add, hello")


def test_the_gateway_and_the_console_listing_agree_before_and_after_the_replica_posts(fleet, monkeypatch):
    monkeypatch.delenv("CMFLEET_LOAD_PLUGINS", raising=False)
    # "shared": the replica runs in this environment, where cmhealth is installed
    config = load_config(
        {}, port=0, runtime_port=0, reload=False, terminal_logs=False, replicas="0:1", environments="shared"
    )
    with BackgroundRuntime(fleet, config, ["hello"]) as rt, httpx.Client(base_url=rt.url, timeout=60) as client:

        def listed() -> tuple[list, dict, list]:
            functions = client.get("/api/modules/hello/functions").json()
            (module,) = client.get("/api/modules").json()
            return [(f["name"], f["origin"]) for f in functions], module["origins"], module["functions"]

        for posted in (False, True):  # scaled to zero: app.py's and the plugin's, read statically; then posted
            if posted:
                assert client.post("/api/modules/hello/functions/health", json={}).json()["module"] == "hello"
                deadline = time.monotonic() + 30
                while not client.get("/api/modules").json()[0]["schemas_posted"] and time.monotonic() < deadline:
                    time.sleep(0.05)
            functions, origins, names = listed()
            assert functions == EXPECTED and origins == dict(EXPECTED) and names == [n for n, _ in EXPECTED]
            r = client.post("/api/modules/hello/functions/nope", json={})
            assert r.status_code == 404 and r.json()["known"] == names
            assert r.json()["error"] == f"module 'hello' has no function 'nope'; known functions: {DESCRIBED}"
