"""The console shows a replica whose module's env is being made as "building environment": a real ``cmfleet dev``
over a fresh repo whose module needs a slowly installing shared library (real uv, real venv), in a real headless
chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_support import DevServer, slow_env_repo, wait_for
from playwright.sync_api import expect


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory) -> Iterator[DevServer]:
    base = tmp_path_factory.mktemp("console-building")
    server = DevServer(slow_env_repo(base / "repo"), base / "cmfleet-dev.log", ["building"])
    try:
        yield server
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log.read_text()


def _replica(server: DevServer) -> dict:
    (module,) = server.client.get("/api/modules").json()
    (replica,) = module["replicas"]
    return replica


def test_a_replica_waiting_for_its_env_shows_building_environment_then_ready(slow_server, browser_context):
    wait_for(lambda: _replica(slow_server)["state"] == "building", 30, "building-1 in state building")
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{slow_server.url}/?token={slow_server.token}")
    row = page.locator('.module[data-module="building"] tr.replica[data-replica="building-1"]')
    state = row.locator(".badge")
    expect(state).to_have_text("building environment")
    expect(state).to_have_class("badge building")
    assert "venv" in (state.get_attribute("title") or "")
    # once the env is made the replica starts, polls and is ready; the page shows it at its next refresh
    expect(state).to_have_text("ready", timeout=60_000)
    assert slow_server.client.post("/api/modules/building/functions/version", json={}).json() == "slow-1"
    assert errors == []
    page.close()
