"""The plugin's endpoint through the container path: `python -m cmfleet.entrypoint` hands the plugin-registered
functions to the official SDK, which serves them to `cmfleet dev` over the real runtime protocol."""

from __future__ import annotations

import time

import httpx

from cmfleet.runtime.config import load_config
from cmfleet.runtime.server import BackgroundRuntime


def test_health_is_served_by_sdk_replicas_of_every_module_that_depends_on_it(monkeypatch, health_fleet):
    monkeypatch.delenv("CMFLEET_LOAD_PLUGINS", raising=False)
    # "shared": replicas run in this environment, where cmhealth is installed (a module env has only its own deps).
    config = load_config(
        {}, port=0, runtime_port=0, reload=False, terminal_logs=False, replicas="1:1", environments="shared"
    )
    with BackgroundRuntime(health_fleet, config, ["hello", "streaming"]) as rt:
        client = httpx.Client(base_url=rt.url, timeout=60)
        deadline = time.monotonic() + 60
        for module in ("hello", "streaming"):
            while True:
                functions = [f["name"] for f in client.get(f"/api/modules/{module}/functions").json()]
                if "health" in functions or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert "health" in functions, functions
            response = client.post(f"/api/modules/{module}/functions/health", json={})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["module"] == module and body["status"] == "ok"
        # The wrapper hook ran inside the replica too: the replica counted the health call it served.
        again = client.post("/api/modules/hello/functions/health", json={}).json()
        assert again["calls"].get("health", 0) >= 1
        client.close()
