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

    On a terminal (``console``: a rich Console, default one on stderr) a live line shows the current step;
    otherwise each step, once it ends (at the next step or the end of the block), prints ``title: step (N.N s)``
    on ``stream`` (default stderr). One job of a :class:`StepBoard`."""
    with StepBoard(console, stream) as board, board.job(title) as step:
        yield step


class StepBoard:
    """The current step of several jobs running at once (``cmfleet build`` of many modules): on a terminal one live
    row per job (rich), otherwise ``title: step (N.N s)`` lines as each step ends, as :func:`steps` prints them.

        with StepBoard(console) as board, board.job("building hello") as step:
            step("wheel of hello")

    Jobs may run in threads: the rows and the lines are written under a lock."""

    def __init__(self, console: Any = None, stream: TextIO | None = None) -> None:
        import threading

        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self.console = console
        self.stream = stream
        self.lock = threading.Lock()
        self.live: Any = None

    def __enter__(self) -> StepBoard:
        if self.console.is_terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.live = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,  # as a status line: gone once the work is, the command prints its results
            )
            self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    @contextmanager
    def job(self, title: str) -> Iterator[Callable[[str], None]]:
        """One job's row (or lines) while the block runs; the block gets ``step(message)``."""
        if self.live is not None:
            task = self.live.add_task(title)

            def show(message: str) -> None:
                self.live.update(task, description=f"{title}: {message}")

            try:
                yield show
            finally:
                self.live.update(task, description=f"{title}: done")
                self.live.stop_task(task)
            return
        out = self.stream or sys.stderr
        current: list[Any] = [None, time.monotonic()]

        def finish() -> None:
            if current[0] is not None:
                line = f"{title}: {current[0]} ({time.monotonic() - current[1]:.1f} s)"
                with self.lock:
                    print(line, file=out, flush=True)

        def step(message: str) -> None:
            finish()
            current[0], current[1] = message, time.monotonic()

        try:
            yield step
        finally:
            finish()
