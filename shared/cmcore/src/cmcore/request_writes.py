"""The SDK's result uploads in one write: urllib3 sends a request's header block and its body as two writes; this
makes a small body go out in the same write as its header block (in the image and in ``cmfleet dev`` alike).

The official SDK posts each job's result with ``requests``, which sends through urllib3 2.x. Its
``HTTPConnection.request`` writes the header block (``endheaders()``), then the body in writes of its own, with
``TCP_NODELAY`` set. Over the runtime's TLS connection each write is a TLS record and a segment of its own, so the
runtime often reads the header block, goes back to waiting, and wakes again for a body of a few bytes. Measured on
``hello.add`` (2 cores, ``cmfleet dev``, sequential calls after 8-client bursts; strace of the runtime): a quarter
of the uploads arrived in two reads, and with one write each arrives in one; the p50 latency fell by 4-5% in two
interleaved A/B runs (6 fresh ``cmfleet dev`` each way), while the replicas' and the runtime's CPU per job and the
8-client throughput moved within their noise.

:func:`one_write_requests` holds the header block of a request whose body is ``bytes`` or ``str`` of at most
:data:`MAX_JOINED` bytes (sent with ``Content-Length``, not chunked) and sends it with the body's first write:
the same bytes in the same order, one ``sendall`` instead of two. Every other request (no body, a file, an
iterator, chunked, a large body, the first request of a connection that opens while sending it) is sent exactly
as urllib3 sends it. A request that fails before its body is written sends nothing (urllib3 drops such a
connection). Nothing else changes: no proxy, TLS-verification or timeout setting is touched. It applies to every
urllib3 connection of the process, which is why urllib3's shape is checked first and an unknown one left alone.
``CMCORE_REQUEST_WRITES=split`` keeps urllib3's own writes.
"""

from __future__ import annotations

import functools
import http.client
import inspect
import os
from typing import Any

__all__ = ["MAX_JOINED", "OPT_OUT_VARIABLE", "one_write_requests"]

#: ``CMCORE_REQUEST_WRITES=split`` leaves urllib3's writes as they are.
OPT_OUT_VARIABLE = "CMCORE_REQUEST_WRITES"
#: Larger bodies keep their own write: joining would copy them for no measurable gain.
MAX_JOINED = 64 * 1024

_APPLIED = "_cmcore_one_write"
_PLAIN_SEND = http.client.HTTPConnection.send  # what urllib3's connections inherit, and what ours falls back to


def _urllib3_connection() -> Any:
    """urllib3's ``HTTPConnection`` when urllib3 2.x is installed, else None."""
    try:
        import urllib3
        from urllib3.connection import HTTPConnection
    except ImportError:
        return None
    return HTTPConnection if str(getattr(urllib3, "__version__", "")).startswith("2.") else None


def _expected_shape(connection_cls: Any) -> bool:
    """Whether urllib3's connections are the shape this module was written for: ``send`` inherited from
    ``http.client`` (by ``HTTPSConnection`` too) and ``request`` taking ``body`` and ``chunked``."""
    from urllib3.connection import HTTPSConnection

    if connection_cls.send is not _PLAIN_SEND or HTTPSConnection.send is not _PLAIN_SEND:
        return False
    try:
        params = inspect.signature(connection_cls.request).parameters
    except (TypeError, ValueError):
        return False
    return {"body", "chunked"} <= params.keys()


def one_write_requests(environ: dict[str, str] | None = None) -> bool:
    """Make urllib3 send a small request body in the same write as its header block (see the module docstring);
    True when applied, False when opted out (``CMCORE_REQUEST_WRITES=split``), urllib3 is missing or not the
    expected shape. Idempotent."""
    env = os.environ if environ is None else environ
    if env.get(OPT_OUT_VARIABLE, "").strip().lower() == "split":
        return False
    connection_cls = _urllib3_connection()
    if connection_cls is None:
        return False
    if getattr(connection_cls, _APPLIED, False):  # applied already: its send is ours, not http.client's
        return True
    if not _expected_shape(connection_cls):
        return False
    urllib3_request = connection_cls.request

    @functools.wraps(urllib3_request)
    def request(self: Any, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        # Only on a connected socket: a connection opened inside the request (plain HTTP connects on its first
        # write) keeps urllib3's writes, so nothing sent while connecting is ever held.
        joinable = (
            self.sock is not None
            and isinstance(body, (bytes, str))
            and 0 < len(body) <= MAX_JOINED
            and not kwargs.get("chunked")
        )
        self._cmcore_hold, self._cmcore_held = joinable, None
        try:
            result = urllib3_request(self, method, url, body, headers, **kwargs)
        except BaseException:
            self._cmcore_held = None  # never send a header block whose body did not follow
            raise
        finally:
            self._cmcore_hold = False
        held, self._cmcore_held = self._cmcore_held, None
        if held is not None:  # no body write came after all: the header block still goes out
            _PLAIN_SEND(self, held)
        return result

    @functools.wraps(_PLAIN_SEND)
    def send(self: Any, data: Any) -> None:
        if getattr(self, "_cmcore_hold", False) and isinstance(data, bytes):
            held = self._cmcore_held
            if held is None:  # the header block: wait for the body's first write
                self._cmcore_held = data
                return
            self._cmcore_hold, self._cmcore_held = False, None
            data = held + data
        _PLAIN_SEND(self, data)

    connection_cls.request = request
    connection_cls.send = send
    setattr(connection_cls, _APPLIED, True)
    return True
