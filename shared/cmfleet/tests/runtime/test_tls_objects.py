"""The runtime's TLS server objects: ``wrap_bio`` gives a DirectSSLObject whose read/write/pending are the C
object's own methods, and a real handshake and exchange over memory BIOs behave as the stdlib's."""

from __future__ import annotations

import ssl
import types

import pytest

from cmfleet.runtime.tls import DirectSSLObject, ensure_tls


def _pump(src: ssl.MemoryBIO, dst: ssl.MemoryBIO) -> None:
    data = src.read()
    if data:
        dst.write(data)


def test_a_tls_exchange_through_direct_ssl_objects(tmp_path):
    files = ensure_tls(tmp_path)
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server = files.server_context().wrap_bio(s_in, s_out, server_side=True)
    client = files.client_context().wrap_bio(c_in, c_out, server_hostname="localhost")
    assert isinstance(server, DirectSSLObject)
    assert all(isinstance(m, types.BuiltinMethodType) for m in (server.read, server.write, server.pending))

    for _ in range(10):  # the handshake, both sides in turn
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        _pump(c_out, s_in)
        _pump(s_out, c_in)
    assert server.version() == client.version() and server.version() is not None

    with pytest.raises(ssl.SSLWantReadError):
        server.read(1024)  # nothing sent yet: the same error as the stdlib's SSLObject
    client.write(b"GET /job HTTP/1.1\r\n\r\n")
    _pump(c_out, s_in)
    assert server.read(1024) == b"GET /job HTTP/1.1\r\n\r\n"
    buffer = bytearray(64)
    assert server.write(b"HTTP/1.1 204 No Content\r\n\r\n") == 27
    _pump(s_out, c_in)
    assert client.read(64, buffer) == 27 and bytes(buffer[:12]) == b"HTTP/1.1 204"
    assert server.pending() == 0
