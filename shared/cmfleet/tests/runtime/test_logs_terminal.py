"""The runtime's terminal log lines: the text and colours rich would print (written without rich), replica lines
in batches, the runtime's own lines at once and in order."""

from __future__ import annotations

import asyncio
import io
import json

from rich.console import Console
from rich.text import Text

from cmfleet.runtime.logs import LogHub, terminal_message

SLS = (
    b'{"type": "service.1", "level": "INFO", "message": "call hello.add ok in 0.4 ms", '
    b'"params": {"job_id": "8d0cbd56-1111-4222-8333-444455556666", "session_id": "s1"}}\n'
)
LINES = [
    ("stderr", SLS),
    ("stderr", b"Traceback (most recent call last):\r\n"),
    ("stdout", b"plain output with [bold]markup[/] and a bell \x07 kept as text\n"),
    ("stderr", b'{"level": "WARN", "message": "careful", "params": {"job_id": "abc"}}\n'),
    ("stderr", b'{"level": "DEBUG", "message": "detail"}\n'),
    ("stderr", b'{"level": "ERROR", "message": "boom", "params": {"job_id": "e1e1e1e1e1"}}\n'),
    ("stderr", b'{"level": "WARNING", "message": "hmm", "params": {"job_id": "f1f1f1f1f1"}}\n'),
    ("stderr", b'{"level": "DEBUG", "message": "two\\nlines", "params": {"job_id": "d1d1d1d1d1"}}\n'),
]


def _hub(color: bool) -> tuple[LogHub, io.StringIO]:
    out = io.StringIO()
    hub = LogHub(terminal=True)
    hub._console = Console(file=out, highlight=False, force_terminal=color, color_system="standard" if color else None)
    hub._color = color
    return hub, out


def _rich_rendering(records: list[dict], color: bool) -> str:
    """What the runtime printed before, through rich (prefix + message + dim job id)."""
    out = io.StringIO()
    console = Console(
        file=out, highlight=False, force_terminal=color, color_system="standard" if color else None, width=300
    )
    styles = {"ERROR": "bold red", "FATAL": "bold red", "WARN": "yellow", "WARNING": "yellow", "DEBUG": "dim"}
    for r in records:
        head = f"{r['module']}/{r['replica']} "
        prefix = Text(head, style="magenta" if r["stream"] == "runtime" else "cyan")
        body = Text(terminal_message(r["message"], len(head)), style=styles.get(r["level"], ""))
        if r["job_id"]:
            body.append(f"  job={r['job_id'][:8]}", style="dim")
        console.print(prefix + body, soft_wrap=True)
    return out.getvalue()


def test_terminal_lines_are_what_rich_printed_with_and_without_colour():
    for color in (False, True):
        hub, out = _hub(color)
        for stream, raw in LINES:
            hub.line("hello", "hello-1", stream, raw, "s1")
        hub.system("replica hello-1 exited (exit code 1)", "hello", "hello-1", level="ERROR")
        hub.flush()
        assert out.getvalue() == _rich_rendering(list(hub.records), color)
        assert "job=8d0cbd56" in out.getvalue() and "\x07" not in out.getvalue()


def test_replica_lines_are_batched_and_the_runtimes_own_lines_flush_them_in_order():
    async def scenario() -> tuple[str, str, str]:
        hub, out = _hub(False)
        hub.line("hello", "hello-1", "stderr", SLS, "s1")
        hub.line("hello", "hello-1", "stdout", b"second\n", "s1")
        before = out.getvalue()  # nothing yet: written by the batch timer
        hub.system("reloading hello", "hello")
        after_system = out.getvalue()
        hub.line("hello", "hello-2", "stdout", b"third\n", "s2")
        while hub._pending:  # the batch timer writes it
            await asyncio.sleep(0.01)
        return before, after_system, out.getvalue()

    before, after_system, final = asyncio.run(scenario())
    assert before == ""
    assert after_system.splitlines() == [
        "hello/hello-1 call hello.add ok in 0.4 ms  job=8d0cbd56",
        "hello/hello-1 second",
        "hello/- reloading hello",
    ]
    assert final.splitlines()[-1] == "hello/hello-2 third"


def test_lines_outside_an_event_loop_are_written_at_once():
    hub, out = _hub(False)
    hub.line("hello", "hello-1", "stdout", b"now\n")
    assert out.getvalue() == "hello/hello-1 now\n"


def test_one_record_per_line_never_two_joined_no_empty_lines_and_the_api_has_the_same_records():
    hub, out = _hub(False)
    queue = hub.subscribe()  # what /api/logs/stream (the console's live view) receives
    job = "1e9844c4-1111-4222-8333-444455556666"
    sls = [
        {"level": "ERROR", "message": "Error executing job: 'values'", "params": {"job_id": job}},
        {"level": "ERROR", "message": "Error converting {} to type Reading\r", "params": {"job_id": job}},
        {"level": "ERROR", "message": "POST failed: boom \n Traceback (most recent call last):\n  x\n\n"},
        {"level": "INFO", "message": "progress 10%\rprogress 20%"},
    ]
    for record in sls:
        hub.line("typed", "typed-1", "stderr", json.dumps(record).encode() + b"\n", "s1")
    hub.line("typed", "typed-1", "stdout", b"   \n", "s1")  # a blank line is no record
    hub.line("typed", "typed-1", "stdout", b"plain\n", "s1")
    hub.flush()
    lines = out.getvalue().splitlines()
    assert all(line.strip() for line in lines)  # no empty line
    starts = [line for line in lines if line.startswith("typed/typed-1 ")]
    assert len(starts) == len(hub.records) == 5  # each record starts a line of its own
    assert lines[:2] == [
        "typed/typed-1 Error executing job: 'values'  job=1e9844c4",
        "typed/typed-1 Error converting {} to type Reading  job=1e9844c4",
    ]
    indent = " " * len("typed/typed-1 ")
    assert lines[2:8] == [
        "typed/typed-1 POST failed: boom",
        f"{indent} Traceback (most recent call last):",
        f"{indent}  x",
        "typed/typed-1 progress 10%",
        f"{indent}progress 20%",
        "typed/typed-1 plain",
    ]
    # the console's stream and GET /api/logs hold the same records, with the messages as the replica wrote them
    streamed = [queue.get_nowait() for _ in range(queue.qsize())]
    assert streamed == hub.query() == list(hub.records)
    assert hub.query()[2]["message"] == sls[2]["message"]
