"""The scheduler's deadlines (job timeouts, long-poll holds) on one event-loop timer each: run on a real loop."""

from __future__ import annotations

import asyncio
import operator

from cmfleet.runtime.deadlines import Deadlines
from cmfleet.runtime.scheduler import FAILED, SUCCEEDED, TIMED_OUT, Replica, Scheduler


class Item:
    def __init__(self, name: str) -> None:
        self.name, self.live = name, True


def run(coro):
    return asyncio.run(coro)


def test_items_expire_in_order_after_the_delay_unless_they_ended():
    async def main() -> tuple[list[tuple[str, float]], int, bool]:
        loop = asyncio.get_running_loop()
        expired: list[tuple[str, float]] = []
        start = loop.time()
        deadlines: Deadlines[Item] = Deadlines(
            loop, 0.2, lambda item: expired.append((item.name, loop.time() - start)), operator.attrgetter("live")
        )
        a, b, c = Item("a"), Item("b"), Item("c")
        deadlines.add(a)
        await asyncio.sleep(0.05)
        deadlines.add(b)
        deadlines.add(c)
        b.live = False  # answered before its deadline: never expired
        await asyncio.sleep(0.4)
        late = Item("late")  # added after the timer fired and the queue emptied: the timer is armed again
        deadlines.add(late)
        await asyncio.sleep(0.3)
        return expired, len(deadlines), deadlines.timer is None

    expired, left, idle = run(main())
    assert [name for name, _ in expired] == ["a", "c", "late"]
    assert all(after >= 0.2 - 0.01 for _, after in expired[:2])  # not before their delay
    assert expired[1][1] >= 0.25 - 0.01  # c: its own deadline, 0.05 s after a's
    assert left == 0 and idle  # nothing kept, no timer left armed


def test_ended_items_at_the_front_are_dropped_as_new_ones_come():
    async def main() -> tuple[int, list[str]]:
        loop = asyncio.get_running_loop()
        expired: list[str] = []
        deadlines: Deadlines[Item] = Deadlines(
            loop, 60, lambda item: expired.append(item.name), operator.attrgetter("live")
        )
        for n in range(1000):  # sequential calls: each ends before the next is added
            item = Item(str(n))
            deadlines.add(item)
            item.live = False
        return len(deadlines), expired

    size, expired = run(main())
    assert size == 1 and expired == []  # the queue stays one entry long, however many items went through


def test_the_scheduler_times_out_jobs_and_ends_holds_on_time_whatever_ends_first():
    async def main() -> dict[str, object]:
        loop = asyncio.get_running_loop()
        scheduler = Scheduler(loop, poll_hold=0.5)
        scheduler.add_module("m", queue_limit=100, timeout=0.4)
        replica = Replica(id="m-1", module="m", capacity=1, token="t")
        scheduler.add_replica(replica)
        answers: list[object] = []
        scheduler.take(replica)  # its first poll: ready
        scheduler.park(replica, answers.append)
        started = loop.time()
        quick = scheduler.submit("m", "add", b"{}")  # goes to the parked poll at once
        scheduler.result_complete(quick, b"3", chunked=False)
        slow = scheduler.submit("m", "add", b"{}")  # no poll waits: stays queued, times out
        late_poll: list[object] = []
        await asyncio.sleep(0.1)
        scheduler.park(replica, late_poll.append)  # its hold ends 0.5 s later, after slow's timeout
        await slow.done
        timed_out_after = loop.time() - started
        await asyncio.sleep(0.35)
        return {
            "quick": quick.state,
            "slow": slow.state,
            "after": timed_out_after,
            "error": slow.error,
            "answers": answers,
            "late": late_poll,
            "quick_done": quick.done.done(),  # made after the job ended: already set
        }

    out = run(main())
    assert out["quick"] == SUCCEEDED and out["slow"] == TIMED_OUT
    assert 0.39 <= out["after"] < 1.0, out["after"]  # type: ignore[operator]
    assert out["error"] == "timed out after 0.4 s waiting in the queue"
    assert [getattr(a, "state", a) for a in out["answers"]] == [SUCCEEDED]  # type: ignore[union-attr]
    assert out["late"] == [None]  # the second hold ended with no job: the 204 answer
    assert out["quick_done"] is True


def test_a_job_that_fails_is_not_timed_out_later():
    async def main() -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        scheduler = Scheduler(loop, poll_hold=5)
        scheduler.add_module("m", queue_limit=10, timeout=0.2)
        job = scheduler.submit("m", "add", b"{}")
        scheduler.fail_queued("m", "cannot start")
        await asyncio.sleep(0.35)
        return job.state, scheduler.counts[TIMED_OUT]

    state, timeouts = run(main())
    assert state == FAILED and timeouts == 0
