"""The console with a module of another language: Palantir's TypeScript SDK (from npm, under Node.js) behind a real
``cmfleet dev``, in a real headless chromium. Its posted schema makes a form; the functions its settings declare
(registered without a schema) take a free-form event; its raw streamed text and its errors show as they come."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator

import pytest
from console_support import REPO, DevServer, result_json, run_and_wait, select, wait_for
from playwright.sync_api import expect
from runtime_support import add_typescript_module

DEV = """
[tool.cmfleet.dev.modules.tsmod]
command = ["node", "index.js"]
replicas = "1:1"
functions = ["fail", { name = "hello", streaming = true }]
"""


@pytest.fixture(scope="module")
def ts_server(tmp_path_factory, nodejs) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("console-ts") / "repo"
    (root / "modules").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    with (root / "pyproject.toml").open("a") as fh:
        fh.write(DEV)
    add_typescript_module(root)
    server = DevServer(root, root.parent / "cmfleet-dev.log", ["tsmod"])
    try:
        # the TS SDK posts its schemas once its first poll is answered (a 204 after the 5 s hold counts)
        wait_for(lambda: server.client.get("/api/modules").json()[0]["schemas_posted"], 30, "the TS SDK's schemas")
        yield server
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log.read_text()


@pytest.fixture(scope="module")
def ts_console(ts_server, browser_context):
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{ts_server.url}/?token={ts_server.token}")
    expect(page.locator('.module[data-module="tsmod"] tr.replica')).to_contain_text("ready")
    yield page
    assert errors == []
    page.close()


def test_the_posted_schema_makes_a_form_and_the_call_runs_in_node(ts_console):
    select(ts_console, "tsmod", "add")
    assert ts_console.locator("#f-x").get_attribute("type") == "number"
    ts_console.fill("#f-x", "10")
    ts_console.fill("#f-y", "20")
    run_and_wait(ts_console)
    assert result_json(ts_console) == 30
    expect(ts_console.locator("#job-state")).to_have_text("succeeded")
    expect(ts_console.locator("#job-replica")).to_have_text("tsmod-1")


def test_a_declared_function_takes_a_free_form_event_and_its_raw_stream_shows(ts_console):
    select(ts_console, "tsmod", "hello")
    expect(ts_console.locator("#query-note")).to_contain_text("the module's settings declare this function")
    expect(ts_console.locator("#query-tags")).to_contain_text("streaming")
    ts_console.click("#tab-json")
    ts_console.fill("#raw-json", '{"world": "console"}')
    ts_console.click("#run")
    # "Hello" is on screen while the function still waits before writing its second chunk
    expect(ts_console.locator("#run-status")).to_have_text(re.compile(r"^1 item so far"))
    assert json.loads(ts_console.locator("#result-body").inner_text()) == ["Hello"]
    expect(ts_console.locator("#run")).to_be_enabled()
    assert result_json(ts_console) == ["Hello", "console"]
    expect(ts_console.locator("#job-state")).to_have_text("succeeded")


def test_a_thrown_error_shows_its_name_and_message(ts_console):
    select(ts_console, "tsmod", "fail")
    ts_console.click("#tab-json")
    ts_console.fill("#raw-json", '{"why": "out of stock"}')
    run_and_wait(ts_console)
    expect(ts_console.locator("#errors")).to_contain_text("500: TypeError: out of stock")
    expect(ts_console.locator("#job-state")).to_have_text("failed")
