"""Reading a JSON event from the command line: inline text, ``@file.json`` or standard input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


class EventError(ValueError):
    """A JSON event that cannot be read; the message gives where and why."""


def parse_json(text: str, where: str) -> Any:
    """Parse JSON text; a syntax error names ``where``, the line, the column and the problem."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(
            f"{where}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg} (character {exc.pos}); "
            "quote the event in single quotes, e.g. '{\"x\": 1}'"
        ) from None


def read_event(arg: str | None) -> Any:
    """The event given as ``'<json>'``, ``@file.json``, ``-`` (stdin), or nothing (stdin if piped, else {})."""
    if arg is None:
        if sys.stdin is None or sys.stdin.isatty():
            return {}
        return parse_json(sys.stdin.read() or "{}", "<stdin>")
    if arg == "-":
        return parse_json(sys.stdin.read(), "<stdin>")
    if arg.startswith("@"):
        path = Path(arg[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EventError(f"{path}: cannot read the event file: {exc.strerror}") from None
        return parse_json(text, str(path))
    return parse_json(arg, "<event>")
