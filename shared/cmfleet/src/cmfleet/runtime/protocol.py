"""The container-facing API (Foundry's internal-query API) over HTTPS, as the official SDK speaks it.

    GET  /interactive-module/api/internal-query/job                   200 computeModuleJobV1 envelope | 204 after ~5 s
    POST /interactive-module/api/internal-query/results/{jobId}       204 (Content-Length or chunked body)
    POST /interactive-module/api/internal-query/schemas               204, schemas stored for the module
    POST /interactive-module/api/internal-query/restart-notification  200 ["job ids the replica held"]

Every call carries ``Module-Auth-Token``: missing 401, unknown 403; a token names one replica of one module, so a
replica cannot take or answer another module's (or another replica's) jobs (403).

A small HTTP/1.1 server on asyncio streams rather than an ASGI stack: it keeps the chunk boundaries of a
streamed result (the SDK sends one item per chunk, with no delimiter) and costs little CPU per job.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from typing import Any

from cmfleet.runtime.scheduler import Job, JobRefused, Replica, Scheduler

PREFIX = "/interactive-module/api/internal-query"
JOB_PATH = f"{PREFIX}/job"
RESULTS_PATH = f"{PREFIX}/results"
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


def _error(status: int, message: str) -> bytes:
    return _response(status, json.dumps({"error": message}).encode(), close=True)


class _Headers:
    """The few request headers the runtime reads, found on demand in the raw header block (parsing every
    header of every request costs more than the rest of a job's handling here)."""

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


class _Aborted(Exception):
    """The client went away in the middle of a request."""


class ProtocolServer:
    """Serves the internal-query API for every replica of every module on one TLS port."""

    def __init__(self, scheduler: Scheduler, ssl_context: ssl.SSLContext | None) -> None:
        self.scheduler = scheduler
        self.ssl_context = ssl_context
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[asyncio.StreamWriter] = set()
        #: Called when a replica (by its token) first talks to the runtime.
        self.on_contact: Callable[[Replica], None] = lambda r: None

    async def start(self, sock: Any) -> None:
        """Serve on an already bound listening socket."""
        self.server = await asyncio.start_server(self._connection, sock=sock, ssl=self.ssl_context, limit=_MAX_HEAD)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self.server is not None:
            self.server.close()
        for writer in list(self.connections):
            writer.close()
        self.connections.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
                    return
                first, _, rest = head[:-4].partition(b"\r\n")
                try:
                    method, target, version = first.split(b" ", 2)
                except ValueError:
                    writer.write(_error(400, "malformed request line"))
                    return
                headers = _Headers(rest)
                handed: list[Job] = []  # the job this request hands out, if it is a GET job that got one
                try:
                    answer, close = await self._route(method, target.decode("latin-1"), headers, reader, handed)
                except _Aborted:
                    return
                if writer.is_closing():  # the replica went away during its long-poll: the job was not delivered
                    for job in handed:
                        self.scheduler.requeue(job)
                    return
                try:
                    writer.write(answer)
                except (AttributeError, RuntimeError):  # asyncio's SSL transport, closed under us
                    for job in handed:
                        self.scheduler.requeue(job)
                    return
                if writer.transport.get_write_buffer_size() > 65536:
                    await writer.drain()
                if close or version != b"HTTP/1.1" or headers.get(b"connection", b"").lower() == b"close":
                    await writer.drain()
                    return
        except (ConnectionError, ssl.SSLError, OSError):
            return
        finally:
            self.connections.discard(writer)
            try:
                writer.close()
            except (ConnectionError, OSError, RuntimeError):
                pass

    async def _read_body(self, headers: _Headers, reader: asyncio.StreamReader) -> bytes:
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            async for chunk in _chunks(reader):
                parts.append(chunk)
            return b"".join(parts)
        length = int(headers.get(b"content-length", b"0") or 0)
        if not length:
            return b""
        try:
            return await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            raise _Aborted from None

    def _replica(self, headers: _Headers) -> tuple[Replica | None, bytes | None]:
        token = headers.get(b"module-auth-token")
        if token is None:
            return None, _error(401, "missing Module-Auth-Token header")
        replica = self.scheduler.by_token.get(token.decode("latin-1"))
        if replica is None:
            return None, _error(403, "unknown Module-Auth-Token")
        return replica, None

    async def _route(
        self,
        method: bytes,
        target: str,
        headers: _Headers,
        reader: asyncio.StreamReader,
        handed: list[Job],
    ) -> tuple[bytes, bool]:
        path = target.split("?", 1)[0]
        replica, refusal = self._replica(headers)
        if refusal is not None:
            if method == b"GET":
                await asyncio.sleep(ERROR_DELAY)
            return refusal, True
        assert replica is not None
        if path == JOB_PATH and method == b"GET":
            if replica.state == "starting":
                self.on_contact(replica)
            job = await self.scheduler.poll(replica)
            if job is None:
                return _NO_CONTENT, False
            handed.append(job)
            return _response(200, job.envelope()), False
        if path.startswith(RESULTS_PATH + "/") and method == b"POST":
            return await self._result(replica, path[len(RESULTS_PATH) + 1 :], headers, reader)
        if path == SCHEMAS_PATH and method == b"POST":
            body = await self._read_body(headers, reader)
            try:
                self.scheduler.post_schemas(replica, json.loads(body or b"null"))
            except ValueError:
                return _error(400, "schemas must be a JSON array"), True
            self.on_contact(replica)
            return _NO_CONTENT, False
        if path == RESTART_PATH and method == b"POST":
            await self._read_body(headers, reader)
            lost = self.scheduler.restart_notified(replica)
            self.on_contact(replica)
            return _response(200, json.dumps(lost).encode()), False
        if path in (JOB_PATH, SCHEMAS_PATH, RESTART_PATH) or path.startswith(RESULTS_PATH + "/"):
            return _error(405, f"{method.decode()} is not allowed on {path}"), True
        return _error(404, f"no runtime endpoint {path}; the SDK uses {PREFIX}/{{job,results,schemas,...}}"), True

    async def _result(
        self, replica: Replica, job_id: str, headers: _Headers, reader: asyncio.StreamReader
    ) -> tuple[bytes, bool]:
        try:
            job = self.scheduler.begin_result(replica, job_id)
        except JobRefused as exc:
            return _error(exc.status, str(exc)), True  # the body is not read: close the connection
        chunked = headers.get(b"transfer-encoding", b"").lower() == b"chunked"
        if job is None:  # a late answer (the job already timed out): read and drop it
            await self._read_body(headers, reader)
            return _NO_CONTENT, False
        if not chunked:
            try:
                body = await self._read_body(headers, reader)
            except _Aborted:
                self.scheduler.result_aborted(job)
                raise
            self.scheduler.result_complete(job, body, chunked=False)
            return _NO_CONTENT, False
        try:
            async for chunk in _chunks(reader):
                self.scheduler.result_chunk(job, chunk)
        except _Aborted:
            self.scheduler.result_aborted(job)
            raise
        self.scheduler.result_complete(job, None, chunked=True)
        return _NO_CONTENT, False


async def _chunks(reader: asyncio.StreamReader):
    """The chunks of a chunked body, as sent; _Aborted when the connection ends first."""
    try:
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError, ValueError):
        raise _Aborted from None
