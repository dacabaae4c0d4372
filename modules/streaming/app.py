"""A streaming function: each yielded item is posted to the runtime as it is produced."""

from collections.abc import Iterable
from dataclasses import dataclass

from compute_modules.annotations import function


@dataclass
class CountRequest:
    start: int
    stop: int


@function(streaming=True)
def count(context, event: CountRequest) -> Iterable[int]:
    """Yield the integers from ``start`` up to ``stop`` (exclusive)."""
    yield from range(event.start, event.stop)


@function(streaming=True)
def words(context, event) -> Iterable[str]:
    """Yield each word of ``text``, one item at a time."""
    yield from event["text"].split()
