"""A scale-to-zero module checks calls against the schema derived from its app.py before any replica posted one:
a cold start gives the same 422 as a warm one (and no replica starts for a call that is refused)."""

from __future__ import annotations

import httpx
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for

TYPED = "/api/modules/basic/functions/typed_add"


def test_a_cold_module_refuses_a_bad_event_as_a_warm_one_does(tmp_path):
    root = copy_fleet(tmp_path / "repo", '[tool.cmfleet.dev.modules.basic]\nreplicas = "0:1"')
    rt = start_runtime(root, ["basic"], timeout=60)
    try:
        with httpx.Client(base_url=rt.url, timeout=60) as client:
            wait_for(lambda: rt.call(lambda: "basic" in rt.runtime.derived), 60, "basic's derived schemas")
            cold = client.post(TYPED, json={"x": "one"})
            assert cold.status_code == 422, cold.text
            assert sorted(f["path"] for f in cold.json()["fields"]) == ["$.x", "$.y"]  # x wrong, y missing
            mods = {m["name"]: m for m in client.get("/api/modules").json()}
            assert mods["basic"]["replicas"] == [] and not mods["basic"]["schemas_posted"]  # nothing started
            unknown = client.post("/api/modules/basic/functions/nope", json={})
            assert unknown.status_code == 404 and "typed_add" in unknown.json()["known"]

            ok = client.post(TYPED, json={"x": 1, "y": 2})  # a cold start; the replica posts its schemas
            assert ok.status_code == 200 and ok.json() == 3 and ok.headers["x-cmfleet-cold-start"] == "true"
            wait_for(lambda: ready_replicas(client, "basic"), what="basic's replica")
            wait_for(lambda: client.get("/api/modules").json()[0]["schemas_posted"], what="the posted schemas")
            warm = client.post(TYPED, json={"x": "one"})
            assert (warm.status_code, warm.json()) == (cold.status_code, cold.json())
    finally:
        rt.close()
