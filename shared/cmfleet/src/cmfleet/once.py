"""Work done once per key, whichever thread asks first: the others wait for its answer (or its exception).

Used where threads ask the same question many times: a ``cmfleet status`` run's git queries
(``repo.git.reading``) and what the module builds of one ``cmfleet build`` run share (``artifacts.builder``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["Once"]

T = TypeVar("T")


class Once:
    """``once.get(key, compute)``: ``compute()`` the first time ``key`` is asked, its answer afterwards."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Hashable, Future[Any]] = {}

    def get(self, key: Hashable, compute: Callable[[], T], before: Callable[[bool], None] | None = None) -> T:
        """The answer for ``key`` (an exception of ``compute`` is raised to every asker). ``before(mine)`` is
        called first, with whether this call is the one that computes it (to say so before the wait)."""
        with self._lock:
            future = self._answers.get(key)
            mine = future is None
            if mine:
                future = self._answers[key] = Future()
        assert future is not None
        if before is not None:
            before(mine)
        if not mine:
            answer: T = future.result()  # a key's askers pass computes of one type (the key names the question)
            return answer
        try:
            value = compute()
        except BaseException as exc:
            future.set_exception(exc)
            raise
        future.set_result(value)
        return value
