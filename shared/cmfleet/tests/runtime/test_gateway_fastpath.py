"""The gateway's hot path (``GatewayConnection``): calls answered without the ASGI app, mixed with requests the app
serves on the same keep-alive connection; bodies in pieces, pipelining, ``Connection: close`` and the access
token."""

from __future__ import annotations

import http.client
import json
import socket
import time

import httpx
from runtime_support import copy_fleet, ready_replicas, wait_for

from cmfleet.discovery import Repository
from cmfleet.runtime.config import load_config
from cmfleet.runtime.server import BackgroundRuntime

CALL = "/api/modules/basic/functions/add"


def _port(rt) -> int:
    return int(rt.url.rsplit(":", 1)[1])


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, **headers: str) -> tuple[int, dict, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    r = conn.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def _responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """Read ``count`` Content-Length responses from a raw socket: (status, body) each."""
    data, out = b"", []
    sock.settimeout(30)
    while len(out) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].decode("latin-1").split("\r\n")
            length = next(int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:"))
            if len(data) >= end + 4 + length:
                out.append((int(head[0].split()[1]), data[end + 4 : end + 4 + length]))
                data = data[end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(out)} response(s)"
        data += chunk
    return out


def test_calls_and_errors_on_the_hot_path_answer_as_through_the_asgi_app(fleet_runtime):
    rt, client = fleet_runtime  # client: one keep-alive connection that served GET /api/modules
    conn = http.client.HTTPConnection("127.0.0.1", _port(rt), timeout=30)
    try:
        status, headers, body = _post(conn, CALL, b'{"x": 10, "y": 20}')
        assert (status, body) == (200, b"30")
        assert headers["x-cmfleet-replica"] == "basic-1" and headers["content-type"] == "application/json"
        assert headers["x-cmfleet-cold-start"] == "false" and float(headers["x-cmfleet-duration-ms"]) > 0
        job_id = headers["x-cmfleet-job-id"]
        cases = [
            ("/api/modules/basic/functions/typed_add", b'{"x": "one"}'),  # 422 with fields
            ("/api/modules/basic/functions/nope", b"{}"),  # 404 with known
            ("/api/modules/nope/functions/add", b"{}"),  # 404 unknown module
            (CALL, b"{not json"),  # 400
            ("/api/modules/basic/functions/fail", b"{}"),  # 500 the function raised
        ]
        for path, event in cases:
            fast = _post(conn, path, event)
            slow = client.post(path, content=event, headers={"Content-Type": "application/json"})
            assert fast[0] == slow.status_code
            fast_json, slow_json = json.loads(fast[2]), slow.json()
            for body in (fast_json, slow_json):  # the job id differs, and the hint names it
                job = body.pop("job_id", None)
                if "hint" in body:
                    body["hint"] = body["hint"].replace(job, "<job>")
            assert fast_json == slow_json
        # a request the ASGI app serves, then calls again on the same connection
        conn.request("GET", f"/api/jobs/{job_id}")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["state"] == "succeeded"
        status, headers, body = _post(conn, CALL, b'{"x": 1, "y": 2}')
        assert (status, body) == (200, b"3") and headers["x-cmfleet-replica"] == "basic-1"
    finally:
        conn.close()


def test_a_body_over_the_limit_is_refused_413(fleet_runtime):
    rt, _ = fleet_runtime
    conn = http.client.HTTPConnection("127.0.0.1", _port(rt), timeout=30)
    try:
        status, _, body = _post(conn, CALL, b'{"x": "' + b"a" * 5000 + b'", "y": 1}')
        assert status == 413 and b"larger than the limit" in body
    finally:
        conn.close()


def test_a_request_in_pieces_and_pipelined_requests_are_answered_in_order(fleet_runtime):
    rt, _ = fleet_runtime
    with socket.create_connection(("127.0.0.1", _port(rt)), timeout=30) as sock:

        def request(x: int) -> bytes:
            body = b'{"x": %d, "y": 1}' % x
            return b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (CALL.encode(), len(body), body)

        first = request(1)
        for piece in (first[:10], first[10:60], first[60:-3], first[-3:]):  # head, then the body in two parts
            sock.sendall(piece)
            time.sleep(0.05)
        assert _responses(sock, 1) == [(200, b"2")]
        sock.sendall(request(2) + request(3) + request(4))  # pipelined: one answer after the other, in order
        assert _responses(sock, 3) == [(200, b"3"), (200, b"4"), (200, b"5")]


def test_connection_close_is_answered_then_the_connection_closes(fleet_runtime):
    rt, _ = fleet_runtime
    with socket.create_connection(("127.0.0.1", _port(rt)), timeout=30) as sock:
        body = b'{"x": 5, "y": 5}'
        sock.sendall(b"POST %s HTTP/1.1\r\nConnection: close\r\nContent-Length: 16\r\n\r\n%s" % (CALL.encode(), body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        head, _, payload = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"\r\nconnection: close" in head.lower() and payload == b"10"


def test_the_hot_path_requires_the_access_token_when_there_is_one(tmp_path):
    root = copy_fleet(tmp_path / "repo")
    config = load_config(Repository.load(root).config, port=0, runtime_port=0, reload=False, terminal_logs=False)
    config.access_token = "s3cret-token"  # set when bound off loopback; here on loopback to test the check alone
    with BackgroundRuntime(root, config, ["other"]) as rt:
        auth = {"Authorization": "Bearer s3cret-token"}
        with httpx.Client(base_url=rt.url, headers=auth, timeout=30) as client:
            wait_for(lambda: ready_replicas(client, "other"), what="other's replica")
        path = "/api/modules/other/functions/echo"
        for headers, expected in [({}, 401), ({"Authorization": "Bearer wrong"}, 401), (auth, 200)]:
            conn = http.client.HTTPConnection("127.0.0.1", _port(rt), timeout=30)
            try:
                status, _, body = _post(conn, path, b'{"a": 1}', **headers)
                assert status == expected, body
                if expected == 200:
                    assert json.loads(body)["event"] == {"a": 1}
            finally:
                conn.close()


def test_expect_100_continue_is_answered_before_the_body(fleet_runtime):
    rt, _ = fleet_runtime
    with socket.create_connection(("127.0.0.1", _port(rt)), timeout=30) as sock:
        body = b'{"x": 20, "y": 22}'
        head = b"POST %s HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (
            CALL.encode(),
            len(body),
        )
        sock.sendall(head)
        sock.settimeout(5)
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"  # at once: curl would wait 1 s without it
        sock.sendall(body)
        assert _responses(sock, 1) == [(200, b"42")]
