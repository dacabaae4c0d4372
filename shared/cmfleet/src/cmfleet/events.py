"""Reading a JSON event from the command line: inline text, ``@file.json`` or standard input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


class EventError(ValueError):
    """A JSON event that cannot be read; the message gives where and why."""


#: How to fix malformed JSON, by where it came from: only an argument went through the shell's quoting.
_ARGUMENT_HINT = (
    "quote the event in single quotes, e.g. '{\"x\": 1}' (under `hatch run`, double the braces: "
    "'{{\"x\": 1}}', or pipe the event on stdin)"
)
_FILE_HINT = "JSON needs double-quoted names and strings, and no trailing commas"


def parse_json(text: str, where: str, hint: str = _FILE_HINT) -> Any:
    """Parse JSON text; a syntax error names ``where``, the line, the column, the problem and ``hint``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(
            f"{where}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg} (character {exc.pos}); {hint}"
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
    return parse_json(arg, "<event>", _ARGUMENT_HINT)
