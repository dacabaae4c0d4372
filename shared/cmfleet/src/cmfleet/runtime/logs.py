"""Replica output: every stdout/stderr line collected, SLS JSON lines parsed, kept in a bounded ring buffer,
streamed to subscribers (the gateway's Server-Sent Events) and printed to the terminal (colours as rich would
choose them; each line written with precomputed ANSI codes, since rendering through rich cost more CPU than the
rest of a job's handling).

A record (the shape ``GET /api/logs`` returns)::

    {"seq": 12, "time": 1764384000.1, "module": "hello", "replica": "hello-1", "stream": "stderr",
     "level": "INFO", "message": "start slow", "job_id": "5e4a...", "session_id": "hello-1-3f2a", "origin": "app.py:5"}

Secret values (source credentials, replica tokens) are replaced by ``***`` before a line is stored or shown, in
every form a program writes them: raw, JSON-escaped (ASCII-only or not), Python ``repr``/``ascii``-escaped
(:func:`secret_forms`). The scheduler and the gateway redact job errors and error bodies with the same hub.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

_LEVEL_STYLE = {"ERROR": "bold red", "FATAL": "bold red", "WARN": "yellow", "WARNING": "yellow", "DEBUG": "dim"}
REDACTED = "***"
_CONTEXT_PARAMS = frozenset({"job_id", "session_id", "process_id"})  # SLS params shown as record fields, not params
# What rich writes for a line (prefix + message + job): the whole line in the prefix's colour (cyan, magenta for
# the runtime's own lines), the level's style over it, the job id dim over that. (SGR parameters, precomputed.)
_BASE = {False: "36", True: "35"}  # runtime line?
_OVER = {"bold red": "1;31", "yellow": "33", "dim": "2;{base}"}
_JOB = {None: "2;{base}", "bold red": "1;2;31", "yellow": "2;33", "dim": "2;{base}"}  # dim over the level's style
# Control codes rich removes from printed text (bell, backspace, vertical tab, form feed, carriage return).
_STRIP = {7: None, 8: None, 11: None, 12: None, 13: None}
# Replica lines reach the terminal in batches at most this late (s): one write per batch rather than per line.
FLUSH_AFTER = 0.05


def secret_forms(secret: str) -> set[str]:
    """The ways ``secret`` appears in text: as is, inside a JSON string (``\\"``, ``\\\\``, ``\\u00e9`` or raw
    non-ASCII), inside a JSON string inside a JSON string, and inside a Python ``repr``/``ascii`` of a string that
    holds it (either quote style)."""
    forms = {secret}
    for ensure_ascii in (True, False):
        once = json.dumps(secret, ensure_ascii=ensure_ascii)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ensure_ascii)[1:-1]}
    for escaped in (secret.encode("unicode_escape").decode("ascii"), repr(secret)[1:-1], ascii(secret)[1:-1]):
        plain = escaped.replace("\\'", "'").replace('\\"', '"')
        forms |= {escaped, plain, plain.replace("'", "\\'"), plain.replace('"', '\\"')}
    return {f for f in forms if f}


def redact_strings(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` (decoded JSON) with ``redact`` applied to every string in it, keys included: a secret inside a
    string is then seen in the form the string holds it (e.g. a ``repr``), not escaped once more by JSON."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_strings(item, redact) for item in value]
    if isinstance(value, dict):
        return {redact(str(k)): redact_strings(v, redact) for k, v in value.items()}
    return value


def redact_json_bytes(body: bytes, redact: Callable[[str], str]) -> bytes:
    """A JSON body with every secret replaced: in its text, then in each of its decoded strings (a body that is not
    JSON only in its text)."""
    text = redact(body.decode("utf-8", "replace"))
    try:
        value = json.loads(text)
    except ValueError:
        return text.encode()
    clean = redact_strings(value, redact)
    return text.encode() if clean == value else json.dumps(clean).encode()


def matches(record: dict[str, Any], module: str | None, replica: str | None, job: str | None) -> bool:
    """Whether a log record passes the module / replica / job filters (an empty filter passes everything)."""
    return (
        (not module or record["module"] == module)
        and (not replica or record["replica"] == replica)
        and (not job or record["job_id"] == job)
    )


class LogHub:
    """The runtime's log lines: ring buffer, live subscribers, terminal output."""

    def __init__(self, size: int = 5000, terminal: bool = True) -> None:
        self.records: deque[dict[str, Any]] = deque(maxlen=size)
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.secrets: list[str] = []
        self.forms: list[str] = []  # every secret in every encoding (secret_forms), longest first
        self._line_listeners: list[Callable[[str, bytes], None]] = []  # see add_line_listener
        self.seq = 0
        self._console = None  # a rich Console: decides colours; prints while a live display (progress) is shown
        self._color = False
        self._pending: list[str] = []  # terminal lines not written yet
        self._flush_timer: asyncio.TimerHandle | None = None
        if terminal:
            import atexit

            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
            self._color = self._console.color_system is not None
            atexit.register(self.flush)

    def add_secrets(self, values: Iterable[str]) -> None:
        """Values that must never be shown (longest first, so a secret containing another is fully hidden)."""
        merged = {v for v in (*self.secrets, *values) if isinstance(v, str) and len(v) >= 3}
        self.secrets = sorted(merged, key=len, reverse=True)
        self.forms = sorted({f for v in merged for f in secret_forms(v) if len(f) >= 3}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret value, in every form (:func:`secret_forms`), replaced by ``***``."""
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def redact_json(self, value: Any) -> Any:
        """A JSON value with every secret in its strings (keys included) replaced by ``***``."""
        return redact_strings(value, self.redact) if self.forms else value

    def add_line_listener(self, listener: Callable[[str, bytes], None]) -> None:
        """Have ``listener(module, raw)`` called with each replica output line as written, before the hub records
        it (its secrets are still in it: a listener redacts what it keeps, as the console's metrics do)."""
        self._line_listeners.append(listener)

    def line(self, module: str, replica: str, stream: str, raw: bytes, session_id: str | None = None) -> None:
        """Record one line of a replica's output."""
        for listener in self._line_listeners:
            listener(module, raw)
        text = self.redact(raw.decode("utf-8", "replace").rstrip("\r\n"))
        if not text.strip():  # a blank line is no record (nor an empty line in the terminal)
            return
        level = "ERROR" if stream == "stderr" and text.startswith("Traceback") else "INFO"
        message, job_id, origin, extra = text, None, None, None
        if text[0] == "{" and '"level"' in text:
            try:
                sls = json.loads(text)
            except ValueError:
                sls = None
            if isinstance(sls, dict) and "message" in sls:
                params = sls.get("params")
                if not isinstance(params, dict):
                    params = {}
                level = str(sls.get("level", "INFO")).upper()
                message = str(sls["message"])
                job_id = params.get("job_id") or None
                session_id = params.get("session_id") or session_id
                origin = sls.get("origin")
                unsafe = sls.get("unsafeParams")
                extra = {k: v for k, v in params.items() if k not in _CONTEXT_PARAMS}
                if isinstance(unsafe, dict):
                    extra.update(unsafe)
                if self.forms and "\\u" in text:  # backslash-u escapes (any case) may spell a secret: check decoded
                    message = self.redact(message)
                    extra = self.redact_json(extra)
        record: dict[str, Any] = {
            "seq": 0,
            "time": time.time(),
            "module": module,
            "replica": replica,
            "stream": stream,
            "level": level,
            "message": message,
            "job_id": job_id,
            "session_id": session_id,
            "origin": origin,
        }
        if extra:
            record["params"] = extra
        self.emit(record)

    def system(self, message: str, module: str = "cmfleet", replica: str = "-", level: str = "INFO") -> None:
        """A line from the runtime itself (replica started, crashed, reloaded...)."""
        self.emit(
            {
                "seq": 0,
                "time": time.time(),
                "module": module,
                "replica": replica,
                "stream": "runtime",
                "level": level,
                "message": self.redact(message),
                "job_id": None,
                "session_id": None,
                "origin": None,
            }
        )

    def emit(self, record: dict[str, Any]) -> None:
        self.seq += 1
        record["seq"] = self.seq
        self.records.append(record)
        for queue in self.subscribers:
            if queue.qsize() < 10000:  # a stalled reader loses lines rather than memory
                queue.put_nowait(record)
        if self._console is not None:
            self._print(record)

    def _print(self, record: dict[str, Any]) -> None:
        console = self._console
        if getattr(console, "_live_stack", None):  # a live display (progress) is on screen: rich prints above it
            self.flush()
            self._print_rich(record)
            return
        prefix = f"{record['module']}/{record['replica']} "
        message = terminal_message(record["message"], len(prefix))
        job = record.get("job_id")
        if self._color:
            text = _colored(prefix, message, job, record["stream"] == "runtime", _LEVEL_STYLE.get(record["level"]))
        else:
            text = f"{prefix}{message}  job={job[:8]}\n" if job else f"{prefix}{message}\n"
            if "\t" in text:
                text = text.expandtabs(8)
        self._pending.append(text)
        if record["stream"] == "runtime":  # the runtime's own lines (rare) show at once, after those before them
            self.flush()
        elif self._flush_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush_timer = loop.call_later(FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        """Write the terminal lines not written yet."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._pending and self._console is not None:
            text = "".join(self._pending)
            self._pending.clear()
            file = self._console.file
            file.write(text)
            file.flush()

    def _print_rich(self, record: dict[str, Any]) -> None:
        from rich.text import Text

        style = _LEVEL_STYLE.get(record["level"], "")
        head = f"{record['module']}/{record['replica']} "
        prefix = Text(head, style="cyan" if record["stream"] != "runtime" else "magenta")
        body = Text(terminal_message(record["message"], len(head)), style=style)
        if record.get("job_id"):
            body.append(f"  job={record['job_id'][:8]}", style="dim")
        console = self._console
        assert console is not None  # only _print calls this, and emit calls _print only when there is a console
        console.print(prefix + body, soft_wrap=True)

    def query(
        self,
        module: str | None = None,
        replica: str | None = None,
        job: str | None = None,
        limit: int = 200,
        after: int = 0,
    ) -> list[dict[str, Any]]:
        """Matching records, oldest first (the newest ``limit`` of them)."""
        out: list[dict[str, Any]] = []
        for record in reversed(self.records):
            if record["seq"] <= after:
                break
            if not matches(record, module, replica, job):
                continue
            out.append(record)
            if len(out) >= limit:
                break
        out.reverse()
        return out

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(queue)


def terminal_message(message: str, indent: int) -> str:
    """A record's message as the terminal shows it: every line break (``\\r`` too: rich would drop it and run two
    lines together) starts a line indented by ``indent`` spaces, under the first; blank lines and trailing blanks
    dropped; the control characters rich removes, removed. So each record starts a line of its own, no record
    runs into the next and no line is empty."""
    lines = [line.translate(_STRIP).rstrip() for line in message.splitlines()]
    lines = [line for line in lines if line.strip()]
    if not lines:
        return ""
    return ("\n" + " " * indent).join(lines)


def _colored(prefix: str, message: str, job: str | None, runtime: bool, style: str | None) -> str:
    """One terminal line with the SGR codes rich would write for it (a style ends at each line break, as there)."""
    base = _BASE[runtime]
    tail = f"\x1b[{_JOB[style].format(base=base)}m  job={job[:8]}\x1b[0m\n" if job else "\n"
    if style is None:
        if "\n" in message:
            message = message.replace("\n", f"\x1b[0m\n\x1b[{base}m")
        return f"\x1b[{base}m{prefix}{message}\x1b[0m{tail}"
    over = _OVER[style].format(base=base)
    if "\n" in message:
        message = message.replace("\n", f"\x1b[0m\n\x1b[{over}m")
    return f"\x1b[{base}m{prefix}\x1b[0m\x1b[{over}m{message}\x1b[0m{tail}"
