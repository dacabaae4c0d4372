"""Signals as exceptions, for the few steps that change a repository and must undo themselves when stopped.

Python turns SIGINT into ``KeyboardInterrupt`` but lets SIGTERM and SIGHUP end the process on the spot, with no
``finally`` run. Inside :func:`signals_raise` all three raise :class:`Interrupted`, so the caller can put back
what it wrote; inside :func:`signals_held` they are ignored (and so are they by the git processes started there:
an ignored signal stays ignored across ``exec``), so that putting back cannot itself be interrupted.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A signal arrived inside :func:`signals_raise` (a BaseException, as ``KeyboardInterrupt`` is: no
    ``except Exception`` may swallow it)."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


def _raise(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _handlers(handler: Any) -> Iterator[None]:
    """``handler`` for every signal of :data:`SIGNALS` not ignored already; the previous ones back afterwards."""
    if not _main_thread():  # only the main thread may set handlers (and only it receives signals)
        yield
        return
    previous = {}
    for sig in SIGNALS:
        current = signal.getsignal(sig)
        if current is signal.SIG_IGN:  # e.g. started with nohup, or SIGINT in a background job: stays ignored
            continue
        previous[sig] = current
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`."""
    with _handlers(_raise):
        yield


@contextmanager
def signals_held() -> Iterator[None]:
    """Within the block SIGINT, SIGTERM and SIGHUP are ignored (by child processes started in it too)."""
    with _handlers(signal.SIG_IGN):
        yield
