"""``cmfleet dev`` as a user runs it: the banner, a call, ``invoke --remote``, the access token off loopback, and
Ctrl-C / SIGTERM leaving no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
from runtime_support import copy_fleet, wait_for

from cmfleet.runtime.replicas import group_exists


def _start(root, *args: str) -> tuple[subprocess.Popen, str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmfleet", "dev", "--port", "0", "--runtime-port", "0", "--no-reload", *args],
        cwd=root,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**env, "COLUMNS": "300"},
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    banner = "".join(lines)
    match = re.search(r"gateway\s+(http://\S+)/api", banner)
    assert match, banner
    return proc, match.group(1), lines


def _stop_and_check(proc: subprocess.Popen, sig: int, pids: list[int]) -> None:
    proc.send_signal(sig)
    assert proc.wait(30) == 0
    # replicas and their SDK workers are gone (a killed worker may take a moment to be reaped by init)
    wait_for(lambda: not [pid for pid in pids if group_exists(pid)], timeout=10, what="no replica process left")


def test_ctrl_c_stops_everything_and_remote_invoke_works(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    proc, url, banner = _start(root, "basic", "other")
    try:
        text = "".join(banner)
        assert "console" in text and f"curl -X POST {url}/api/modules/basic/functions/" in text
        client = httpx.Client(base_url=url, timeout=60)
        assert client.post("/api/modules/basic/functions/add", json={"x": 10, "y": 20}).json() == 30
        remote = subprocess.run(
            [sys.executable, "-m", "cmfleet", "invoke", "basic", "add", '{"x": 1, "y": 2}', "--remote", url, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert remote.returncode == 0, remote.stderr
        assert '"result": 3' in remote.stdout and '"replica": "basic-1"' in remote.stdout
        bad = subprocess.run(
            [sys.executable, "-m", "cmfleet", "invoke", "basic", "nope", "{}", "--remote", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode == 2 and "no function 'nope'" in bad.stderr
        failed = subprocess.run(
            [sys.executable, "-m", "cmfleet", "invoke", "basic", "fail", "{}", "--remote", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert failed.returncode == 1 and "kaboom" in failed.stderr
        pids = wait_for(
            lambda: [r["pid"] for m in client.get("/api/modules").json() for r in m["replicas"] if r["pid"]],
            what="replica pids",
        )
        assert len(pids) == 2
        client.close()
        _stop_and_check(proc, signal.SIGINT, pids)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    gone = subprocess.run(
        [sys.executable, "-m", "cmfleet", "invoke", "basic", "add", "{}", "--remote", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gone.returncode == 1 and "cannot reach" in gone.stderr


def test_non_loopback_host_needs_the_printed_token_and_sigterm_stops(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    proc, url, banner = _start(root, "other", "--host", "0.0.0.0")
    try:
        token = re.search(r"access token\s+(\S+)", "".join(banner)).group(1)
        api = url + "/api/modules"
        assert httpx.get(api).status_code == 401
        assert httpx.get(api, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        page = httpx.get(url + "/", params={"token": token})
        assert page.status_code == 200 and "cmfleet_token" in page.headers["set-cookie"]
        assert httpx.get(api, cookies={"cmfleet_token": token}).status_code == 200
        pids = wait_for(
            lambda: [
                r["pid"] for m in httpx.get(api, params={"token": token}).json() for r in m["replicas"] if r["pid"]
            ],
            what="replica pids",
        )
        _stop_and_check(proc, signal.SIGTERM, pids)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_module_whose_app_py_does_not_parse_still_starts_and_says_where(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    app = root / "modules" / "other" / "app.py"
    lines = app.read_text().splitlines()
    app.write_text("\n".join([*lines, "", "def broken(:", ""]))
    proc, url, banner = _start(root, "other")
    try:
        # the banner's example names no function it cannot know, and the call says which line breaks
        assert f"curl -X POST {url}/api/modules/other/functions/FUNCTION -d '{{}}'" in "".join(banner)
        r = httpx.post(f"{url}/api/modules/other/functions/anything", json={}, timeout=60)
        assert r.status_code == 500 and f"app.py:{len(lines) + 2}: syntax error" in r.json()["error"]
        _stop_and_check(proc, signal.SIGINT, [])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
