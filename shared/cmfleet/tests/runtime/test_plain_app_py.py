"""`python app.py` alone still works: the template's way of starting a module, served by `cmfleet dev`.

The replica command is the module's own `app.py` (the SDK's atexit start-up), not cmfleet's entrypoint, so this
also shows that any command can be a module's replica.
"""

from __future__ import annotations

import sys

import httpx
from runtime_support import ready_replicas, wait_for

from cmfleet.discovery import find_root
from cmfleet.runtime.config import load_config
from cmfleet.runtime.server import BackgroundRuntime


def test_python_app_py_is_served_by_the_runtime(tmp_path, monkeypatch):
    root = find_root()
    monkeypatch.setenv("CMFLEET_STATE_DIR", str(tmp_path / "state"))  # the runtime's state, not the checkout's
    tool = {"dev": {"modules": {"hello": {"command": [sys.executable, "app.py"], "replicas": "1:1"}}}}
    config = load_config(tool, port=0, runtime_port=0, reload=False, terminal_logs=False)
    with BackgroundRuntime(root, config, ["hello"]) as rt:
        client = httpx.Client(base_url=rt.url, timeout=60)
        wait_for(lambda: ready_replicas(client, "hello"), what="the app.py replica")
        response = client.post("/api/modules/hello/functions/add", json={"x": 10, "y": 20})
        assert response.status_code == 200 and response.json() == 30
        functions = {f["name"]: f for f in client.get("/api/modules/hello/functions").json()}
        # Only the SDK's own registrations: app.py alone knows nothing of cmfleet's plugins.
        assert set(functions) == {"add", "hello"}
        assert functions["add"]["schema"]["functionName"] == "add"
        client.close()
