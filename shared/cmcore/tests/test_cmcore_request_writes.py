"""``cmcore.request_writes``: urllib3 sends a small request body in the same write as its header block, and every
request still reaches the server byte for byte. Each case runs in a fresh interpreter (real urllib3 and requests,
a real HTTP server on loopback), so the change never leaks into the test process; the client's socket is the real
one, wrapped only to count its writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from cmcore.request_writes import MAX_JOINED, OPT_OUT_VARIABLE

_CLIENT = textwrap.dedent(
    """
    import hashlib, http.server, io, json, sys, threading
    import requests, urllib3
    from cmcore.request_writes import one_write_requests

    class Echo(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            out = json.dumps({"sha": hashlib.sha256(body).hexdigest(), "type": self.headers.get("Content-Type")})
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out.encode())

        do_PUT = do_GET = do_POST

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    applied = one_write_requests() if sys.argv[1] == "one" else False

    class Counted:
        # the connection's real socket; its writes are counted
        def __init__(self, sock, writes):
            self._sock, self._writes = sock, writes

        def sendall(self, data, *args):
            self._writes.append(len(data))
            return self._sock.sendall(data, *args)

        def __getattr__(self, name):
            return getattr(self._sock, name)

    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.server_port, maxsize=1, block=True)
    conn = pool._get_conn()
    conn.connect()
    writes = []
    conn.sock = Counted(conn.sock, writes)
    pool._put_conn(conn)

    def sha(data):
        return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()

    cases = {
        "bytes": (b'{"x": 10, "y": 20}', {"Content-Type": "application/json"}),
        "str": ("\u00fcn\u00efcode \u2713", {"Content-Type": "text/plain; charset=utf-8"}),
        "none": (None, {}),
        "large": (b"z" * (int(sys.argv[2]) + 1), {}),
        "file": (io.BytesIO(b"from a file"), {"Content-Length": "11"}),
    }
    out = {"applied": applied, "cases": {}}
    for name, (body, headers) in cases.items():
        expected = sha(body.getvalue() if isinstance(body, io.BytesIO) else (body or b""))
        del writes[:]
        answer = pool.request("POST", "/echo", body=body, headers=headers)
        got = json.loads(answer.data)
        out["cases"][name] = {"writes": len(writes), "intact": got["sha"] == expected, "type": got["type"]}
    # the SDK's own way: a requests.Session, twice over one keep-alive connection (the second is joined)
    session = requests.Session()
    url = f"http://127.0.0.1:{server.server_port}/result"
    out["session"] = [
        session.post(url, json={"n": n}).json()["sha"] == sha(json.dumps({"n": n})) for n in (1, 2)
    ]
    print(json.dumps(out))
    """
)


def _run(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != OPT_OUT_VARIABLE}
    proc = subprocess.run(
        [sys.executable, "-c", _CLIENT, mode, str(MAX_JOINED)], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_small_body_goes_in_the_same_write_as_its_header_block():
    split, one = _run("split"), _run("one")
    assert one["applied"] is True and split["applied"] is False
    for name in ("bytes", "str"):
        assert split["cases"][name]["writes"] == 2, split  # urllib3's own: the header block, then the body
        assert one["cases"][name]["writes"] == 1, one
    for out in (split, one):
        assert all(case["intact"] for case in out["cases"].values()), out
        assert out["cases"]["bytes"]["type"] == "application/json"
        assert out["session"] == [True, True], out


def test_other_requests_are_written_as_urllib3_writes_them():
    split, one = _run("split"), _run("one")
    # no body: one write either way; a body above the limit and a file body keep their own writes
    for name in ("none", "large", "file"):
        assert one["cases"][name]["writes"] == split["cases"][name]["writes"], (name, one, split)
    assert one["cases"]["none"]["writes"] == 1
    assert one["cases"]["large"]["writes"] >= 2 and one["cases"]["file"]["writes"] >= 2


_FAILING = textwrap.dedent(
    """
    import json, socket
    import urllib3
    from cmcore.request_writes import one_write_requests

    one_write_requests()
    listener = socket.create_server(("127.0.0.1", 0))
    conn = urllib3.connection.HTTPConnection("127.0.0.1", listener.getsockname()[1])
    conn.connect()
    peer, _ = listener.accept()
    sent = []

    class Failing:
        # the real socket, but its writes fail: as when the peer has gone
        def __init__(self, sock):
            self._sock = sock

        def sendall(self, data, *args):
            sent.append(len(data))
            raise BrokenPipeError("the peer closed")

        def __getattr__(self, name):
            return getattr(self._sock, name)

    conn.sock = Failing(conn.sock)
    try:
        conn.request("POST", "/", body=b'{"x": 1}')
        error = None
    except BrokenPipeError as exc:
        error = str(exc)
    print(json.dumps({"error": error, "sent": sent, "held": getattr(conn, "_cmcore_held", "absent")}))
    """
)


def test_a_failed_write_raises_as_before_and_holds_nothing_back():
    proc = subprocess.run([sys.executable, "-c", _FAILING], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["error"] == "the peer closed"
    assert len(out["sent"]) == 1  # one joined write was tried; nothing is left to go out later
    assert out["held"] is None


_SWITCH = textwrap.dedent(
    """
    import json
    from cmcore.request_writes import OPT_OUT_VARIABLE, one_write_requests

    print(json.dumps([one_write_requests({OPT_OUT_VARIABLE: "split"}), one_write_requests(), one_write_requests()]))
    """
)


def test_it_can_be_turned_off_and_applies_once():
    proc = subprocess.run([sys.executable, "-c", _SWITCH], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [False, True, True]
