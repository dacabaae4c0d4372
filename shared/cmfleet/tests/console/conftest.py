"""Fixtures of the console tests: a real ``cmfleet dev`` (subprocess, official SDK replicas) over a copy of the
repository's example modules, and a real headless chromium driven by Playwright (helpers in console_support.py;
which chromium, installed when missing: chromium_support.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from chromium_support import NoChromium, find_chromium
from console_support import CHROMIUM_ARGS, DevServer, copy_examples, wait_for


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory) -> Iterator[DevServer]:
    """A running ``cmfleet dev`` with hello, typed, streaming and observed (one real SDK replica each, ready, schemas
    posted) and cold (scaled to zero: no replica until its first call)."""
    base = tmp_path_factory.mktemp("console")
    server = DevServer(copy_examples(base / "repo"), base / "cmfleet-dev.log")
    try:

        def all_ready() -> bool:
            mods = server.client.get("/api/modules").json()
            return all(
                m["schemas_posted"] and any(r["state"] == "ready" for r in m["replicas"])
                for m in mods
                if m["name"] != "cold"
            )

        wait_for(all_ready, 60, "a ready replica with posted schemas for every module")
        yield server
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log.read_text()


@pytest.fixture(scope="session")
def chromium_executable(request: pytest.FixtureRequest) -> str:
    """The chromium to drive (chromium_support.find_chromium: installed when the machine has none)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def say(line: str) -> None:  # shown as it happens, not only when a test fails
        with capture.global_and_fixture_disabled():
            print(line, file=sys.stderr, flush=True)

    try:
        return find_chromium(say)
    except NoChromium as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory, chromium_executable: str) -> Iterator[Any]:
    """A fresh headless chromium driven by Playwright (``executable_path``: chromium_executable)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium_executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 1100},
        )
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def console(dev_server, browser_context) -> Any:
    """The console page, opened once with ``?token=`` (later requests carry the cookie)."""
    page = browser_context.new_page()
    errors: list[str] = []
    requested: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{dev_server.url}/?token={dev_server.token}")
    page.wait_for_selector('.module[data-module="typed"] tr.replica')
    page.js_errors = errors  # type: ignore[attr-defined]
    page.requested = requested  # type: ignore[attr-defined]
    return page
