"""Fixtures of the runtime tests (helpers live in runtime_support.py)."""

from __future__ import annotations

import httpx
import pytest
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for


@pytest.fixture(scope="module")
def fleet_runtime(tmp_path_factory):
    """basic + other + broken, one replica each (concurrency 2), short timeouts, small body limit."""
    root = copy_fleet(tmp_path_factory.mktemp("fleet") / "repo", '[tool.cmfleet.dev.modules.broken]\nreplicas = "0:1"')
    rt = start_runtime(root, ["basic", "other", "broken"], timeout=4, max_body=4096, poll_hold=1.0)
    client = httpx.Client(base_url=rt.url, timeout=30)
    wait_for(lambda: ready_replicas(client, "basic") and ready_replicas(client, "other"), what="replicas ready")
    yield rt, client
    client.close()
    rt.close()
