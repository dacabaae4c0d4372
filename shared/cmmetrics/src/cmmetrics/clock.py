"""Clocks for the emission thread: the real one, and a manual one that lets tests step time without sleeping.

A clock has ``monotonic() -> float``, ``wait(timeout, stop) -> bool`` (block up to ``timeout`` seconds or until
``stop`` is set; True when stopped) and ``wake()`` (end a pending ``wait`` early, used when stopping).
"""

from __future__ import annotations

import threading
import time


class RealClock:
    """``time.monotonic`` and ``Event.wait``: setting the stop event ends the wait at once."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        return stop.wait(timeout)

    def wake(self) -> None:
        """Nothing to do: ``stop.set()`` already ends ``Event.wait``."""


class ManualClock:
    """A clock that only moves when ``advance`` is called, for tests of periodic emission.

    ``waits`` lists the deadline of every ``wait`` the emitter asked for, in order, so a test can assert the
    schedule; ``wait_for_waits(n)`` blocks the test until the emitter thread has asked for its n-th wait, which
    is a handshake, not a sleep.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._cond = threading.Condition()
        self._generation = 0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and release every ``wait`` whose deadline has passed."""
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        with self._cond:
            deadline = self._now + timeout
            generation = self._generation
            self.waits.append(deadline)
            self._cond.notify_all()
            while self._now < deadline and not stop.is_set() and self._generation == generation:
                self._cond.wait()
            return stop.is_set()

    def wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait_for_waits(self, n: int, timeout: float = 30.0) -> float:
        """Block until ``n`` waits have been requested and return the n-th deadline.

        ``timeout`` only keeps a broken test from hanging forever; it is not part of any assertion.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.waits) >= n, timeout):
                raise TimeoutError(f"the emitter asked for {len(self.waits)} wait(s), expected {n}")
            return self.waits[n - 1]
