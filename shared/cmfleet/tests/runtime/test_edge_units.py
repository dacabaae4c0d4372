"""Pure parts of the runtime's edge: strict JSON, secret forms and the log hub's redaction and listeners."""

from __future__ import annotations

import json

import pytest

from cmfleet.runtime import strictjson
from cmfleet.runtime.logs import LogHub

SECRET = "k3y\"with'quote\\back-slash-é-秘密"


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', '{"a": [1, NaN]}'])
def test_strict_json_refuses_nan_and_infinity(text):
    with pytest.raises(ValueError, match="is not JSON"):
        strictjson.loads(text.encode(), 10)


def test_strict_json_depth_skips_strings_and_names_the_bound():
    assert strictjson.depth(b'{"a": "[[[[{{{{", "b": [[1]]}') == 3
    assert strictjson.loads(b'{"s": "' + b"[" * 50 + b'"}', 2) == {"s": "[" * 50}
    with pytest.raises(ValueError, match="limit of 2 levels"):
        strictjson.loads(b"[[[1]]]", 2)
    with pytest.raises(ValueError):
        strictjson.loads(b"\xff", 2)  # not UTF-8


def test_every_form_of_a_secret_is_redacted():
    hub = LogHub(terminal=False)
    hub.add_secrets([SECRET])
    texts = [
        f"raw {SECRET} end",
        json.dumps({"k": SECRET}),
        json.dumps({"k": SECRET}, ensure_ascii=False),
        json.dumps({"k": json.dumps({"k": SECRET})}),
        repr({"k": SECRET}),
        ascii({"k": SECRET}),
        repr(f"prefix {SECRET}"),
        repr(ValueError("secret is " + SECRET)),
    ]
    for text in texts:
        clean = hub.redact(text)
        assert "back-slash" not in clean and "***" in clean, (text, clean)


def test_an_sls_line_with_upper_case_escapes_is_redacted_after_parsing():
    hub = LogHub(terminal=False)
    hub.add_secrets(["s3cr\u00e9t-value"])
    line = b'{"level": "INFO", "message": "key s3cr\\u00E9t-value", "params": {"k": "s3cr\\u00E9t-value"}}\n'
    hub.line("m", "m-1", "stderr", line)
    record = hub.records[-1]
    assert record["message"] == "key ***" and record["params"] == {"k": "***"}


def test_line_listeners_see_each_raw_line_before_it_is_recorded():
    hub = LogHub(terminal=False)
    seen: list[tuple[str, bytes, int]] = []
    hub.add_line_listener(lambda module, raw: seen.append((module, raw, len(hub.records))))
    hub.line("m", "m-1", "stdout", b"hello\n")
    assert seen == [("m", b"hello\n", 0)] and hub.records[-1]["message"] == "hello"


def test_each_port_runs_its_own_copy_of_the_http_layer():
    """Both ports' connection classes get their own code objects for the HTTP layer's methods (so CPython's
    per-code-object specialization sees one type each), the same functions otherwise; their own methods are kept."""
    from cmfleet.runtime.gateway.fastpath import GatewayConnection
    from cmfleet.runtime.http import HttpConnection
    from cmfleet.runtime.protocol import _Connection

    for name in ("data_received", "on_header", "on_headers_complete", "on_message_complete", "respond", "finish"):
        base = getattr(HttpConnection, name)
        copies = [getattr(cls, name) for cls in (_Connection, GatewayConnection)]
        assert len({id(f.__code__) for f in [base, *copies]}) == 3
        for copy in copies:
            assert copy.__code__.co_code == base.__code__.co_code
            assert (copy.__qualname__, copy.__doc__, copy.__defaults__) == (
                base.__qualname__,
                base.__doc__,
                base.__defaults__,
            )
            assert copy.__globals__ is base.__globals__
    assert _Connection.handle is not HttpConnection.handle and "handle" in vars(_Connection)
    assert GatewayConnection.lost is not HttpConnection.lost and "lost" in vars(GatewayConnection)

    class Deeper(_Connection):  # a subclass of a port's class keeps what that class defines or copied
        pass

    assert Deeper.handle is _Connection.handle and Deeper.data_received is _Connection.data_received
