"""CPU placement of busy replicas: each busy replica's processes share CPUs of their own.

The Python SDK runs a job in two processes of one replica: its main process takes the job (``GET job``) and hands it
to a pool worker it forked, which runs the function and posts the result. The two alternate, job after job, over a
pipe, and run the same code from pages they share since the fork. Left to the kernel, they land on different CPUs:
every hand-off wakes the other CPU and each process finds its caches cold. Kept on the same CPU, measured on 2 cores
(8 concurrent clients, ``hello.add``, the replicas' CPU from ``/proc/<pid>/task/*/schedstat``, interleaved A/B on the
same processes): replica CPU per job -13% (1,533 -> 1,339 us) and jobs/s +17% (902 -> 1,059); sequential latency
unchanged. Placing a replica's two processes on *different* CPUs gave no gain, so it is the sharing that counts.

Only a busy replica is placed (one that holds a job or finished one within :data:`BUSY_WINDOW` s), so an idle fleet
of fifty modules is left to the kernel and two busy replicas never share a CPU while another one has none; each tick
evens out the busy replicas' CPUs. A replica gets as many CPUs as its concurrency (its workers run in parallel); one
that would get every CPU is not placed. This is local only: the image and ``cmcore.entrypoint`` never set affinity
(in Foundry each replica is a container with its own CPU share). ``pin-busy = false`` in ``[tool.cmfleet.dev]`` (or
a module's table) turns it off, as it should be for a module whose function runs threads or processes of its own in
parallel (they would share the replica's CPUs); on a system without ``os.sched_setaffinity`` (macOS) or with one CPU
it is off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["BUSY_WINDOW", "CpuPlacement", "assign", "replica_tasks", "set_tasks_affinity", "usable_cpus"]

#: Seconds after its last job during which a replica still counts as busy (placement follows load, not each job).
BUSY_WINDOW = 2.0


def usable_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on (empty where the OS has no CPU affinity)."""
    if not hasattr(os, "sched_getaffinity"):
        return ()
    return tuple(sorted(os.sched_getaffinity(0)))


def assign(
    busy: Sequence[tuple[str, int]], cpus: Sequence[int], current: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """CPUs for each busy replica: ``busy`` is (replica id, CPUs wanted); ``current`` the placements made so far.

    A replica keeps its CPUs while they are not more crowded than others; new ones go to the least-used CPUs. A
    replica that wants every CPU (or more) is not placed. Deterministic (ties go to the lower CPU number).

    >>> assign([("a-1", 1), ("b-1", 1), ("c-1", 1)], [0, 1], {})
    {'a-1': (0,), 'b-1': (1,), 'c-1': (0,)}
    """
    if len(cpus) < 2:
        return {}
    use = dict.fromkeys(cpus, 0)
    placed: dict[str, tuple[int, ...]] = {}
    waiting: list[tuple[str, int]] = []
    for rid, want in busy:
        if want >= len(cpus):
            continue
        kept = current.get(rid)
        if kept is not None and len(kept) == want and all(c in use for c in kept):
            placed[rid] = kept
            for c in kept:
                use[c] += 1
        else:
            waiting.append((rid, want))
    # even out: a kept replica moves when other CPUs would be less crowded than its own (without it)
    for rid in sorted(placed, key=lambda r: (-max(use[c] for c in placed[r]), r)):
        kept = placed[rid]
        for c in kept:
            use[c] -= 1
        best = _least_used(use, len(kept))
        if max(use[c] for c in best) < max(use[c] for c in kept):
            kept = placed[rid] = best
        for c in kept:
            use[c] += 1
    for rid, want in waiting:
        chosen = placed[rid] = _least_used(use, want)
        for c in chosen:
            use[c] += 1
    return {rid: placed[rid] for rid, _ in busy if rid in placed}


def _least_used(use: dict[int, int], want: int) -> tuple[int, ...]:
    return tuple(sorted(sorted(use, key=lambda c: (use[c], c))[:want]))


def replica_tasks(pid: int) -> list[int]:
    """Every thread of ``pid`` and of its descendants (the SDK's pool workers), from ``/proc``."""
    out: list[int] = []
    todo = [pid]
    seen: set[int] = set()
    while todo:
        proc = todo.pop()
        if proc in seen:
            continue
        seen.add(proc)
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{proc}/task")]
        except OSError:
            continue  # gone meanwhile
        out.extend(tids)
        for tid in tids:
            try:
                children = Path(f"/proc/{proc}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            todo.extend(int(c) for c in children)
    return out


def set_tasks_affinity(tids: Iterable[int], cpus: Iterable[int]) -> int:
    """Set the CPU affinity of each thread in ``tids``; returns how many were set (a thread may have ended)."""
    wanted = set(cpus)
    done = 0
    for tid in tids:
        try:
            os.sched_setaffinity(tid, wanted)
            done += 1
        except OSError:  # ended meanwhile (ESRCH), or a CPU went offline (EINVAL): the next tick tries again
            continue
    return done


class CpuPlacement:
    """Keeps each busy replica's processes on CPUs of their own; idle ones are left to the kernel."""

    def __init__(self, cpus: Sequence[int] | None = None) -> None:
        self.cpus = tuple(usable_cpus() if cpus is None else cpus)
        self.enabled = len(self.cpus) >= 2 and hasattr(os, "sched_setaffinity")
        self._applied: dict[str, tuple[int, frozenset[int], tuple[int, ...]]] = {}  # id -> (pid, tasks, cpus)

    @property
    def placed(self) -> dict[str, tuple[int, ...]]:
        """Each placed replica's CPUs, by replica id."""
        return {rid: cpus for rid, (_, _, cpus) in self._applied.items()}

    def update(self, busy: Sequence[tuple[str, int, int]]) -> None:
        """Place ``busy`` replicas, given as (replica id, pid, CPUs wanted), and free every other placed one."""
        if not self.enabled:
            return
        pids = {rid: pid for rid, pid, _ in busy}
        placed = assign([(rid, want) for rid, _, want in busy], self.cpus, self.placed)
        for rid in [r for r in self._applied if r not in placed]:
            self._give_back(self._applied.pop(rid)[0])
        for rid, cpus in placed.items():
            pid = pids[rid]
            tasks = frozenset(replica_tasks(pid))
            if self._applied.get(rid) != (pid, tasks, cpus):
                set_tasks_affinity(tasks, cpus)  # new placement, a new process, or new threads or workers
                self._applied[rid] = (pid, tasks, cpus)

    def forget(self, replica_id: str) -> None:
        """``replica_id``'s process ended: its placement goes (its processes are gone)."""
        self._applied.pop(replica_id, None)

    def turn_off(self) -> None:
        """Stop placing replicas (after an unexpected error): each placed replica gets every CPU back, as far as
        that still works, and every placement is forgotten."""
        self.enabled = False
        applied, self._applied = self._applied, {}
        for pid, _, _ in applied.values():
            try:
                self._give_back(pid)
            except Exception:  # noqa: BLE001 - the error that turned placement off may strike here too
                continue

    def _give_back(self, pid: int) -> None:
        """Every CPU again for the threads of ``pid`` and its descendants (the kernel places them)."""
        set_tasks_affinity(replica_tasks(pid), self.cpus)
