"""Hot reload: a change in a module or in a shared library it depends on restarts only that module's replicas,
after their in-flight jobs finish."""

from __future__ import annotations

import httpx
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for


def _version(client: httpx.Client) -> dict:
    return client.post("/api/modules/basic/functions/version", json={}).json()


def test_module_and_shared_lib_changes_reload_only_the_affected_module(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    rt = start_runtime(root, ["basic", "other"], reload=True, replicas="1:1")
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        wait_for(lambda: ready_replicas(client, "basic") and ready_replicas(client, "other"), what="replicas")
        before = _version(client)
        assert (before["module"], before["lib"]) == ("app-1", "lib-1")
        other_session = client.post("/api/modules/other/functions/echo", json={}).json()["session"]

        busy = client.post("/api/modules/basic/functions/slow/jobs", json={"seconds": 1.5}).json()["job_id"]
        wait_for(lambda: client.get(f"/api/jobs/{busy}").json()["state"] == "running", what="the slow job")
        app = root / "modules" / "basic" / "app.py"
        app.write_text(app.read_text().replace('MODULE_VERSION = "app-1"', 'MODULE_VERSION = "app-2"'))
        after = wait_for(lambda: (v := _version(client))["module"] == "app-2" and v, what="the module reload")
        assert after["session"] != before["session"]
        finished = client.get(f"/api/jobs/{busy}/result", params={"wait": 30})
        assert finished.status_code == 200  # drained: the old replica finished its job before it stopped
        assert client.get(f"/api/jobs/{busy}").json()["replica"] == "basic-1"

        lib = root / "shared" / "fixlib" / "src" / "fixlib" / "__init__.py"
        lib.write_text(lib.read_text().replace('"lib-1"', '"lib-2"'))
        latest = wait_for(lambda: (v := _version(client))["lib"] == "lib-2" and v, what="the shared-lib reload")
        assert latest["module"] == "app-2" and latest["session"] != after["session"]

        assert client.post("/api/modules/other/functions/echo", json={}).json()["session"] == other_session
        (other,) = client.get("/api/modules").json()[1]["replicas"]
        assert other["id"] == "other-1" and other["restarts"] == 0
        client.close()
    finally:
        rt.close()
