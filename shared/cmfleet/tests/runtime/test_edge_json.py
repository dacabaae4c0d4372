"""Strict JSON in at the gateway (NaN/Infinity and nesting past ``max-json-depth`` are 400, on calls and ``/jobs``
alike), and a property-based test: generated bodies, paths and headers always get a documented status, nothing
raises out of a handler, and the next valid call succeeds."""

from __future__ import annotations

import json
import logging
import tempfile
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for

# hypothesis keeps caches in ./.hypothesis by default: here in a temporary folder, never in the checkout
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="cmfleet-hypothesis-"))

ECHO = "/api/modules/other/functions/echo"
DEPTH = 32
# the statuses cmfleet.runtime.gateway documents for a call, 405 for a method a route does not take
DOCUMENTED = {200, 202, 400, 401, 404, 405, 413, 422, 429, 500, 502, 504}


@pytest.fixture(scope="module")
def json_runtime(tmp_path_factory):
    root = copy_fleet(tmp_path_factory.mktemp("fleet") / "repo")
    rt = start_runtime(root, ["basic", "other"], max_json_depth=DEPTH, max_body=1 << 20, timeout=20)
    client = httpx.Client(base_url=rt.url, timeout=30)
    wait_for(lambda: ready_replicas(client, "basic") and ready_replicas(client, "other"), what="replicas ready")
    yield rt, client
    client.close()
    rt.close()


def _echo_works(client: httpx.Client) -> None:
    started = time.monotonic()
    r = client.post(ECHO, json={"ok": 1})
    assert r.status_code == 200 and r.json()["event"] == {"ok": 1}
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "body",
    [b'{"x": NaN, "y": 1}', b'{"x": Infinity}', b"[-Infinity]", b"NaN"],
    ids=["nan", "infinity", "minus-infinity", "bare-nan"],
)
@pytest.mark.parametrize("suffix", ["", "/jobs"])
def test_nan_and_infinity_are_400(json_runtime, body, suffix):
    rt, client = json_runtime
    r = client.post(ECHO + suffix, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    _echo_works(client)


@pytest.mark.parametrize("levels", [DEPTH + 1, 495, 800, 100_000])
@pytest.mark.parametrize("suffix", ["", "/jobs"])
def test_nesting_past_the_bound_is_400_naming_it(json_runtime, levels, suffix):
    rt, client = json_runtime
    for body in (b"[" * levels + b"]" * levels, b'{"a":' * levels + b"1" + b"}" * levels):
        r = client.post(ECHO + suffix, content=body)
        assert r.status_code == 400, r.text
        assert f"limit of {DEPTH} levels" in r.json()["error"] and "max-json-depth" in r.json()["error"]
    _echo_works(client)


def test_nesting_at_the_bound_and_brackets_in_strings_are_accepted(json_runtime):
    rt, client = json_runtime
    deep = json.loads("[" * (DEPTH - 1) + "]" * (DEPTH - 1))
    r = client.post(ECHO, json={"d": deep, "s": "[[[[" * 100})
    assert r.status_code == 200 and r.json()["event"]["d"] == deep


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_bodies = st.one_of(
    st.binary(max_size=300),
    _json_values.map(lambda v: json.dumps(v).encode()),
    _json_values.map(lambda v: json.dumps(v).encode()).map(lambda b: b.replace(b"null", b"NaN", 1)),
    st.integers(min_value=0, max_value=3 * DEPTH).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=0, max_value=3 * DEPTH).map(lambda n: b'{"a":' * n + b"0" + b"}" * n),
    st.text(max_size=100).map(lambda t: t.encode("utf-8")),
)
# what a client can put in a URL path segment (httpx refuses control characters; it %-encodes the rest)
_segment = st.text(
    st.characters(codec="utf-8", exclude_characters="/?#", exclude_categories=("Cc", "Cs")), min_size=0, max_size=12
)
_paths = st.one_of(
    st.sampled_from(
        [
            ECHO,
            ECHO + "/jobs",
            "/api/modules/basic/functions/add",
            "/api/modules/basic/functions/typed_add",
            "/api/modules/basic/functions/nope",
            "/api/modules/nope/functions/add",
        ]
    ),
    st.tuples(st.sampled_from(["basic", "other"]), _segment).map(lambda p: f"/api/modules/{p[0]}/functions/{p[1]}"),
    st.tuples(_segment, _segment).map(lambda p: f"/api/modules/{p[0]}/functions/{p[1]}"),
)
# what a client can send as a header value (no surrounding whitespace: httpx's h11 refuses it before sending)
_header_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.strip)
_headers = st.dictionaries(
    st.sampled_from(["Content-Type", "Accept", "X-Anything", "Authorization", "Cookie", "Connection"]),
    _header_value,
    max_size=4,
)


@settings(
    max_examples=150,
    database=None,  # no example database written into the checkout
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies, path=_paths, headers=_headers)
def test_generated_requests_get_documented_statuses_and_the_next_call_works(json_runtime, caplog, body, path, headers):
    rt, client = json_runtime
    caplog.set_level(logging.ERROR, logger="cmfleet.runtime")
    try:
        r = client.post(path, content=body, headers=headers)
        status = r.status_code
    except httpx.RemoteProtocolError as exc:  # the server closed without an answer: never acceptable
        raise AssertionError(f"no answer for {path!r} {headers!r} {body[:80]!r}") from exc
    assert status in DOCUMENTED, (status, r.text[:300])
    if status >= 400 and "x-ndjson" not in r.headers.get("content-type", ""):
        assert "error" in r.json()
    assert not [rec for rec in caplog.records if rec.name.startswith("cmfleet.runtime")], "a handler raised"
    _echo_works(client)
