"""An ASGI app served on the HTTP layer (``http.py``): the gateway's routes, the console and the log stream.

One task per request (these are the rare, slower requests; calls take the gateway's fast path). The body is read
whole (the layer enforces the size limit) and handed over in one ``http.request`` message; a later ``receive``
waits for the client to go (``http.disconnect``), which ends a Server-Sent Events stream. A response without
Content-Length is sent chunked. An app that raises before answering gets a 500 (its message is not shown: it
may hold anything), after that the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cmfleet.runtime.http import HttpConnection, Request, error_response, reason

_log = logging.getLogger("cmfleet.runtime")


class AsgiCycle:
    """One request handed to ``app`` on ``conn``."""

    def __init__(self, conn: HttpConnection, request: Request, app: Any) -> None:
        self.conn, self.request, self.app = conn, request, app
        loop = conn.loop
        self.body: asyncio.Future[bytes] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()  # the client left, or the answer is complete
        self.started = False
        self.finished = False
        self.chunked = False
        self.body_given = False
        conn.read_body(request, self._body)
        self.task = loop.create_task(self.run())

    def _body(self, body: bytes) -> None:
        if not self.body.done():
            self.body.set_result(body)

    def disconnect(self) -> None:
        """The connection closed."""
        if not self.gone.done():
            self.gone.set_result(None)
        if not self.body.done():
            self.body.cancel()

    def scope(self) -> dict[str, Any]:
        request, transport = self.request, self.conn.transport
        target = request.target
        raw_path, _, query = target.partition(b"?")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},  # 2.3: streaming responses listen for disconnect
            "http_version": "1.1",
            "method": request.method.decode("latin-1"),
            "scheme": "http",
            "path": request.path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": request.headers,
            "client": transport.get_extra_info("peername") if transport is not None else None,
            "server": transport.get_extra_info("sockname") if transport is not None else None,
            "state": {},
        }

    async def run(self) -> None:
        try:
            await self.app(self.scope(), self.receive, self.send)
        except asyncio.CancelledError:
            self.conn.close()
            return
        except Exception:  # noqa: BLE001 - an app error must not take the server down
            _log.exception("the gateway's handler of %s failed", self.request.path)
            if not self.started:
                self.conn.respond(error_response(500, "internal error in the gateway (see the runtime's log)"), True)
            else:
                self.conn.close()
            return
        if not self.finished:
            if not self.started:
                self.conn.respond(error_response(500, "the gateway's handler sent no answer"), True)
            else:
                self.conn.close()

    async def receive(self) -> dict[str, Any]:
        if not self.body_given:
            try:
                body = await self.body
            except asyncio.CancelledError:
                if self.gone.done():
                    return {"type": "http.disconnect"}
                raise
            self.body_given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.shield(self.gone)
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        conn = self.conn
        if conn.closed or self.finished:
            return
        kind = message["type"]
        if kind == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", ()))
            self.chunked = not any(name.lower() == b"content-length" for name, _ in headers)
            if self.chunked:
                headers.append((b"transfer-encoding", b"chunked"))
            if not self.request.keep_alive:
                headers.append((b"connection", b"close"))
            lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason(status))]
            lines += [b"%s: %s\r\n" % (name, value) for name, value in headers]
            lines.append(b"\r\n")
            self.started = True
            conn.write(b"".join(lines))
        elif kind == "http.response.body":
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self.request.method == b"HEAD":
                body = b""
            if self.chunked:
                data = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
                if not more:
                    data += b"0\r\n\r\n"
            else:
                data = body
            if not more:
                self.finished = True
                if not self.gone.done():
                    self.gone.set_result(None)
                conn.respond(data)
            elif data:
                conn.write(data)
