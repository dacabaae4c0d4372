"""The container-facing API (Foundry's internal-query API) over HTTPS, as the official SDK speaks it.

    GET  /interactive-module/api/internal-query/job                   200 computeModuleJobV1 envelope | 204 after ~5 s
    POST /interactive-module/api/internal-query/results/{jobId}       204 (Content-Length or chunked body)
    POST /interactive-module/api/internal-query/schemas               204, schemas stored for the module
    POST /interactive-module/api/internal-query/restart-notification  200 ["job ids the replica held"]

Every call carries ``Module-Auth-Token``: missing 401, unknown 403; a token names one replica of one module, so a
replica cannot take or answer another module's (or another replica's) jobs (403).

Each replica's open connections are counted (``Replica.connections``): a connection counts for the replica whose
token its first GET job (or schemas, restart notification) carried, until it closes. The SDK always keeps one
open (a parked long-poll, re-polled at once), so a hand-started replica with none for a while has stopped
(replicas.py). Counted per connection, not per request: the SDK's repeated GET job takes the fast path.

A small HTTP/1.1 server (an ``asyncio.Protocol`` parser) rather than an ASGI stack: it keeps the chunk boundaries
of a streamed result (the SDK sends one item per chunk, with no delimiter) and costs little CPU per job: no task
or coroutine per request, a parked long-poll is answered by the scheduler's call (no future, no loop trip).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from typing import Any

from cmfleet.runtime.scheduler import Job, JobRefused, Poll, Replica, Scheduler

PREFIX = "/interactive-module/api/internal-query"
JOB_PATH = f"{PREFIX}/job"
RESULTS_PATH = f"{PREFIX}/results"
_RESULT_PREFIX = RESULTS_PATH + "/"
SCHEMAS_PATH = f"{PREFIX}/schemas"
RESTART_PATH = f"{PREFIX}/restart-notification"
ERROR_DELAY = 0.5  # the SDK re-polls at once after an error answer: slow it down

_REASONS = {200: b"OK", 204: b"No Content", 400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden"}
_REASONS |= {404: b"Not Found", 405: b"Method Not Allowed", 411: b"Length Required", 500: b"Internal Server Error"}
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
_MAX_HEAD = 64 * 1024


def runtime_uris(port: int, host: str = "localhost") -> dict[str, str]:
    """The four URI variables a container gets (full URLs; the Python SDK uses only their paths)."""
    base = f"https://{host}:{port}"
    return {
        "GET_JOB_URI": base + JOB_PATH,
        "POST_RESULT_URI": base + RESULTS_PATH,
        "POST_SCHEMA_URI": base + SCHEMAS_PATH,
        "RESTART_NOTIFICATION_URI": base + RESTART_PATH,
    }


def _response(status: int, body: bytes = b"", content_type: bytes = b"application/json", close: bool = False) -> bytes:
    if status == 204 and not close:
        return _NO_CONTENT
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
        status,
        _REASONS.get(status, b"Status"),
        content_type,
        len(body),
    )
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


def _job_response(job: Job) -> bytes:
    body = job.envelope()
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def _error(status: int, message: str) -> bytes:
    return _response(status, json.dumps({"error": message}).encode(), close=True)


class Headers:
    """The few request headers the runtime (and the gateway's hot path) reads, found on demand in the raw header
    block (parsing every header of every request costs more than the rest of a job's handling here)."""

    __slots__ = ("raw", "lower")

    def __init__(self, raw: bytes) -> None:
        self.raw = b"\r\n" + raw
        self.lower = self.raw.lower()

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        start = self.lower.find(b"\r\n" + name + b":")
        if start < 0:
            return default
        start += len(name) + 3
        end = self.raw.find(b"\r\n", start)
        return self.raw[start : end if end >= 0 else len(self.raw)].strip()  # values keep their case (tokens)


class _Fields:
    """The four headers the runtime reads from a request, read once per distinct header block: a replica's
    requests repeat theirs (the request line aside), so a connection keeps the last block's fields."""

    __slots__ = ("close", "token", "chunked", "length")

    def __init__(self, rest: bytes) -> None:
        headers = Headers(rest)
        self.close = (headers.get(b"connection") or b"").lower() == b"close"
        self.token = headers.get(b"module-auth-token")
        self.chunked = _chunked(headers)
        self.length = headers.get(b"content-length")


class ProtocolServer:
    """Serves the internal-query API for every replica of every module on one TLS port."""

    def __init__(self, scheduler: Scheduler, ssl_context: ssl.SSLContext | None) -> None:
        self.scheduler = scheduler
        self.ssl_context = ssl_context
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[_Connection] = set()
        #: Called when a replica (by its token) first talks to the runtime.
        self.on_contact: Callable[[Replica], None] = lambda r: None
        #: Called when a replica's first connection opens (it had none), and when its last one closes.
        self.on_connected: Callable[[Replica], None] = lambda r: None
        self.on_disconnected: Callable[[Replica], None] = lambda r: None

    async def start(self, sock: Any) -> None:
        """Serve on an already bound listening socket."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Connection(self), sock=sock, ssl=self.ssl_context)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        self.connections.clear()

    def bind(self, replica: Replica) -> None:
        """One more open connection of ``replica``."""
        replica.connections += 1
        if replica.connections == 1:
            self.on_connected(replica)

    def unbind(self, replica: Replica) -> None:
        """One connection of ``replica`` closed (or now speaks for another replica)."""
        replica.connections -= 1
        if replica.connections == 0:
            self.on_disconnected(replica)

    def replica(self, token: bytes | None) -> tuple[Replica | None, bytes | None]:
        """The replica a request's ``Module-Auth-Token`` value names, or the refusal to send."""
        if token is None:
            return None, _error(401, "missing Module-Auth-Token header")
        replica = self.scheduler.by_token.get(token.decode("latin-1"))
        if replica is None:
            return None, _error(403, "unknown Module-Auth-Token")
        return replica, None


_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _WAIT = range(6)


class _Connection(asyncio.Protocol):
    """One replica connection: an HTTP/1.1 request parser driven by ``data_received`` (no task per request).

    A request body goes to ``on_chunk`` (each chunk of a chunked body, as sent) and ``on_done`` (the whole body);
    a GET job that must wait parks a :class:`Poll` in the scheduler, which answers it through ``_deliver``."""

    def __init__(self, server: ProtocolServer) -> None:
        self.server = server
        self.scheduler = server.scheduler
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = _HEAD
        self.remaining = 0
        self.parts: list[bytes] = []
        self.on_chunk: Callable[[bytes], None] | None = None
        self.on_done: Callable[[bytes], None] = _ignore
        self.uploading: Job | None = None  # a result upload in progress (aborted if the connection drops)
        self.parked: Poll | None = None
        self.keep_alive = True
        self.closed = False
        self.poll_head = b""  # the last GET job request read whole, and (token, replica) it named
        self.poll_from: tuple[str, Replica] | None = None
        self.fields_raw = b""  # the last header block read, and its fields
        self.fields: _Fields | None = None
        self.bound: Replica | None = None  # the replica this connection counts for (ProtocolServer.bind)

    # -- transport events ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.bound is not None:
            self.server.unbind(self.bound)
            self.bound = None
        if self.uploading is not None:
            self.scheduler.result_aborted(self.uploading)
            self.uploading = None
        if self.parked is not None:
            self.scheduler.unpark(self.parked)
            self.parked = None

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._run()

    def _run(self) -> None:
        try:
            self._process()
        except _BadRequest as exc:
            self._send(_error(400, str(exc)), close=True)

    def _send(self, answer: bytes, close: bool = False) -> None:
        if self.closed or self.transport is None:
            return
        self.transport.write(answer)
        if close or not self.keep_alive:
            self.transport.close()
            self.closed = True

    # -- parsing -------------------------------------------------------------------------------------------

    def _process(self) -> None:
        buf = self.buf
        while not self.closed:
            state = self.state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise _BadRequest("request head too large")
                    return
                head = bytes(buf[:end])
                del buf[: end + 4]
                self._request(head)
            elif state == _LENGTH:
                if not buf:
                    return
                if not self.parts and len(buf) >= self.remaining:  # the whole body is here (the usual case)
                    body = bytes(buf[: self.remaining])
                    del buf[: self.remaining]
                    self.remaining = 0
                    self._finish_body(body)
                    continue
                take = min(self.remaining, len(buf))
                self.parts.append(bytes(buf[:take]))
                del buf[:take]
                self.remaining -= take
                if self.remaining == 0:
                    self._finish_body()
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                try:
                    size = int(bytes(buf[:end]).split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    raise _BadRequest("malformed chunk size") from None
                del buf[: end + 2]
                if size == 0:
                    self.state = _TRAILER
                else:
                    self.remaining, self.state = size, _CHUNK_DATA
            elif state == _CHUNK_DATA:
                if len(buf) < self.remaining + 2:
                    return
                chunk = bytes(buf[: self.remaining])
                del buf[: self.remaining + 2]
                self.state = _CHUNK_SIZE
                if self.on_chunk is not None:
                    self.on_chunk(chunk)
                else:
                    self.parts.append(chunk)
            elif state == _TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(buf[:end])
                del buf[: end + 2]
                if not line:
                    self._finish_body()
            else:  # _WAIT: a parked poll or a delayed refusal answers first
                return

    def _expect_body(self, fields: _Fields, on_done: Callable[[bytes], None], on_chunk=None) -> None:
        self.parts = []
        self.on_done, self.on_chunk = on_done, on_chunk
        if fields.chunked:
            self.state = _CHUNK_SIZE
            return
        try:
            self.remaining = int(fields.length or b"0")
        except ValueError:
            raise _BadRequest("malformed Content-Length") from None
        if self.remaining:
            self.state = _LENGTH
        else:
            self._finish_body()

    def _finish_body(self, body: bytes | None = None) -> None:
        if body is None:
            body = b"".join(self.parts)
            self.parts = []
        self.state = _HEAD
        on_done, self.on_done, self.on_chunk = self.on_done, _ignore, None
        on_done(body)

    # -- requests ------------------------------------------------------------------------------------------

    def _request(self, head: bytes) -> None:
        if head == self.poll_head:  # the SDK's GET job, byte for byte the one before: same token, same headers
            token, replica = self.poll_from  # type: ignore[misc]
            if self.scheduler.by_token.get(token) is replica:  # the token still names that replica
                self._poll(replica)
                return
        first, _, rest = head.partition(b"\r\n")
        try:
            method, target, version = first.split(b" ", 2)
        except ValueError:
            raise _BadRequest("malformed request line") from None
        if rest == self.fields_raw and self.fields is not None:
            fields = self.fields
        else:
            fields = self.fields = _Fields(rest)
            self.fields_raw = rest
        self.keep_alive = version == b"HTTP/1.1" and not fields.close
        path = target.decode("latin-1").split("?", 1)[0]
        replica, refusal = self.server.replica(fields.token)
        if refusal is not None:
            if method == b"GET":  # the SDK re-polls at once after an error answer: slow it down
                self.state = _WAIT
                asyncio.get_running_loop().call_later(ERROR_DELAY, self._send, refusal, True)
            else:
                self._send(refusal, close=True)
            return
        assert replica is not None
        if path == JOB_PATH and method == b"GET":
            if replica is not self.bound:  # once per connection: its later polls take the fast path above
                self._bind(replica)
            if self.keep_alive:
                token = fields.token or b""
                self.poll_head, self.poll_from = head, (token.decode("latin-1"), replica)
            self._poll(replica)
        elif path.startswith(_RESULT_PREFIX) and method == b"POST":
            self._result(replica, path[len(_RESULT_PREFIX) :], fields)
        elif path == SCHEMAS_PATH and method == b"POST":
            self._bind(replica)
            self._expect_body(fields, lambda body: self._schemas(replica, body))
        elif path == RESTART_PATH and method == b"POST":
            self._bind(replica)
            self._expect_body(fields, lambda body: self._restart(replica))
        elif path in (JOB_PATH, SCHEMAS_PATH, RESTART_PATH) or path.startswith(RESULTS_PATH + "/"):
            self._send(_error(405, f"{method.decode()} is not allowed on {path}"), close=True)
        else:
            message = f"no runtime endpoint {path}; the SDK uses {PREFIX}/{{job,results,schemas,...}}"
            self._send(_error(404, message), close=True)

    def _bind(self, replica: Replica) -> None:
        """Count this connection as ``replica``'s (no longer as another's)."""
        old = self.bound
        if old is replica or self.closed:
            return
        self.bound = replica
        self.server.bind(replica)
        if old is not None:
            self.server.unbind(old)

    def _poll(self, replica: Replica) -> None:
        if replica.state == "starting":
            self.server.on_contact(replica)
        job = self.scheduler.take(replica)
        if job is not None:
            self._send(_job_response(job))
            return
        self.state = _WAIT
        self.parked = self.scheduler.park(replica, self._deliver)

    def _deliver(self, job: Job | None) -> None:
        """The parked poll's answer (called by the scheduler: a job for this replica, or None after the hold)."""
        self.parked = None
        if self.closed:
            if job is not None:  # handed out as the connection went: not delivered
                asyncio.get_running_loop().call_soon(self.scheduler.requeue, job)
            return
        self.state = _HEAD
        self._send(_job_response(job) if job is not None else _NO_CONTENT)
        if self.buf and not self.closed:  # a request sent behind the poll: read it outside the scheduler's call
            asyncio.get_running_loop().call_soon(self._run)

    def _result(self, replica: Replica, job_id: str, fields: _Fields) -> None:
        try:
            job = self.scheduler.begin_result(replica, job_id)
        except JobRefused as exc:
            self._send(_error(exc.status, str(exc)), close=True)  # the body is not read: close the connection
            return
        if job is None:  # a late answer (the job already timed out): read and drop it
            self._expect_body(fields, lambda body: self._send(_NO_CONTENT), lambda chunk: None)
            return
        self.uploading = job
        chunked = fields.chunked

        def done(body: bytes) -> None:
            self.uploading = None
            self.scheduler.result_complete(job, None if chunked else body, chunked=chunked)
            self._send(_NO_CONTENT)

        if chunked:
            self._expect_body(fields, done, lambda chunk: self.scheduler.result_chunk(job, chunk))
        else:
            self._expect_body(fields, done)

    def _schemas(self, replica: Replica, body: bytes) -> None:
        try:
            self.scheduler.post_schemas(replica, json.loads(body or b"null"))
        except ValueError:
            self._send(_error(400, "schemas must be a JSON array"), close=True)
            return
        self.server.on_contact(replica)
        self._send(_NO_CONTENT)

    def _restart(self, replica: Replica) -> None:
        lost = self.scheduler.restart_notified(replica)
        self.server.on_contact(replica)
        self._send(_response(200, json.dumps(lost).encode()))


def _ignore(body: bytes) -> None:
    pass


def _chunked(headers: Headers) -> bool:
    value = headers.get(b"transfer-encoding")
    return value is not None and value.lower() == b"chunked"


class _BadRequest(Exception):
    """A request the parser cannot read (answered 400, connection closed)."""
