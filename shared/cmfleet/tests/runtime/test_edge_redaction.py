"""Source secrets never leave the runtime, in any encoding: a module (the official SDK) that logs its secret through
the SDK logger (JSON-escaped), prints its ``repr``/``ascii`` and JSON forms, and raises errors quoting it; the secret
holds quotes, a backslash and non-ASCII text. Nothing of it may appear in the gateway's error bodies, ``/api/jobs``,
the console's API, ``/api/logs``, the Server-Sent Events stream or the terminal."""

from __future__ import annotations

import json
import threading
import time

import httpx
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for

SECRET = "k3y\"with'quote\\back-slash-é-ünï-秘密"

APP = """
import json
import sys

from compute_modules.annotations import function
from compute_modules.logging import get_logger

log = get_logger("leaky")
log.setLevel("INFO")


def _secret(context):
    return context["sources"]["LeakApi"]["apiKey"]


@function
def leak(context, event):
    secret = _secret(context)
    log.info("the key is %s", secret)
    print("repr:", repr(secret), "ascii:", ascii(secret), flush=True)
    print(json.dumps({"k": secret}), flush=True)
    print(json.dumps({"k": secret}, ensure_ascii=False), file=sys.stderr, flush=True)
    print("raw:", secret, file=sys.stderr, flush=True)
    raise ValueError("secret is " + secret)


@function
def leak_repr(context, event):
    raise RuntimeError(repr({"key": _secret(context)}))


@function
def leak_json(context, event):
    raise RuntimeError(json.dumps({"key": _secret(context)}))
"""


def _forms(secret: str) -> list[str]:
    """The secret as a reader would find it: raw, in JSON strings, in a Python repr/ascii."""
    return [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        "back-slash-é-ünï-秘密",  # a distinctive tail: no part of the secret after its escapes either
        "back-slash-\\u00e9",
        "back-slash-\\xe9",
    ]


def _assert_clean(where: str, text: str) -> None:
    for form in _forms(SECRET):
        at = max(text.find(form) - 80, 0)
        assert form not in text, f"{where} shows the secret as {form!r}: ...{text[at : at + 200]}"


def test_a_secret_with_quotes_backslashes_and_non_ascii_never_shows(tmp_path, capfd):
    root = copy_fleet(tmp_path / "repo")
    module = root / "modules" / "leaky"
    module.mkdir()
    (module / "app.py").write_text(APP)
    (module / "pyproject.toml").write_text(
        '[project]\nname = "leaky"\nversion = "0.1.0"\ndependencies = ["foundry-compute-modules>=0.34"]\n'
    )
    with (root / "cmfleet.local.toml").open("a", encoding="utf-8") as fh:
        fh.write(f"\n[sources.LeakApi]\nsecrets = {{ apiKey = {json.dumps(SECRET, ensure_ascii=False)} }}\n")
        fh.write('modules = ["leaky"]\n')
    rt = start_runtime(root, ["leaky"], terminal_logs=True, timeout=30)
    try:
        with httpx.Client(base_url=rt.url, timeout=30) as client:
            wait_for(lambda: ready_replicas(client, "leaky"), what="leaky's replica")
            streamed: list[str] = []
            stop = threading.Event()

            def follow() -> None:
                try:
                    with httpx.Client(base_url=rt.url, timeout=30) as own:
                        with own.stream("GET", "/api/logs/stream", params={"module": "leaky"}) as r:
                            for line in r.iter_lines():
                                streamed.append(line)
                                if stop.is_set():
                                    return
                except httpx.HTTPError:
                    return  # the runtime stopped

            reader = threading.Thread(target=follow, daemon=True)
            reader.start()
            time.sleep(0.3)
            answers = {}
            for fn in ("leak", "leak_repr", "leak_json"):
                r = client.post(f"/api/modules/leaky/functions/{fn}", json={})
                assert r.status_code == 500, r.text
                answers[fn] = r
                _assert_clean(f"the gateway's 500 body of {fn}", r.text)
                assert "***" in r.json()["error"], r.text
                job = client.get(f"/api/jobs/{r.headers['x-cmfleet-job-id']}")
                _assert_clean(f"/api/jobs/{{id}} of {fn}", job.text)
            streamed_call = client.post("/api/modules/leaky/functions/leak?stream=1", json={})
            _assert_clean("a streamed call's error line", streamed_call.text)
            async_job = client.post("/api/modules/leaky/functions/leak_repr/jobs", json={}).json()["job_id"]
            result = client.get(f"/api/jobs/{async_job}/result", params={"wait": 20})
            _assert_clean("/api/jobs/{id}/result", result.text)

            def logged() -> list[dict]:
                records = client.get("/api/logs", params={"module": "leaky", "limit": 10000}).json()
                return records if any("the key is ***" in rec["message"] for rec in records) else []

            records = wait_for(logged, what="the SDK's log line, redacted")
            messages = "\n".join(rec["message"] for rec in records)
            assert "raw: ***" in messages and '{"k": "***"}' in messages, messages
            _assert_clean("/api/logs", client.get("/api/logs", params={"limit": 10000}).text)
            _assert_clean("/api/jobs", client.get("/api/jobs", params={"limit": 1000}).text)
            _assert_clean("/api/modules", client.get("/api/modules").text)
            _assert_clean("the console's metrics", client.get("/console/api/metrics").text)
            _assert_clean("/metrics", client.get("/metrics").text)
            wait_for(lambda: any("raw: ***" in line for line in streamed), what="the log stream's lines")
            stop.set()
            _assert_clean("the log stream", "\n".join(streamed))
    finally:
        rt.close()
    out, err = capfd.readouterr()
    assert "the key is ***" in out + err
    _assert_clean("the terminal", out + err)
