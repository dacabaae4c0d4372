"""The edge of both ports (runtime/http.py): malformed HTTP/1.1 framing sent raw, over TLS to the runtime API and
plain to the gateway. Each case gets its exact status, then the connection closes, with no second response (a
request smuggled behind it is never answered); slow heads and silent connections are closed after the header
timeout; past the connection cap new connections get 503; and calls are served throughout."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

import httpx
import pytest
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for

CALL = b"/api/modules/other/functions/echo"
SMUGGLED = b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n"
HEADER_TIMEOUT = 1.0
MAX_HEADER = 4096
MAX_CONNECTIONS = 24


def _post(path: bytes, headers: bytes, body: bytes = b"") -> bytes:
    return b"POST " + path + b" HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n" + body


def _p(headers: bytes, body: bytes = b"") -> Callable[[bytes, bytes], bytes]:
    """A malformed POST: given the path and the auth header line, the request."""
    return lambda path, auth: _post(path, auth + headers, body)


# (name, request given the path and an auth header line, expected status); a valid request (SMUGGLED) follows each
CASES = [
    ("content-length 0 then N", _p(b"Content-Length: 0\r\nContent-Length: 5\r\n", b"hello"), 400),
    ("duplicate equal content-length", _p(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hel"), 400),
    ("content-length and chunked", _p(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400),
    ("chunked and content-length", _p(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400),
    ("gzip, chunked", _p(b"Transfer-Encoding: gzip, chunked\r\n", b"2\r\nab\r\n0\r\n\r\n"), 501),
    ("gzip alone", _p(b"Transfer-Encoding: gzip\r\n", b"ab"), 501),
    ("chunked, gzip", _p(b"Transfer-Encoding: chunked, gzip\r\n", b"ab"), 400),
    ("chunked twice", _p(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400),
    ("content-length -5", _p(b"Content-Length: -5\r\n"), 400),
    ("content-length +2", _p(b"Content-Length: +2\r\n", b"ab"), 400),
    ("content-length 1_0", _p(b"Content-Length: 1_0\r\n", b"ab"), 400),
    ("content-length list", _p(b"Content-Length: 1, 1\r\n", b"a"), 400),
    ("content-length empty", _p(b"Content-Length: \r\n", b"a"), 400),
    ("content-length overflow", _p(b"Content-Length: 99999999999999999999999\r\n"), 400),
    ("chunk size 0x2", _p(b"Transfer-Encoding: chunked\r\n", b"0x2\r\nab\r\n0\r\n\r\n"), 400),
    ("chunk size -1", _p(b"Transfer-Encoding: chunked\r\n", b"-1\r\nab\r\n0\r\n\r\n"), 400),
    ("chunk size with a space", _p(b"Transfer-Encoding: chunked\r\n", b"2 \r\nab\r\n0\r\n\r\n"), 400),
    ("chunk data then junk", _p(b"Transfer-Encoding: chunked\r\n", b"2\r\nabXX0\r\n\r\n"), 400),
    ("chunk data then bare LF", _p(b"Transfer-Encoding: chunked\r\n", b"2\r\nab\n0\r\n\r\n"), 400),
    ("obsolete line folding", _p(b"X-A: a\r\n b\r\nContent-Length: 0\r\n"), 400),
    ("space before colon", _p(b"Content-Length : 0\r\n"), 400),
    ("NUL in a header", _p(b"X-A: a\x00b\r\nContent-Length: 0\r\n"), 400),
    ("bare LF line ends", lambda p, a: b"POST " + p + b" HTTP/1.1\nHost: t\n" + a + b"Content-Length: 0\n\n", 400),
    ("invalid method", lambda p, a: b"G@T " + p + b" HTTP/1.1\r\nHost: t\r\n" + a + b"\r\n", 400),
    (
        "HTTP/2.0 in plain text",
        lambda p, a: b"POST " + p + b" HTTP/2.0\r\nHost: t\r\n" + a + b"Content-Length: 0\r\n\r\n",
        505,
    ),
    ("upgrade", _p(b"Connection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n"), 400),
    ("head over max-header", _p(b"X-Big: " + b"a" * MAX_HEADER + b"\r\nContent-Length: 0\r\n"), 431),
]


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    root = copy_fleet(tmp_path_factory.mktemp("fleet") / "repo")
    rt = start_runtime(
        root,
        ["other"],
        header_timeout=HEADER_TIMEOUT,
        keep_alive=2.0,
        max_header=MAX_HEADER,
        max_connections=MAX_CONNECTIONS,
        max_body=4096,
        poll_hold=1.0,
    )
    client = httpx.Client(base_url=rt.url, timeout=30)
    wait_for(lambda: ready_replicas(client, "other"), what="other's replica")
    tls = ssl.create_default_context(cafile=str(root / ".cmfleet" / "dev" / "tls" / "ca.pem"))
    # on the runtime port, the malformed requests answer a finished job of other-1 with its token: a late answer,
    # whose body is read (and dropped), so the framing of the body is what gets refused
    done = client.post(CALL.decode(), json={})
    assert done.headers["x-cmfleet-replica"] == "other-1"
    replicas = rt.call(lambda: {r.id: r.token for r in rt.runtime.scheduler.modules["other"].replicas})
    results = f"/interactive-module/api/internal-query/results/{done.headers['x-cmfleet-job-id']}"
    rt.late_answer = (results.encode(), b"Module-Auth-Token: %s\r\n" % replicas["other-1"].encode())
    yield rt, client, tls
    client.close()
    rt.close()


def _gateway(rt) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(rt.url.rsplit(":", 1)[1])), timeout=10)


def _runtime(rt, tls: ssl.SSLContext) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", rt.runtime.runtime_port), timeout=10)
    return tls.wrap_socket(raw, server_hostname="localhost")


def _read_to_close(sock: socket.socket, within: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (fails if it stays open ``within`` s)."""
    sock.settimeout(within)
    data = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            return data
        except TimeoutError:
            break
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the connection stayed open; received so far: {data[:300]!r}")


def _statuses(data: bytes) -> list[int]:
    """The status of every response in ``data`` (Content-Length framed, as every refusal is)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep and head.startswith(b"HTTP/1.1 "), f"not an HTTP response: {data[:200]!r}"
        lines = head.split(b"\r\n")
        out.append(int(lines[0].split()[1]))
        length = next(int(v) for k, _, v in (h.partition(b":") for h in lines[1:]) if k.lower() == b"content-length")
        data = rest[length:]
    return out


def _call_works(client: httpx.Client) -> None:
    r = client.post(CALL.decode(), json={"n": 1})
    assert r.status_code == 200 and r.json()["event"] == {"n": 1}


@pytest.mark.parametrize(("name", "build", "status"), CASES, ids=[c[0] for c in CASES])
def test_malformed_framing_is_refused_once_then_closed_on_both_ports(edge, name, build, status):
    rt, client, tls = edge
    ports = (("gateway", lambda: _gateway(rt), (CALL, b"")), ("runtime", lambda: _runtime(rt, tls), rt.late_answer))
    for port, connect, (path, auth) in ports:
        with connect() as sock:
            sock.sendall(build(path, auth) + SMUGGLED)
            answers = _statuses(_read_to_close(sock))
        assert answers == [status], f"{port}: {name}: {answers}"
    _call_works(client)


def test_a_valid_request_before_a_malformed_one_is_answered_first(edge):
    rt, client, _ = edge
    good = b'{"n": 2}'
    with _gateway(rt) as sock:
        call = b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (CALL, len(good), good)
        sock.sendall(call + _post(CALL, b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n") + SMUGGLED)
        assert _statuses(_read_to_close(sock)) == [200, 400]
    _call_works(client)


def test_a_body_over_the_limit_is_413_and_closed(edge):
    rt, client, _ = edge
    with _gateway(rt) as sock:
        sock.sendall(_post(CALL, b"Content-Length: 5000\r\n", b"x" * 5000) + SMUGGLED)
        data = _read_to_close(sock)
    assert _statuses(data) == [413] and b"larger than the limit of 4096 bytes" in data
    with _gateway(rt) as sock:  # chunked: counted as it comes
        sock.sendall(_post(CALL, b"Transfer-Encoding: chunked\r\n", b"1001\r\n" + b"x" * 4097 + b"\r\n") + SMUGGLED)
        assert _statuses(_read_to_close(sock)) == [413]
    _call_works(client)


def test_slow_heads_and_silent_connections_are_closed_after_the_header_timeout(edge):
    rt, client, tls = edge
    started = time.monotonic()
    gateway_partial, gateway_silent = _gateway(rt), _gateway(rt)
    runtime_partial = _runtime(rt, tls)
    no_handshake = socket.create_connection(("127.0.0.1", rt.runtime.runtime_port), timeout=10)
    try:
        gateway_partial.sendall(b"POST " + CALL + b" HTTP/1.1\r\nHost: t\r\n")
        runtime_partial.sendall(b"GET /interactive-module/api/internal-query/job HTTP/1.1\r\nHost:")
        _call_works(client)  # served meanwhile
        assert _statuses(_read_to_close(gateway_partial)) == [408]
        assert _statuses(_read_to_close(runtime_partial)) == [408]
        assert _read_to_close(gateway_silent) == b""
        assert _read_to_close(no_handshake) == b""  # a TLS handshake never started: closed too
        assert time.monotonic() - started < HEADER_TIMEOUT + 5
    finally:
        for sock in (gateway_partial, gateway_silent, runtime_partial, no_handshake):
            sock.close()
    _call_works(client)


def test_an_idle_keep_alive_connection_closes_after_the_keep_alive_timeout(edge):
    rt, client, _ = edge
    with _gateway(rt) as sock:
        body = b'{"n": 3}'
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (CALL, len(body), body))
        started = time.monotonic()
        assert _statuses(_read_to_close(sock)) == [200]
        assert 1.5 < time.monotonic() - started < 7


def test_connections_past_the_cap_get_503(edge):
    rt, client, _ = edge
    held = []
    try:
        for _ in range(MAX_CONNECTIONS + 5):
            held.append(_gateway(rt))
        time.sleep(0.2)
        refused = []
        for sock in held[-5:]:
            data = _read_to_close(sock, within=3)
            refused.append(_statuses(data))
        assert refused == [[503]] * 5
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: client.post(CALL.decode(), json={}).status_code == 200, what="a call after the flood")
