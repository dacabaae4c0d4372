"""Progress of long work (``cmfleet build``, ``check``, module envs): a live rich status on a terminal, and where
output is a log (CI, a pipe) one line per finished step, so a silent minute never looks like a hang."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO


@contextmanager
def steps(title: str, console: Any = None, stream: TextIO | None = None) -> Iterator[Callable[[str], None]]:
    """``with steps("building hello") as step: step("downloading wheels"); ...``

    On a terminal (``console``: a rich Console, default one on stderr) the status line shows the current step;
    otherwise each step, once it ends (at the next step or the end of the block), prints ``title: step (N.N s)``
    on ``stream`` (default stderr)."""
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    if console.is_terminal:
        with console.status(title) as status:
            yield lambda message: status.update(f"{title}: {message}")
        return
    out = stream or sys.stderr
    current: list[Any] = [None, time.monotonic()]

    def finish() -> None:
        if current[0] is not None:
            print(f"{title}: {current[0]} ({time.monotonic() - current[1]:.1f} s)", file=out, flush=True)

    def step(message: str) -> None:
        finish()
        current[0], current[1] = message, time.monotonic()

    try:
        yield step
    finally:
        finish()
