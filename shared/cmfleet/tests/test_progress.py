"""Progress of long work: a line per finished step where output is a log, a live status on a terminal."""

from __future__ import annotations

import io
import re

from rich.console import Console

from cmfleet.progress import steps


def test_a_log_gets_one_line_per_finished_step():
    out = io.StringIO()
    console = Console(file=io.StringIO(), force_terminal=False)
    with steps("building hello", console, out) as step:
        step("wheel of hello")
        assert out.getvalue() == ""  # a step prints when it ends
        step("offline install check")
    lines = out.getvalue().splitlines()
    assert [re.sub(r"\(\d+\.\d s\)$", "(T)", line) for line in lines] == [
        "building hello: wheel of hello (T)",
        "building hello: offline install check (T)",
    ]


def test_a_terminal_gets_a_live_status_and_no_lines():
    out, screen = io.StringIO(), io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with steps("checking 2 unit(s)", console, out) as step:
        step("hello")
        step("typed")
    assert out.getvalue() == ""


def test_check_says_which_unit_it_is_on_when_not_on_a_terminal(cmfleet):
    proc = cmfleet("check", "hello", "textkit")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps_said = re.findall(r"^checking 2 unit\(s\): (\w+) \(\d+\.\d s\)$", proc.stderr, re.M)
    assert steps_said == ["hello", "textkit"]
    assert proc.stdout.strip().endswith("2 unit(s) OK")
