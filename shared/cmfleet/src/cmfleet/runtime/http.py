"""The one HTTP/1.1 layer of ``cmfleet dev``: both ports (the HTTPS runtime API, ``protocol.py``, and the gateway,
``gateway/``) read requests with it.

Requests are parsed by httptools (llhttp, maintained with Node.js), which enforces RFC 9112 framing itself:
Content-Length with Transfer-Encoding, duplicate or non-``1*DIGIT`` Content-Length, chunk sizes that are not hex
digits and chunk data not followed by CRLF are parse errors (400, connection closed). On top of it, this layer
refuses a Transfer-Encoding other than a lone ``chunked`` (501: no other coding is decoded here), HTTP versions other
than 1.0/1.1 (505), ``Upgrade`` (400), head blocks over ``max_header`` bytes (431) and bodies over ``body_limit``
(413). Every refusal is answered after the requests before it, then the connection closes: no second response.

Limits (``HttpLimits``, settings in ``config.py``): a request head must arrive within ``header_timeout`` seconds
of its first byte (or of the connection, for the first one: 408, closed); a keep-alive connection with nothing to
do closes after ``idle_timeout`` seconds (so does a body that stalls that long); past ``max_connections`` open
connections on a port, new ones are answered 503 and closed. One timer per connection re-arms itself (no timer
per request).

A chunked body reaches its reader chunk by chunk as sent (``on_chunk``): the SDK sends one streamed item per chunk.
Pipelined requests are answered one after the other, in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import FunctionType
from typing import Any
from urllib.parse import unquote

import httptools

_log = logging.getLogger("cmfleet.runtime")
_MAX_QUEUED = 32  # pipelined requests read ahead before reading pauses


@dataclass(frozen=True)
class HttpLimits:
    """The limits of one port (see the module docstring; ``config.py`` documents the settings)."""

    header_timeout: float = 10.0
    idle_timeout: float = 30.0
    max_header: int = 64 * 1024
    max_connections: int = 1000


class HttpError(Exception):
    """A request this layer refuses: answered ``status`` with ``{"error": message}``, then the connection closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_body(message: str, **extra: Any) -> bytes:
    """The JSON body of every error answer of both ports: ``{"error": message, ...}``."""
    return json.dumps({"error": message, **extra}).encode()


def response(
    status: int, body: bytes = b"", content_type: bytes = b"application/json", close: bool = False, extra: bytes = b""
) -> bytes:
    """A whole HTTP/1.1 response with a Content-Length body (``extra``: more header lines, each ending CRLF)."""
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s" % (
        status,
        reason(status),
        content_type,
        len(body),
        extra,
    )
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


def error_response(status: int, message: str) -> bytes:
    """A JSON error answer that closes the connection."""
    return response(status, error_body(message), close=True)


def reason(status: int) -> bytes:
    """The reason phrase of ``status``."""
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Status"


def target_path(target: bytes) -> str:
    """The path of a request target, %-decoded: ``b"/a%20b?q=1"`` -> ``"/a b"``."""
    # bytes.find, not ``in``: CPython's bytes ``in`` first tries the operand as an int and formats a TypeError
    if target.find(b"%") < 0 and target.find(b"?") < 0:  # the usual target: nothing to split or decode
        return target.decode("latin-1")
    return unquote(target.split(b"?", 1)[0].decode("latin-1"))


class Request:
    """One request: its head as parsed, and its body as it arrives (see :meth:`HttpConnection.read_body`)."""

    __slots__ = (
        "method",
        "target",
        "headers",
        "keep_alive",
        "chunked",
        "length",
        "parts",
        "chunk",
        "size",
        "complete",
        "on_chunk",
        "on_done",
        "expect",
    )

    def __init__(self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], keep_alive: bool) -> None:
        self.method = method
        self.target = target
        self.headers = headers  # (lower-cased name, value), in order
        self.keep_alive = keep_alive
        self.chunked = False
        self.length: int | None = None
        self.parts: list[bytes] = []  # body parts not yet handed to a reader (whole chunks, when chunked)
        self.chunk: list[bytes] = []  # the chunk being received
        self.size = 0
        self.complete = False
        self.on_chunk: Callable[[bytes], None] | None = None
        self.on_done: Callable[[bytes], None] | None = None
        self.expect = False  # the client waits for "100 Continue" before it sends the body

    def header(self, name: bytes) -> bytes | None:
        """The value of header ``name`` (lower case), the first one if repeated."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def give(self, part: bytes) -> None:
        """A part of the body (a whole chunk, when chunked): to the reader, or kept until there is one."""
        if self.on_chunk is not None:
            self.on_chunk(part)
        else:
            self.parts.append(part)

    @property
    def path(self) -> str:
        """The target's path, %-decoded (on a hot path, call :func:`target_path`: a property costs more)."""
        return target_path(self.target)

    @property
    def query(self) -> bytes:
        return self.target.partition(b"?")[2]


class HttpServer:
    """The listening side of one port: its limits and open connections; ``factory()`` makes a connection."""

    def __init__(self, limits: HttpLimits, factory: Callable[[], HttpConnection]) -> None:
        self.limits = limits
        self.factory = factory
        self.connections: set[HttpConnection] = set()
        self.server: asyncio.base_events.Server | None = None

    async def start(self, sock: Any, ssl: Any = None) -> None:
        """Serve on an already bound listening socket (``ssl``: a server SSLContext for HTTPS)."""
        loop = asyncio.get_running_loop()
        extra: dict[str, Any] = {"ssl_handshake_timeout": self.limits.header_timeout} if ssl is not None else {}
        self.server = await loop.create_server(self.factory, sock=sock, ssl=ssl, **extra)

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        self.connections.clear()


class HttpConnection(asyncio.Protocol):
    """One connection: httptools' callbacks build :class:`Request` objects; :meth:`handle` (a subclass's) answers
    each in turn with :meth:`respond` (or :meth:`write` ... :meth:`finish`)."""

    body_limit: int | None = None  # bytes; a larger body is refused 413 with body_limit_message
    body_limit_message = "the request body is too large"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Each port's connection class runs its own copy of this layer's methods. CPython specializes attribute
        # access per code object for one type at a time; with one copy shared by both ports' classes, the two types
        # alternate on every job and the specialized forms keep missing (7% of the runtime's instructions per job).
        super().__init_subclass__(**kwargs)
        for name, value in vars(HttpConnection).items():
            if isinstance(value, FunctionType) and getattr(cls, name) is value:  # inherited from here, unchanged
                setattr(cls, name, _copy_function(value))

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.limits = server.limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.current: Request | None = None  # the request being answered
        self.queue: deque[Request] = deque()  # requests read behind it (pipelining)
        self.reading: Request | None = None  # the request httptools is filling
        self.failure: HttpError | None = None  # a refusal, answered once the requests before it are
        self.url = b""
        self.head: list[tuple[bytes, bytes]] = []
        self.head_size = 0  # bytes of a head still incomplete after earlier reads
        self.fed = 0  # bytes of the read being parsed
        self.in_head = True  # a request head is due (the first one: from the connection's start)
        self.head_since = 0.0  # when it began
        self.last = 0.0  # when bytes last came in or an answer last went out
        self.timer: asyncio.TimerHandle | None = None
        self.paused = False
        self.loop = asyncio.get_running_loop()

    # -- to implement --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> None:
        """Answer ``request`` (its head is read; the body may still be coming: :meth:`read_body`)."""
        raise NotImplementedError

    def lost(self) -> None:
        """The connection closed (a subclass drops what waits on it)."""

    # -- transport events ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        connections = self.server.connections
        if len(connections) >= self.limits.max_connections:
            message = f"too many open connections (limit {self.limits.max_connections}); retry later"
            transport.write(error_response(503, message))  # type: ignore[attr-defined]
            transport.close()
            self.closed = True
            return
        connections.add(self)
        self.head_since = self.last = self.loop.time()
        self.timer = self.loop.call_later(self.limits.header_timeout, self._check)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.lost()

    def eof_received(self) -> bool | None:
        return None  # the peer is done sending: close (answers still owed are dropped)

    def close(self) -> None:
        """Close the connection now."""
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def data_received(self, data: bytes) -> None:
        if self.failure is not None:
            return  # refused: nothing after it is read
        self.last = self.loop.time()
        self.fed = len(data)
        try:
            self.parser.feed_data(data)
            if self.in_head:  # a head still coming: what it has sent so far counts against max_header
                self.head_size += self.fed
                if self.head_size > self.limits.max_header:
                    self._too_large()
        except HttpError as exc:
            self.failure = None
            self._fail(exc)
        except httptools.HttpParserError as exc:
            failure = self.failure or HttpError(400, f"malformed request: {_message(exc)}")
            self.failure = None
            self._fail(failure)
        except httptools.HttpParserUpgrade:
            self._fail(HttpError(400, "protocol upgrades are not supported"))

    def _fail(self, failure: HttpError) -> None:
        """Answer ``failure`` after the requests before it, then close; a request whose body broke is dropped."""
        self.failure = failure
        broken, self.reading = self.reading, None
        if broken is not None and broken is self.current:
            self.current = None  # its handler waits for a body that will not come: the refusal answers it
        elif broken is not None and broken in self.queue:
            self.queue.remove(broken)
        if self.current is None:
            self._next()

    # -- timeouts ------------------------------------------------------------------------------------------

    def _check(self) -> None:
        """The connection's timer: a head not in within ``header_timeout`` (408), a body stalled or a connection
        idle for ``idle_timeout`` closes it; an answer being prepared has no limit here (the job has its own)."""
        self.timer = None
        if self.closed:
            return
        now = self.loop.time()
        limits = self.limits
        if self.in_head:
            wait = self.head_since + limits.header_timeout - now
            if wait <= 0:
                if (self.head_size or self.url) and self.current is None and not self.queue:  # else: out of turn
                    limit = limits.header_timeout
                    self._send(error_response(408, f"the request head did not arrive within {limit:g} s"))
                self.close()
                return
        elif self.reading is not None or (self.current is None and not self.queue):
            wait = self.last + limits.idle_timeout - now  # a body coming, or nothing to do
            if wait <= 0:
                self.close()
                return
        else:
            wait = limits.idle_timeout
        self.timer = self.loop.call_later(max(wait, 0.01), self._check)

    # -- httptools callbacks -------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.head = []
        if not self.in_head:
            self.in_head, self.head_since, self.head_size = True, self.last, 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head.append((name.lower(), value))

    def _too_large(self) -> None:
        self._refuse(431, f"the request head is larger than the limit of {self.limits.max_header} bytes")

    def _refuse(self, status: int, message: str) -> None:
        self.failure = HttpError(status, message)
        raise self.failure

    def on_headers_complete(self) -> None:
        parser = self.parser
        if parser.get_http_version() not in ("1.1", "1.0"):
            self._refuse(505, "only HTTP/1.1 and HTTP/1.0 are served")
        if parser.should_upgrade():
            self._refuse(400, "protocol upgrades are not supported")
        if self.fed + self.head_size > self.limits.max_header:  # this head may be over the limit: measure it
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.head)
            if size > self.limits.max_header:
                self._too_large()
        request = Request(parser.get_method(), self.url, self.head, parser.should_keep_alive())
        self.head_size = 0
        self.in_head = False
        for name, value in self.head:
            if name == b"transfer-encoding":
                if value.strip().lower() != b"chunked":
                    self._refuse(501, f"Transfer-Encoding {value.decode('latin-1')!r}: only chunked is supported")
                request.chunked = True
            elif name == b"content-length":
                request.length = int(value)  # httptools accepted it: 1*DIGIT, once
            elif name == b"expect" and value.lower() == b"100-continue":
                request.expect = True
        limit = self.body_limit
        if limit is not None and request.length is not None and request.length > limit:
            self._refuse(413, self.body_limit_message)
        self.reading = request
        if self.current is None:
            self._start(request)
        else:
            self.queue.append(request)
            if len(self.queue) >= _MAX_QUEUED and self.transport is not None and not self.paused:
                self.transport.pause_reading()
                self.paused = True

    def on_body(self, body: bytes) -> None:
        request = self.reading
        if request is None:
            return
        request.size += len(body)
        if self.body_limit is not None and request.size > self.body_limit:
            self._refuse(413, self.body_limit_message)
        if request.chunked:
            request.chunk.append(body)
        else:
            request.give(body)

    def on_chunk_complete(self) -> None:
        request = self.reading
        if request is None or not request.chunk:
            return  # the last (empty) chunk
        chunk = b"".join(request.chunk)
        request.chunk = []
        request.give(chunk)

    def on_message_complete(self) -> None:
        request = self.reading
        self.reading = None
        if request is None:
            return
        request.complete = True
        if request.on_done is not None:
            self._done(request)

    # -- answering -----------------------------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        self.current = request
        try:
            self.handle(request)
        except Exception:  # noqa: BLE001
            self._handler_failed()

    def _handler_failed(self) -> None:
        """A handler raised: logged and answered 500 (no input takes the server down)."""
        _log.exception("handling %s failed", self.current.target if self.current else "a request")
        if self.current is not None:
            self.respond(error_response(500, "internal error (see the runtime's log)"), close=True)
        else:
            self.close()

    def read_body(
        self, request: Request, on_done: Callable[[bytes], None], on_chunk: Callable[[bytes], None] | None = None
    ) -> None:
        """Have ``on_done(body)`` called once the whole body is in (now, if it is), and ``on_chunk(chunk)`` for
        each chunk as it arrives (each chunk of a chunked body, as sent; then ``on_done`` gets ``b""``)."""
        request.on_done = on_done
        if request.expect and not request.complete:  # curl waits for this before a body over 1 KiB
            request.expect = False
            self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if on_chunk is not None:
            request.on_chunk = on_chunk
            parts, request.parts = request.parts, []
            for part in parts:
                on_chunk(part)
        if request.complete:
            self._done(request)

    def _done(self, request: Request) -> None:
        on_done, request.on_done = request.on_done, None
        body = b"".join(request.parts) if request.parts else b""
        request.parts = []
        if on_done is not None:
            try:
                on_done(body)
            except Exception:  # noqa: BLE001
                self._handler_failed()

    def _send(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def write(self, data: bytes) -> None:
        """Write part of the current request's answer."""
        self._send(data)

    def respond(self, data: bytes, close: bool = False) -> None:
        """Write the whole answer to the current request, then go on with the next one (or close)."""
        self._send(data)
        self.finish(close)

    def finish(self, close: bool = False) -> None:
        """The current request is answered: close if asked or not kept alive, else go on with the next one."""
        request = self.current
        self.current = None
        self.last = self.loop.time()
        if self.closed:
            return
        if close or request is None or not request.keep_alive:
            self.close()
            return
        if not request.complete:  # answered before its end (a GET whose end is parsed next): the rest is dropped
            request.parts = []
            request.on_chunk, request.on_done = _drop, _drop
            return
        if self.queue or self.failure is not None:
            self.loop.call_soon(self._next)  # outside the caller's frame (a scheduler callback, say)

    def _next(self) -> None:
        if self.closed or self.current is not None:
            return
        if self.queue:
            request = self.queue.popleft()
            if self.paused and len(self.queue) < _MAX_QUEUED // 4 and self.transport is not None:
                self.transport.resume_reading()
                self.paused = False
            self._start(request)
        elif self.failure is not None:
            failure, self.failure = self.failure, None
            self._send(error_response(failure.status, str(failure)))
            self.close()
            self.failure = failure  # nothing more is read


def _drop(data: bytes) -> None:
    pass


def _copy_function(function: FunctionType) -> FunctionType:
    """``function`` with a code object of its own (so its own specialization state), otherwise the same."""
    code = function.__code__.replace()  # a new code object: its own inline caches
    copy = FunctionType(code, function.__globals__, function.__name__, function.__defaults__, function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__ = function.__qualname__
    copy.__doc__ = function.__doc__
    copy.__annotations__ = function.__annotations__
    return copy


def _message(exc: Exception) -> str:
    text = str(exc).strip()
    return text[0].lower() + text[1:] if text else type(exc).__name__
