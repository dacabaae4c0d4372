"""Strict JSON in: what the gateway accepts as an event (RFC 8259 JSON, nested no deeper than a bound).

Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON: another SDK cannot parse the job) and
recurses once per nesting level (a deep enough document raises ``RecursionError``); both are refused here with a
``ValueError`` whose message says what and where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# a JSON string (skipped whole) or a bracket
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity; send null or a string)")


_DECODER = json.JSONDecoder(parse_constant=_constant)  # one decoder: json.loads(..., parse_constant=) makes one a call
# what decode() runs after skipping whitespace: (value, end) or StopIteration; set by JSONDecoder.__init__, which
# typeshed does not declare
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data`` (JSON text; strings are skipped)."""
    deepest = level = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        elif token in (b"]", b"}"):
            level -= 1
    return deepest


def loads(data: bytes, max_depth: int) -> Any:
    """``data`` (UTF-8) as a JSON value, or a ValueError naming the problem (malformed, not UTF-8, NaN/Infinity,
    nested deeper than ``max_depth`` levels)."""
    if data.count(b"[") + data.count(b"{") > max_depth and depth(data) > max_depth:  # counting is cheap; scan if needed
        raise ValueError(
            f"the JSON is nested deeper than the limit of {max_depth} levels of arrays and objects "
            "(max-json-depth in [tool.cmfleet.dev])"
        )
    text = data.decode("utf-8")
    try:
        try:  # the decoder's C scanner at once: a value filling the text needs none of decode()'s Python steps
            value, end = _SCAN(text, 0)
        except StopIteration:
            return _DECODER.decode(text)  # no value at the start: decode() says why, in its own words
        if end != len(text):
            return _DECODER.decode(text)  # whitespace or more data after it: the same
        return value
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
