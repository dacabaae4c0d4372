"""A module whose app.py cannot be parsed when the runtime starts: the runtime keeps serving the others, and that
module's calls and listings say where the file is broken (as they do when it breaks while running)."""

from __future__ import annotations

import httpx
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for


def test_a_syntax_error_at_start_is_reported_where_it_is_and_the_rest_keeps_serving(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    app = root / "modules" / "other" / "app.py"
    lines = app.read_text().splitlines()
    app.write_text("\n".join([*lines, "", "def broken(:", ""]))
    where = f"app.py:{len(lines) + 2}: syntax error"

    rt = start_runtime(root, ["basic", "other"], replicas="1:1")
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        wait_for(lambda: ready_replicas(client, "basic"), 60, "basic ready")

        listed = client.get("/api/modules")
        assert listed.status_code == 200, listed.text
        other = {m["name"]: m for m in listed.json()}["other"]
        assert other["functions"] == []
        assert where in other["app_error"]

        functions = client.get("/api/modules/other/functions")
        assert functions.status_code == 200 and functions.json() == []

        r = client.post("/api/modules/other/functions/anything", json={})
        assert r.status_code == 500, r.text
        assert "could not start" in r.json()["error"] and where in r.json()["error"]

        assert client.post("/api/modules/basic/functions/add", json={"x": 2, "y": 3}).json() == 5
        client.close()
    finally:
        rt.close()
