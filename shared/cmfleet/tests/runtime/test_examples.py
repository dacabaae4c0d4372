"""Every example module of the repository, served by the unchanged SDK through `cmfleet dev`."""

from __future__ import annotations

import httpx
from runtime_support import ready_replicas, start_runtime, wait_for

from cmfleet.discovery import find_root

EXAMPLES = ["hello", "typed", "streaming", "wordcount"]


def test_example_modules_answer_through_the_gateway(tmp_path, monkeypatch):
    root = find_root()
    monkeypatch.setenv("CMFLEET_STATE_DIR", str(tmp_path / "state"))  # state and venvs outside the checkout
    rt = start_runtime(root, EXAMPLES, replicas="1:1", concurrency=1)
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        wait_for(lambda: all(ready_replicas(client, m) for m in EXAMPLES), what="one replica per example module")
        assert client.post("/api/modules/hello/functions/add", json={"x": 10, "y": 20}).json() == 30
        assert client.post("/api/modules/hello/functions/hello", json={"name": "Ada"}).json() == "Hello, Ada!"
        reading = {"sensor": "s1", "taken_on": "2026-01-31", "values": [1.0, 3.0, 5.0], "threshold": 2.0}
        assert client.post("/api/modules/typed/functions/check_reading", json=reading).json() == {
            "mean": 3.0,
            "max": 5.0,
            "above_threshold": 2.0,
        }
        assert client.post("/api/modules/typed/functions/next_day", json=reading).json() == "2026-02-01"
        bad = client.post("/api/modules/typed/functions/check_reading", json={**reading, "taken_on": "soon"})
        assert bad.status_code == 422 and bad.json()["fields"][0]["path"] == "$.taken_on"
        assert client.post("/api/modules/streaming/functions/count", json={"start": 2, "stop": 5}).json() == [2, 3, 4]
        words = client.post("/api/modules/streaming/functions/words?stream=1", json={"text": "a b c"}).text
        assert words.splitlines() == ['"a"', '"b"', '"c"']
        counts = client.post("/api/modules/wordcount/functions/count_words", json={"text": "to be or not to be"}).json()
        assert counts["to"] == 2 and counts["be"] == 2
        client.close()
    finally:
        rt.close()
