"""One shape for a function's failure, wherever it is shown: the gateway's error bodies, ``/api/jobs``, the web
console, ``cmfleet invoke``, the pytest fixtures and the image's replica log lines (this module is in cmcore, so
the container and the toolkit shape a failure the same way).

    {"error": "KeyError: 'x'",
     "traceback": "Traceback (most recent call last):\\n  File \\"app.py\\", line 9, in add\\n    return x[\\"x\\"]",
     "hint": "..."}

``error`` is the exception's type and message on one line; ``traceback`` keeps only the module's own frames
(paths relative to the module's folder; no SDK, pluggy, cmfleet or site-packages frames), or is absent when none
of the module's code ran; ``hint`` is there when it helps. The full traceback stays where it was written: the
SDK's result as the replica posted it, and the replica's log lines.
"""

from __future__ import annotations

import json
import os
import re
import traceback as tb
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRACEBACK_HEAD = "Traceback (most recent call last):"
# Frames that are never the user's bug: installed packages (a module's dependencies, a replica venv's), and, when
# the module's folder is not known, the toolkit, pluggy's hook calls, the SDK and the import machinery.
_INSTALLED = ("/site-packages/", "/dist-packages/")
_TOOL_PATHS = ("/cmcore/", "/cmfleet/", "/pluggy/", "/compute_modules/", "/importlib/")
_FRAME = re.compile(r'^  File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<name>.+)$')
MAX_ERROR = 500  # characters of the one-line error


@dataclass(frozen=True)
class Frame:
    """One traceback frame."""

    path: str
    line: int
    name: str
    code: str = ""


@dataclass
class FunctionError:
    """A failed call, as people read it."""

    error: str
    traceback: str | None = None
    hint: str | None = None

    def as_json(self) -> dict[str, Any]:
        """``{"error", "traceback", "hint"}`` (the last two only when present)."""
        out: dict[str, Any] = {"error": self.error}
        if self.traceback:
            out["traceback"] = self.traceback
        if self.hint:
            out["hint"] = self.hint
        return out

    def report(self, what: str) -> str:
        """``<what> failed: <error>``, then the module's frames and the hint (``cmfleet invoke``, failing tests)."""
        parts = [f"{what} failed: {self.error}"]
        if self.traceback:
            parts.append(self.traceback)
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)

    def text(self) -> str:
        """For a terminal or a test report: the module's frames, the error, the hint."""
        parts = [p for p in (self.traceback, self.error) if p]
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


def one_line(text: str, limit: int = MAX_ERROR) -> str:
    """``text`` on one line: blank lines dropped, the rest joined by spaces, cut at ``limit`` characters."""
    flat = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _own(path: str, name: str, root: Path | None) -> str | None:
    """The path to show for a frame of the module's own code (relative to ``root``), or None for a tool frame."""
    norm = path.replace("\\", "/")
    if name.startswith("cmfleet_") or any(p in norm for p in _INSTALLED) or norm.startswith("<"):
        return None  # a plugin's cmfleet_invoke middleware is not where the user's bug is
    if root is None:
        return None if any(p in norm for p in _TOOL_PATHS) else path
    try:
        return Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(root))).as_posix()
    except ValueError:
        return None


def own_frames(frames: list[Frame], root: Path | None = None) -> list[Frame]:
    """The module's own frames, paths relative to ``root`` (the module's folder). Without ``root`` (a traceback a
    replica posted), the folder of the first ``app.py`` frame is the module's: the SDK calls into ``app.py``."""
    if root is None:
        root = next((Path(f.path).parent for f in frames if Path(f.path.replace("\\", "/")).name == "app.py"), None)
    out = []
    for frame in frames:
        shown = _own(frame.path, frame.name, root)
        if shown is not None:
            out.append(Frame(shown, frame.line, frame.name, frame.code))
    return out


def format_frames(frames: list[Frame]) -> str | None:
    """``Traceback (most recent call last):`` and the frames as Python prints them, or None without frames."""
    if not frames:
        return None
    lines = [TRACEBACK_HEAD]
    for f in frames:
        lines.append(f'  File "{f.path}", line {f.line}, in {f.name}')
        if f.code:
            lines.append(f"    {f.code}")
    return "\n".join(lines)


def from_exception(exc: BaseException, root: Path | None = None, hint: str | None = None) -> FunctionError:
    """The shape of an exception raised in process (``cmfleet invoke``, the pytest fixtures)."""
    summary = tb.TracebackException.from_exception(exc)
    frames = [Frame(f.filename, f.lineno or 0, f.name, (f.line or "").strip()) for f in summary.stack]
    error = one_line("".join(summary.format_exception_only()))
    return FunctionError(error, format_frames(own_frames(frames, root)), hint)


def parse_traceback(text: str) -> tuple[list[Frame], str]:
    """The frames and the final ``Type: message`` of a printed traceback (the last one, when exceptions chain)."""
    lines = text.splitlines()
    start = max((i for i, line in enumerate(lines) if line.startswith(TRACEBACK_HEAD)), default=-1)
    frames: list[Frame] = []
    rest: list[str] = []
    i = start + 1
    while i < len(lines):
        match = _FRAME.match(lines[i])
        if match:
            code = ""
            if i + 1 < len(lines) and lines[i + 1].startswith("    ") and not _FRAME.match(lines[i + 1]):
                code = lines[i + 1].strip()
                i += 1
            while i + 1 < len(lines) and lines[i + 1].startswith("    ") and set(lines[i + 1].strip()) <= set("^~ "):
                i += 1  # the carets under the code (3.11+)
            frames.append(Frame(match["path"], int(match["line"]), match["name"], code))
            rest = []
        elif start >= 0:
            rest.append(lines[i])
        i += 1
    return frames, one_line("\n".join(rest))


def from_result(value: Any, root: Path | None = None) -> FunctionError | None:
    """The shape of an SDK error result, or None when ``value`` is not one.

    The Python SDK posts ``{"exception": "<message>: <traceback>"}``; an unknown function gives its
    ``{"error": "Unknown query type"}``; the TypeScript SDK posts ``{"error": name, "reason": message}``.
    """
    if isinstance(value, bytes | str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict) or not value or not set(value) <= {"exception", "error", "reason"}:
        return None
    if "exception" in value:
        text = str(value["exception"])
        message, sep, trace = text.partition(": " + TRACEBACK_HEAD)
        if not sep:
            return FunctionError(one_line(text))
        frames, final = parse_traceback(TRACEBACK_HEAD + trace)
        return FunctionError(final or one_line(message), format_frames(own_frames(frames, root)))
    if "error" not in value:
        return None
    error, reason = str(value["error"]), value.get("reason")
    if error == "Unknown query type":
        return FunctionError(error, hint="the replica has no such function: is it registered in app.py?")
    if reason:
        # a JavaScript stack, when the reason carries one: its "at" lines, without node_modules/ and node: frames
        lines = str(reason).splitlines()
        stack = [ln.strip() for ln in lines if ln.strip().startswith("at ")]
        said = [ln for ln in lines if not ln.strip().startswith("at ")]
        own = [ln for ln in stack if "node_modules/" not in ln and "(node:" not in ln and not ln.startswith("at node:")]
        text = one_line(f"{error}: " + " ".join(said))
        return FunctionError(text, "\n".join(f"  {ln}" for ln in own) or None)
    return FunctionError(one_line(error))
