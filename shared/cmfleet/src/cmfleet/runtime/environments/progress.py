"""Progress of env builds on a terminal (rich)."""

from __future__ import annotations

import threading
from typing import Any


class _Progress:
    """Live rich progress lines (one per env being built) on the runtime's terminal console."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._progress: Any = None
        self._lock = threading.Lock()

    def add(self, module: str) -> Any:
        if self.console is None:
            return None
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with self._lock:
            if self._progress is None:
                self._progress = Progress(
                    SpinnerColumn(),
                    TextColumn("[bold]env[/] {task.fields[module]}"),
                    TimeElapsedColumn(),
                    TextColumn("[dim]{task.description}"),
                    console=self.console,
                    transient=True,
                )
                self._progress.start()
            return self._progress.add_task("creating venv", module=module, total=None)

    def update(self, task: Any, line: str) -> None:
        if task is None:
            return
        with self._lock:
            if self._progress is not None:
                self._progress.update(task, description=line[:100])

    def done(self, task: Any) -> None:
        if task is None:
            return
        with self._lock:
            if self._progress is None:
                return
            self._progress.remove_task(task)
            if not self._progress.tasks:
                self._progress.stop()
                self._progress = None
