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

Requests are read by the one HTTP layer (``http.py``: httptools, RFC 9112 framing, timeouts and limits), which
keeps the chunk boundaries of a streamed result (the SDK sends one item per chunk, with no delimiter). No task or
coroutine per request: a parked long-poll is answered by the scheduler's call (no future, no loop trip).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from typing import Any

from cmfleet.runtime.http import (
    HttpConnection,
    HttpLimits,
    HttpServer,
    Request,
    error_response,
    response,
    target_path,
)
from cmfleet.runtime.scheduler import Job, JobRefused, Poll, Replica, Scheduler

PREFIX = "/interactive-module/api/internal-query"
JOB_PATH = f"{PREFIX}/job"
RESULTS_PATH = f"{PREFIX}/results"
_RESULT_PREFIX = RESULTS_PATH + "/"
SCHEMAS_PATH = f"{PREFIX}/schemas"
RESTART_PATH = f"{PREFIX}/restart-notification"
ERROR_DELAY = 0.5  # the SDK re-polls at once after an error answer: slow it down

_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def runtime_uris(port: int, host: str = "localhost") -> dict[str, str]:
    """The four URI variables a container gets (full URLs; the Python SDK uses only their paths)."""
    base = f"https://{host}:{port}"
    return {
        "GET_JOB_URI": base + JOB_PATH,
        "POST_RESULT_URI": base + RESULTS_PATH,
        "POST_SCHEMA_URI": base + SCHEMAS_PATH,
        "RESTART_NOTIFICATION_URI": base + RESTART_PATH,
    }


def _job_response(job: Job) -> bytes:
    body = job.envelope()
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


class ProtocolServer:
    """Serves the internal-query API for every replica of every module on one TLS port."""

    def __init__(
        self, scheduler: Scheduler, ssl_context: ssl.SSLContext | None, limits: HttpLimits | None = None
    ) -> None:
        self.scheduler = scheduler
        self.ssl_context = ssl_context
        self.http = HttpServer(limits or HttpLimits(), lambda: _Connection(self))
        #: Called when a replica (by its token) first talks to the runtime.
        self.on_contact: Callable[[Replica], None] = lambda r: None
        #: Called when a replica's first connection opens (it had none), and when its last one closes.
        self.on_connected: Callable[[Replica], None] = lambda r: None
        self.on_disconnected: Callable[[Replica], None] = lambda r: None

    @property
    def connections(self) -> set[HttpConnection]:
        return self.http.connections

    async def start(self, sock: Any) -> None:
        """Serve on an already bound listening socket."""
        await self.http.start(sock, self.ssl_context)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        await self.http.stop()

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
            return None, error_response(401, "missing Module-Auth-Token header")
        replica = self.scheduler.by_token.get(token.decode("latin-1"))
        if replica is None:
            return None, error_response(403, "unknown Module-Auth-Token")
        return replica, None


class _Connection(HttpConnection):
    """One replica connection. A result body goes to the scheduler chunk by chunk (chunked) or whole; a GET job
    that must wait parks a :class:`Poll` in the scheduler, which answers it through ``_deliver``."""

    def __init__(self, server: ProtocolServer) -> None:
        super().__init__(server.http)
        self.api = server
        self.scheduler = server.scheduler
        self.uploading: Job | None = None  # a result upload in progress (aborted if the connection drops)
        self.parked: Poll | None = None
        self.bound: Replica | None = None  # the replica this connection counts for (ProtocolServer.bind)

    def lost(self) -> None:
        if self.bound is not None:
            self.bound.last_seen = self.loop.time()  # its grace runs from the connection's end
            self.api.unbind(self.bound)
            self.bound = None
        if self.uploading is not None:
            self.scheduler.result_aborted(self.uploading)
            self.uploading = None
        if self.parked is not None:
            self.scheduler.unpark(self.parked)
            self.parked = None

    def handle(self, request: Request) -> None:
        method = request.method
        path = target_path(request.target)
        replica, refusal = self.api.replica(request.header(b"module-auth-token"))
        if refusal is not None:
            if method == b"GET":  # the SDK re-polls at once after an error answer: slow it down
                self.loop.call_later(ERROR_DELAY, self.respond, refusal, True)
            else:
                self.respond(refusal, close=True)
            return
        assert replica is not None
        replica.last_seen = self.last
        if path == JOB_PATH and method == b"GET":
            if replica is not self.bound:
                self._bind(replica)
            self._poll(replica)
        elif path.startswith(_RESULT_PREFIX) and method == b"POST":
            self._result(replica, path[len(_RESULT_PREFIX) :], request)
        elif path == SCHEMAS_PATH and method == b"POST":
            self._bind(replica)
            self.read_body(request, lambda body: self._schemas(replica, body))
        elif path == RESTART_PATH and method == b"POST":
            self._bind(replica)
            self.read_body(request, lambda body: self._restart(replica))
        elif path in (JOB_PATH, SCHEMAS_PATH, RESTART_PATH) or path.startswith(RESULTS_PATH + "/"):
            self.respond(error_response(405, f"{method.decode()} is not allowed on {path}"), close=True)
        else:
            message = f"no runtime endpoint {path}; the SDK uses {PREFIX}/{{job,results,schemas,...}}"
            self.respond(error_response(404, message), close=True)

    def _bind(self, replica: Replica) -> None:
        """Count this connection as ``replica``'s (no longer as another's)."""
        old = self.bound
        if old is replica or self.closed:
            return
        self.bound = replica
        self.api.bind(replica)
        if old is not None:
            self.api.unbind(old)

    def _poll(self, replica: Replica) -> None:
        if replica.state == "starting":
            self.api.on_contact(replica)
        job = self.scheduler.take(replica)
        if job is not None:
            self.respond(_job_response(job))
            return
        self.parked = self.scheduler.park(replica, self._deliver)

    def _deliver(self, job: Job | None) -> None:
        """The parked poll's answer (called by the scheduler: a job for this replica, or None after the hold)."""
        self.parked = None
        if self.bound is not None:
            self.bound.last_seen = self.loop.time()  # a live SDK polls again at once
        if self.closed:
            if job is not None:  # handed out as the connection went: not delivered
                self.loop.call_soon(self.scheduler.requeue, job)
            return
        self.respond(_job_response(job) if job is not None else _NO_CONTENT)

    def _result(self, replica: Replica, job_id: str, request: Request) -> None:
        try:
            job = self.scheduler.begin_result(replica, job_id)
        except JobRefused as exc:
            self.respond(error_response(exc.status, str(exc)), close=True)  # the body is not read: close
            return
        if job is None:  # a late answer (the job already timed out): read and drop it
            self.read_body(request, lambda body: self.respond(_NO_CONTENT), lambda chunk: None)
            return
        self.uploading = job
        chunked = request.chunked

        def done(body: bytes) -> None:
            self.uploading = None
            self.scheduler.result_complete(job, None if chunked else body, chunked=chunked)
            self.respond(_NO_CONTENT)

        if chunked:
            self.read_body(request, done, lambda chunk: self.scheduler.result_chunk(job, chunk))
        else:
            self.read_body(request, done)

    def _schemas(self, replica: Replica, body: bytes) -> None:
        try:
            self.scheduler.post_schemas(replica, json.loads(body or b"null"))
        except ValueError:
            self.respond(error_response(400, "schemas must be a JSON array"), close=True)
            return
        self.api.on_contact(replica)
        self.respond(_NO_CONTENT)

    def _restart(self, replica: Replica) -> None:
        lost = self.scheduler.restart_notified(replica)
        self.api.on_contact(replica)
        self.respond(response(200, json.dumps(lost).encode()))
