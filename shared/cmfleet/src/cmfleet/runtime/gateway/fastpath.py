"""The gateway's fast call path: one connection class on the HTTP layer (``http.py``) that answers a plain call
itself and hands every other request to the ASGI app (``routes.py``) through ``asgi.py``."""

from __future__ import annotations

import json
import secrets
from http import HTTPStatus
from typing import Any

from cmfleet.runtime import http
from cmfleet.runtime.gateway.routes import ERROR_STATUS, NDJSON, Gateway, job_error_content
from cmfleet.runtime.http import HttpConnection, HttpLimits, HttpServer
from cmfleet.runtime.scheduler import SUCCEEDED, Job


def job_answer(job: Job) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the answer to a finished call (the replica's result body passed through)."""
    if job.state == SUCCEEDED:
        payload = json.dumps(job.items).encode() if job.streamed else (job.result or b"null")
        status = 200
    else:
        payload = json.dumps(job_error_content(job, job_id=job.id)).encode()
        status = ERROR_STATUS.get(job.state, 500)
    duration = job.duration_ms if job.duration_ms is not None else 0
    headers = [
        (b"x-cmfleet-job-id", job.id.encode()),
        (b"x-cmfleet-replica", (job.replica or "").encode()),
        (b"x-cmfleet-cold-start", b"true" if job.cold_start else b"false"),
        (b"x-cmfleet-duration-ms", f"{duration:g}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(payload)),
    ]
    return status, headers, payload


_NDJSON = NDJSON.encode()
_STATUS_LINES = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, HTTPStatus(code).phrase.encode())
    for code in (200, 400, 404, 413, 422, 429, 500, 502, 504)
}
# job_answer's head for a succeeded, not streamed call, as _write lays it out, in one format
_OK_HEAD = (
    b"HTTP/1.1 200 OK\r\nx-cmfleet-job-id: %s\r\nx-cmfleet-replica: %s\r\nx-cmfleet-cold-start: %s\r\n"
    b"x-cmfleet-duration-ms: %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
)


def gateway_server(gateway: Gateway, limits: HttpLimits) -> HttpServer:
    """The gateway port's server: calls on the fast path, everything else through the ASGI app."""
    app = gateway.app()
    token = getattr(gateway.runtime.config, "access_token", None)
    server = HttpServer(limits, lambda: GatewayConnection(server, gateway, app, token))
    return server


class GatewayConnection(HttpConnection):
    """One gateway connection. A plain ``POST /api/modules/{m}/functions/{f}`` (no query, not streamed, the
    bearer token when one is needed) is answered from the job's done-callback: no ASGI scope, task or routing per
    call (that machinery cost more CPU per job than the scheduler and the replica protocol together). Any other
    request goes to the ASGI app (routes, console, log stream): the same answers either way."""

    def __init__(self, server: HttpServer, gateway: Gateway, app: Any, token: str | None) -> None:
        super().__init__(server)
        self.gateway, self.app = gateway, app
        self.token = token.encode() if token else None
        limit = gateway.runtime.config.max_body
        self.body_limit = limit
        self.body_limit_message = f"the event is larger than the limit of {limit} bytes"
        self.job: Job | None = None  # the call whose answer this connection waits for
        self.cycle: Any = None  # the request the ASGI app serves

    def lost(self) -> None:
        self.job = None  # the answer of a call still running is dropped
        if self.cycle is not None:
            self.cycle.disconnect()
            self.cycle = None

    def handle(self, request: http.Request) -> None:
        call = self._call(request)
        if call is None:
            from cmfleet.runtime.asgi import AsgiCycle

            self.cycle = AsgiCycle(self, request, self.app)
            return
        module, function = call
        self.read_body(request, lambda body: self._submit(module, function, body))

    def _call(self, request: http.Request) -> tuple[str, str] | None:
        """(module, function) of a call the fast path answers, else None."""
        target = request.target
        if request.method != b"POST" or target.find(b"%") >= 0 or target.find(b"?") >= 0:  # find: see http.target_path
            return None
        path = target.split(b"/")  # b"", b"api", b"modules", module, b"functions", function
        if len(path) != 6 or path[1] != b"api" or path[2] != b"modules" or path[4] != b"functions":
            return None
        if not path[3] or not path[5]:
            return None
        accept = request.header(b"accept")
        if accept is not None and accept.find(_NDJSON) >= 0:
            return None
        if self.token is not None:
            auth = request.header(b"authorization") or b""
            if auth[:7].lower() != b"bearer " or not secrets.compare_digest(auth[7:].strip(), self.token):
                return None  # the ASGI app's TokenMiddleware answers (a cookie may do)
        try:
            return path[3].decode("ascii"), path[5].decode("ascii")
        except UnicodeDecodeError:
            return None

    def _submit(self, module: str, function: str, body: bytes) -> None:
        out = self.gateway.submit(module, function, body)
        if isinstance(out, Job):
            self.job = out
            out.when_done(self._answer)
            return
        status, content, extra = out
        payload = json.dumps(content).encode()
        headers = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
        self._write(status, headers, payload)

    def _answer(self, job: Job) -> None:
        """The call ended (called by the scheduler): write its answer."""
        if self.job is not job:
            return
        self.job = None
        if job.state == SUCCEEDED and not job.streamed:  # the usual answer, without job_answer's header list
            payload = job.result or b"null"
            duration = job.duration_ms if job.duration_ms is not None else 0
            cold = b"true" if job.cold_start else b"false"
            replica = (job.replica or "").encode()
            self._emit(_OK_HEAD % (job.id.encode(), replica, cold, f"{duration:g}".encode(), len(payload)), payload)
        else:
            self._write(*job_answer(job))

    def _write(self, status: int, headers: list[tuple[bytes, bytes]], payload: bytes) -> None:
        head = [_STATUS_LINES.get(status) or b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())]
        for name, value in headers:
            head.append(b"%s: %s\r\n" % (name, value))
        self._emit(b"".join(head), payload)

    def _emit(self, head: bytes, payload: bytes) -> None:
        """Write an answer: its status line and headers (``head``, without the blank line), then ``payload``."""
        request = self.current
        if request is not None and not request.keep_alive:
            head += b"connection: close\r\n"
        self.respond(b"%s\r\n%s" % (head, payload))
