"""A module whose ``app.py`` does not parse when ``cmfleet dev`` starts: the console lists it with the file:line
where it breaks, and the other modules stay usable (a real ``cmfleet dev``, a real headless chromium)."""

from __future__ import annotations

from console_support import DevServer, copy_examples, wait_for
from playwright.sync_api import expect


def test_the_console_shows_where_app_py_breaks_and_keeps_the_rest(tmp_path, browser_context):
    root = copy_examples(tmp_path / "repo")
    app = root / "modules" / "cold" / "app.py"
    lines = app.read_text().splitlines()
    app.write_text("\n".join([*lines, "", "def broken(:", ""]))
    where = f"app.py:{len(lines) + 2}: syntax error"

    server = DevServer(root, tmp_path / "cmfleet-dev.log", modules=["hello", "cold"])
    try:
        hello_ready = lambda: any(  # noqa: E731
            r["state"] == "ready"
            for m in server.client.get("/api/modules").json()
            if m["name"] == "hello"
            for r in m["replicas"]
        )
        wait_for(hello_ready, 60, "hello's replica ready")
        page = browser_context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server.url}/?token={server.token}")
        expect(page.locator('.module[data-module="cold"] pre.start-error')).to_contain_text(where)
        expect(page.locator('.module[data-module="hello"] tr.replica')).to_contain_text("ready")
        r = server.client.post("/api/modules/cold/functions/add", json={"x": 1, "y": 2})
        assert r.status_code == 500 and where in r.json()["error"]
        assert server.client.post("/api/modules/hello/functions/add", json={"x": 1, "y": 2}).json() == 3
        assert errors == []
        page.close()
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log.read_text()
