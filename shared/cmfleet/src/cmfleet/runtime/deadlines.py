"""Items that expire a fixed delay after they were added, on one event-loop timer for all of them.

The scheduler gives every job a timeout and every parked long-poll a hold, and nearly all of them end long before
(a job in milliseconds, its timeout a minute away). A ``call_later`` per item plus its ``cancel`` cost about 4% of
the runtime's CPU per job (measured with callgrind: 14k of 353k instructions). With one delay, deadlines come in
the order items are added, so a queue in that order and one timer armed for its oldest entry expire them all: an
ended item at the front is dropped as the next one is added (sequential calls keep the queue one entry long), and
the timer, when it fires, expires what is due, drops what ended and re-arms for the new front.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

T = TypeVar("T")


class Deadlines(Generic[T]):
    """Call ``expire(item)`` ``delay`` seconds after :meth:`add` unless ``live(item)`` is false by then.

    ``live`` runs for each item at least once, so an ``operator.attrgetter`` of a flag the item keeps is best (a
    Python function call costs about as much as the rest of :meth:`add`).

    Example::

        holds = Deadlines(loop, 5.0, expire=end_hold, live=operator.attrgetter("live"))
        holds.add(poll)  # end_hold(poll) in 5 s, unless poll.live is False by then (it was answered)
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, delay: float, expire: Callable[[T], None], live: Callable[[T], object]
    ) -> None:
        self.loop, self.delay = loop, delay
        self.expire, self.live = expire, live
        self.entries: deque[tuple[float, T]] = deque()  # (deadline, item), deadlines in ascending order
        self.timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, item: T) -> None:
        """Start ``item``'s delay now."""
        entries, live = self.entries, self.live
        while entries and not live(entries[0][1]):  # the usual front: an item that already ended
            entries.popleft()
        deadline = self.loop.time() + self.delay
        entries.append((deadline, item))
        if self.timer is None:
            self.timer = self.loop.call_at(deadline, self._due)

    def _due(self) -> None:
        self.timer = None
        now = self.loop.time()
        entries, live = self.entries, self.live
        while entries:
            deadline, item = entries[0]
            if live(item):
                if deadline > now:
                    break
                entries.popleft()
                self.expire(item)  # may add items: they go behind, with later deadlines
            else:
                entries.popleft()  # ended before its deadline
        if entries and self.timer is None:
            self.timer = self.loop.call_at(entries[0][0], self._due)
