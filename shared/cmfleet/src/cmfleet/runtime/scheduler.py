"""Jobs, queues and replica capacity: the only place where a job changes state.

Every accepted job ends in exactly one terminal state (succeeded, failed, timed_out, lost): :meth:`Job.finish`
ignores any later attempt and counts it in ``Scheduler.late_answers``. A replica never holds more jobs than
its capacity (``MAX_CONCURRENT_TASKS``), although the SDK keeps polling while its workers are busy: a poll from
a full replica is parked until a slot frees or the long-poll hold (5 s) ends with 204.

Everything here runs on the runtime's single event loop (no locks, no threads).
"""

from __future__ import annotations

import asyncio
import json
import operator
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cmfleet.runtime.deadlines import Deadlines
from cmfleet.runtime.logs import redact_json_bytes

QUEUED, RUNNING, SUCCEEDED, FAILED, TIMED_OUT, LOST = "queued", "running", "succeeded", "failed", "timed_out", "lost"
TERMINAL = frozenset({SUCCEEDED, FAILED, TIMED_OUT, LOST})

# Replica states, as the gateway lists them. ``building``: its module's own venv is being created or synced before
# its process can start (environments.py); ``starting``: its process runs and has not polled yet.
BUILDING = "building"
STARTING, READY, DRAINING, STOPPED, CRASHED = "starting", "ready", "draining", "stopped", "crashed"
LIVE = frozenset({BUILDING, STARTING, READY})
COMING = frozenset({BUILDING, STARTING})  # will take jobs soon


class QueueFull(Exception):
    """The module's bounded queue is full (the gateway answers 429)."""

    def __init__(self, module: str, limit: int) -> None:
        super().__init__(f"the queue of module {module!r} is full ({limit} jobs waiting); retry later")
        self.module, self.limit = module, limit


class JobRefused(Exception):
    """A replica may not post this result (``status`` is the HTTP answer: 403 or 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error_message(body: bytes) -> str | None:
    """The message of an SDK error result (``{"exception": ...}``, ``{"error": ...}``, TS's ``reason``), else None."""
    head = body[:16].lstrip()
    start = body[:32]  # find, not ``in`` (see http.target_path)
    if not head.startswith(b"{") or (start.find(b'"exception"') < 0 and start.find(b'"error"') < 0):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or not set(value) <= {"exception", "error", "reason"}:
        return None
    if "exception" in value:
        return str(value["exception"])
    if "error" in value:
        reason = value.get("reason")
        return f"{value['error']}: {reason}" if reason else str(value["error"])
    return None


class _StreamDecoder:
    """Items of a streamed result: one HTTP chunk is one JSON item (what the Python SDK sends); when a chunk is not
    valid JSON alone (a client that splits or merges items), fall back to decoding a raw stream of JSON values.
    A chunk that is not JSON values turns the stream into text, and from then on each chunk is one string item as
    it came: the TypeScript SDK sends what a function writes to its stream as it is (``write("Hello")``)."""

    __slots__ = ("pending", "text")

    def __init__(self) -> None:
        self.pending = ""
        self.text = False  # the stream is text, not JSON values

    def feed(self, chunk: bytes) -> list[Any]:
        text = self.pending + chunk.decode("utf-8", "replace")
        if self.text:
            self.pending = ""
            return [text] if text else []
        try:
            value = json.loads(text)
        except ValueError:
            pass
        else:
            self.pending = ""
            return [value]
        items: list[Any] = []
        decoder = json.JSONDecoder()
        pos, end = 0, len(text)
        while pos < end:
            while pos < end and text[pos] in " \t\r\n":
                pos += 1
            if pos >= end:
                break
            try:
                value, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                if not _json_cut_short(text, pos, exc):  # text, not JSON: the whole of it, as it came
                    self.text, self.pending = True, ""
                    return [text]
                break
            items.append(value)
        self.pending = text[pos:]
        return items


_LITERALS = ("true", "false", "null")


def _json_cut_short(text: str, start: int, exc: json.JSONDecodeError) -> bool:
    """Whether ``text[start:]`` is JSON whose end has not arrived yet (a split item), not raw text."""
    rest = text[start:].rstrip()
    if exc.msg.startswith("Unterminated string"):
        return True
    if any(literal.startswith(rest) for literal in _LITERALS):
        return True
    # an object or array still open: the decoder ran out of text, it did not meet a wrong character
    return rest[:1] in ("{", "[") and exc.pos >= len(text.rstrip())


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


class _RandomHex:
    """Hex digits from the OS's random source, read 4 KiB at a time: a job id costs no system call of its own (one
    ``getrandom`` per 256 ids). Thread-safe; a forked child reads its own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hex = ""
        self.at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:  # in a forked child: its own digits, and a lock no parent thread may hold
        self.lock = threading.Lock()
        self.hex, self.at = "", 0

    def take(self, digits: int) -> str:
        with self.lock:
            if self.at + digits > len(self.hex):
                self.hex, self.at = os.urandom(4096).hex(), 0
            at = self.at
            self.at = at + digits
            return self.hex[at : at + digits]


_RANDOM = _RandomHex()


def new_job_id() -> str:
    """A random (version 4) UUID string, made without a UUID object: a quarter of ``str(uuid4())``'s CPU."""
    h = _RANDOM.take(32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


class Job:
    """One call of a module's function, from submission to its terminal state."""

    __slots__ = (
        "id",
        "module",
        "function",
        "payload",
        "state",
        "replica",
        "session_id",
        "cold_start",
        "submitted_at",
        "started_at",
        "finished_at",
        "error",
        "result",
        "items",
        "streamed",
        "aborted_uploads",
        "_done",
        "_loop",
        "live",
        "_waiters",
        "_listeners",
        "_decoder",
        "_mono",
        "duration_ms",
    )

    def __init__(self, module: str, function: str, payload: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self.id = new_job_id()
        self.module, self.function, self.payload = module, function, payload
        self.state = QUEUED
        self.live = True  # until its terminal state; a plain attribute, read on every call (``finished`` is its not)
        self.replica: str | None = None
        self.session_id: str | None = None
        self.cold_start = False
        self.submitted_at = time.time()
        self._mono = time.monotonic()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.duration_ms: float | None = None
        self.error: str | None = None
        self.result: bytes | None = None  # the raw result body, exactly as the replica posted it
        self.items: list[Any] = []  # items of a streamed (chunked) result, as they arrive
        self.streamed = False
        self.aborted_uploads = 0
        self._loop = loop
        self._done: asyncio.Future[None] | None = None  # made on first use (see done)
        self._waiters: list[asyncio.Future[None]] = []
        self._listeners: list[Callable[[Job], None]] | None = None
        self._decoder: _StreamDecoder | None = None

    @property
    def finished(self) -> bool:
        """Whether the job reached its terminal state (``_finish`` sets the state and clears ``live`` together)."""
        return not self.live

    @property
    def done(self) -> asyncio.Future[None]:
        """A future set once the job reaches its terminal state. Made on first use: most jobs are answered through
        :meth:`when_done` and never need one (a future per job was 1% of the runtime's CPU)."""
        if self._done is None:
            self._done = self._loop.create_future()
            if self.finished:
                self._done.set_result(None)
        return self._done

    def envelope(self) -> bytes:
        """The GET job answer (the ``computeModuleJobV1`` envelope), built without re-encoding the event."""
        return b"".join(
            (
                b'{"type":"computeModuleJobV1","computeModuleJobV1":{"jobId":"',
                self.id.encode(),
                b'","queryType":',
                _json_string(self.function).encode(),
                b',"query":',
                self.payload,
                b',"temporaryCredentialsAuthToken":"","authHeader":"","userId":""}}',
            )
        )

    def when_done(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` once the job reaches its terminal state (now, if it has): from the scheduler's
        own call, without the event-loop trip an awaited ``done`` costs (the gateway answers calls this way)."""
        if not self.live:
            callback(self)
        elif self._listeners is None:
            self._listeners = [callback]
        else:
            self._listeners.append(callback)

    def result_value(self) -> Any:
        """The result as JSON data: the items of a streamed result, else the decoded body."""
        if self.streamed:
            return list(self.items)
        return json.loads(self.result) if self.result else None

    def as_json(self) -> dict[str, Any]:
        """The job record the gateway returns."""
        return {
            "id": self.id,
            "module": self.module,
            "function": self.function,
            "state": self.state,
            "replica": self.replica,
            "cold_start": self.cold_start,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_ms": self.duration_ms,
            "error": self.error,
        }

    # -- change notification (streaming readers) ------------------------------------------------------------

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def changed(self) -> None:
        """Wait until the job starts, an item arrives or the job finishes."""
        if self.finished:
            return
        fut = self._loop.create_future()
        self._waiters.append(fut)
        await fut


@dataclass(eq=False)
class Replica:
    """The scheduler's view of one replica slot (the process is supervised by ``replicas.py``)."""

    id: str
    module: str
    capacity: int
    token: str = ""
    session_id: str = ""
    state: str = STARTING
    pid: int | None = None
    started_at: float = field(default_factory=time.time)
    restarts: int = 0
    external: bool = False  # started by hand (``cmfleet dev --print-env``): no process to supervise
    generation: int = 0
    in_flight: dict[str, Job] = field(default_factory=dict)
    max_in_flight: int = 0  # the most jobs it ever held at once (tests check it against capacity)
    idle_since: float = field(default_factory=time.monotonic)
    stopping: bool = False
    connections: int = 0  # its open connections to the runtime port (counted per connection, see protocol.py)
    last_seen: float = 0.0  # loop time of its last request start or poll answer (protocol.py; hand-started ones)
    cpus: tuple[int, ...] | None = None  # the CPUs its processes are kept on while busy (placement.py); None: any

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "pid": self.pid,
            "session_id": self.session_id,
            "running": len(self.in_flight),
            "capacity": self.capacity,
            "started_at": self.started_at,
            "restarts": self.restarts,
            "cpus": list(self.cpus) if self.cpus is not None else None,
        }


_live = operator.attrgetter("live")
_json_string = json.encoder.encode_basestring_ascii  # what json.dumps(str) returns, without dumps' Python frames


class Poll:
    """A parked GET job of ``replica``: ``deliver`` is called once, with a job when one can go to the replica, or
    with None when the long-poll hold ends or the replica stops taking jobs. A plain callback rather than a future:
    the job is written to the replica's connection at once, without a trip through the event loop."""

    __slots__ = ("replica", "deliver", "live")

    def __init__(self, replica: Replica, deliver: Callable[[Job | None], None]) -> None:
        self.replica = replica
        self.deliver = deliver
        self.live = True  # not answered nor forgotten yet


@dataclass(eq=False)
class ModuleQueue:
    """The jobs waiting for one module and the polls waiting for jobs."""

    name: str
    queue_limit: int
    timeout: float
    queue: deque[Job] = field(default_factory=deque)
    pollers: list[Poll] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    schemas: list[dict[str, Any]] | None = None
    start_error: str | None = None  # why the last replica could not start (import error), if it could not

    @property
    def running(self) -> int:
        return sum(len(r.in_flight) for r in self.replicas)

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.state in LIVE]


class Scheduler:
    """Queues per module, replica capacity, timeouts and terminal states."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, job_history: int = 20000, poll_hold: float = 5.0) -> None:
        self.loop = loop
        self.modules: dict[str, ModuleQueue] = {}
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.by_token: dict[str, Replica] = {}
        self.job_history = job_history
        self._trim_slack = min(256, job_history // 16)
        self.poll_hold = poll_hold
        self._holds: Deadlines[Poll] = Deadlines(loop, poll_hold, self._hold_ended, _live)
        self._timeouts: dict[float, Deadlines[Job]] = {}  # by timeout: one queue of deadlines per length
        #: Replaces secrets in a job's error (the SDK's message may quote one): set to the log hub's redact.
        self.redact: Callable[[str], str] = _same
        self.late_answers = 0  # results or losses that arrived for an already finished job (ignored)
        self.counts: dict[str, int] = {s: 0 for s in TERMINAL}
        #: Called with the ModuleQueue when a job waits and no replica can take it (autoscaling, cold start).
        self.on_pressure: Callable[[ModuleQueue], None] = lambda mq: None
        #: Called with a draining Replica once it holds no job (it can then be stopped).
        self.on_drained: Callable[[Replica], None] = lambda r: None
        #: Called with every job that reaches its terminal state.
        self._finished_listeners: list[Callable[[Job], None]] = []  # see add_finished_listener

    # -- modules and replicas ------------------------------------------------------------------------------

    def add_module(self, name: str, *, queue_limit: int, timeout: float) -> ModuleQueue:
        mq = self.modules.get(name)
        if mq is None:
            mq = self.modules[name] = ModuleQueue(name, queue_limit, timeout)
        return mq

    def add_replica(self, replica: Replica) -> None:
        """Register a replica slot (its token now authenticates it)."""
        mq = self.modules[replica.module]
        if replica not in mq.replicas:
            mq.replicas.append(replica)
        self.by_token[replica.token] = replica

    def set_token(self, replica: Replica, token: str) -> None:
        """Give the replica a new token (each process start gets its own); the old one stops working."""
        self.by_token.pop(replica.token, None)
        replica.token = token
        self.by_token[token] = replica

    def remove_replica(self, replica: Replica) -> None:
        """Forget a stopped replica slot."""
        mq = self.modules[replica.module]
        if replica in mq.replicas:
            mq.replicas.remove(replica)
        self.by_token.pop(replica.token, None)

    def drain(self, replica: Replica) -> None:
        """Stop giving ``replica`` jobs; ``on_drained`` fires once it holds none."""
        replica.state = DRAINING
        self._release_polls(replica)
        if not replica.in_flight:
            self.on_drained(replica)

    def replica_gone(self, replica: Replica, reason: str, state: str = CRASHED) -> list[str]:
        """The replica's process ended: every job it held is lost with ``reason``. Returns their ids."""
        replica.state = state
        self._release_polls(replica)
        lost = list(replica.in_flight)
        who = "hand-started replica" if replica.external else "replica"
        for job in list(replica.in_flight.values()):
            self._finish(job, LOST, f"lost: {who} {replica.id} {reason}")
        replica.in_flight.clear()
        self._dispatch(self.modules[replica.module])
        return lost

    def restart_notified(self, replica: Replica) -> list[str]:
        """The replica reports a restart: the jobs it held are dropped (lost), their ids returned."""
        lost = list(replica.in_flight)
        for job in list(replica.in_flight.values()):
            self._finish(job, LOST, f"lost: replica {replica.id} restarted (restart notification) while running it")
        replica.in_flight.clear()
        if replica.state == STARTING:
            replica.state = READY
        return lost

    def add_finished_listener(self, listener: Callable[[Job], None]) -> None:
        """Have ``listener(job)`` called (on the loop) each time a job ends, whatever its end (the console's
        metrics subscribe here)."""
        self._finished_listeners.append(listener)

    def has_parked_poll(self, replica: Replica) -> bool:
        """Whether ``replica`` has a GET job waiting here (it is polling)."""
        return any(p.replica is replica for p in self.modules[replica.module].pollers)

    def _release_polls(self, replica: Replica) -> None:
        mq = self.modules[replica.module]
        mine = [p for p in mq.pollers if p.replica is replica]
        if mine:
            mq.pollers = [p for p in mq.pollers if p.replica is not replica]
            for poll in mine:
                self._answer(poll, None)

    def post_schemas(self, replica: Replica, schemas: Any) -> None:
        """Store the schemas a replica posted (per module, the latest wins)."""
        if isinstance(schemas, list):
            self.modules[replica.module].schemas = schemas
            self.modules[replica.module].start_error = None

    # -- jobs ----------------------------------------------------------------------------------------------

    def submit(self, module: str, function: str, payload: bytes, *, timeout: float | None = None) -> Job:
        """Queue a call; raises QueueFull when the module's queue is at its limit."""
        mq = self.modules[module]
        if len(mq.queue) >= mq.queue_limit:
            raise QueueFull(module, mq.queue_limit)
        job = Job(module, function, payload, self.loop)
        job.cold_start = True
        for replica in mq.replicas:
            if replica.state == READY:
                job.cold_start = False
                break
        self.jobs[job.id] = job
        seconds = timeout or mq.timeout
        deadlines = self._timeouts.get(seconds)
        if deadlines is None:
            deadlines = self._timeouts[seconds] = Deadlines(
                self.loop, seconds, lambda job: self._timeout(job, seconds), _live
            )
        deadlines.add(job)
        mq.queue.append(job)
        self._dispatch(mq)
        if mq.queue:
            self.on_pressure(mq)
        return job

    def fail_queued(self, module: str, error: str) -> None:
        """End every queued job of ``module`` as failed (its replicas cannot start)."""
        mq = self.modules[module]
        while mq.queue:
            self._finish(mq.queue.popleft(), FAILED, error)

    def take(self, replica: Replica) -> Job | None:
        """A job for ``replica`` right now, if it has a free slot and one is queued (its first poll makes it ready)."""
        if replica.state == STARTING or (replica.external and replica.state in (STOPPED, CRASHED)):
            replica.state = READY
        return self._take(self.modules[replica.module], replica)

    def park(self, replica: Replica, deliver: Callable[[Job | None], None]) -> Poll:
        """Park a poll that found no job: ``deliver(job)`` once one can go to ``replica``, ``deliver(None)``
        after the hold (the answer is then 204)."""
        poll = Poll(replica, deliver)
        self.modules[replica.module].pollers.append(poll)
        self._holds.add(poll)
        return poll

    def unpark(self, poll: Poll) -> None:
        """Forget a parked poll without answering it (its connection went away)."""
        poll.live = False
        try:
            self.modules[poll.replica.module].pollers.remove(poll)
        except ValueError:
            pass

    def _hold_ended(self, poll: Poll) -> None:
        poll.live = False
        try:
            self.modules[poll.replica.module].pollers.remove(poll)
        except ValueError:
            return
        poll.deliver(None)

    def _answer(self, poll: Poll, job: Job | None) -> None:
        poll.live = False
        poll.deliver(job)

    def _take(self, mq: ModuleQueue, replica: Replica) -> Job | None:
        if replica.state != READY or len(replica.in_flight) >= replica.capacity or not mq.queue:
            return None
        job = mq.queue.popleft()
        self._assign(job, replica)
        return job

    def _assign(self, job: Job, replica: Replica) -> None:
        job.state = RUNNING
        job.replica = replica.id
        job.session_id = replica.session_id
        job.started_at = time.time()
        replica.in_flight[job.id] = job
        if len(replica.in_flight) > replica.max_in_flight:
            replica.max_in_flight = len(replica.in_flight)
        if job._waiters:
            job._notify()

    def _dispatch(self, mq: ModuleQueue) -> None:
        """Hand queued jobs to parked polls of replicas with a free slot (least loaded first)."""
        while mq.queue and mq.pollers:
            best = None
            best_load = 0
            for i, poll in enumerate(mq.pollers):
                replica = poll.replica
                load = len(replica.in_flight)
                if replica.state != READY or load >= replica.capacity:
                    continue
                if best is None or load < best_load:
                    best, best_load = i, load
            if best is None:
                return
            poll = mq.pollers.pop(best)
            job = mq.queue.popleft()
            self._assign(job, poll.replica)
            self._answer(poll, job)

    def requeue(self, job: Job) -> None:
        """A job handed to a poll whose connection had already closed: back to the front of its queue."""
        if job.state != RUNNING:
            return
        mq = self.modules[job.module]
        for replica in mq.replicas:
            if replica.in_flight.pop(job.id, None) is not None and not replica.in_flight:
                replica.idle_since = time.monotonic()
        job.state, job.replica, job.session_id, job.started_at = QUEUED, None, None, None
        mq.queue.appendleft(job)
        self._dispatch(mq)

    def begin_result(self, replica: Replica, job_id: str) -> Job | None:
        """Check that ``replica`` may answer ``job_id``. Returns the job, or None for a job already finished
        (a late answer after a timeout: accepted and ignored). Raises JobRefused otherwise."""
        job = self.jobs.get(job_id)
        if job is None:
            raise JobRefused(404, f"no job {job_id!r}")
        if job.module != replica.module:
            raise JobRefused(403, f"job {job_id} belongs to module {job.module!r}, not to {replica.module!r}")
        if job.replica != replica.id:
            raise JobRefused(403, f"job {job_id} is not held by replica {replica.id}")
        if not job.live:
            self.late_answers += 1
            return None
        return job

    def result_chunk(self, job: Job, chunk: bytes) -> None:
        """One chunk of a streamed result (one item, as the SDK sends it)."""
        if not job.live:
            return
        job.streamed = True
        if job._decoder is None:
            job._decoder = _StreamDecoder()
        new = job._decoder.feed(chunk)
        if new:
            job.items.extend(new)
            job._notify()

    def result_aborted(self, job: Job) -> None:
        """A result upload broke off before its end; the SDK re-posts (an error, or the rest of the stream)."""
        job.aborted_uploads += 1

    def result_complete(self, job: Job, body: bytes | None, *, chunked: bool) -> None:
        """The whole result arrived: succeed, or fail with the SDK's error message."""
        if not job.live:
            self.late_answers += 1
            return
        if chunked:
            job.streamed = True
            decoder = job._decoder
            if decoder is not None and decoder.pending.strip():
                # text that waited for the rest of a JSON value that never came: it was text (another SDK's raw
                # write, such as '"quoted'), kept as it came
                job.items.append(decoder.pending)
                decoder.pending = ""
                job._notify()
            if job.aborted_uploads:
                self._finish(
                    job,
                    FAILED,
                    "the streamed result was aborted mid-stream (the function raised or an item could not be "
                    f"serialised) and re-posted empty; {len(job.items)} item(s) arrived before the break",
                )
            else:
                self._finish(job, SUCCEEDED, None)
            return
        body = body or b""
        message = _error_message(body)
        if message is not None:
            job.result = body
            self._finish(job, FAILED, message)
            return
        if not body.strip():
            body = b"null"
        job.result = body
        self._finish(job, SUCCEEDED, None)

    def _timeout(self, job: Job, seconds: float) -> None:
        # called by Deadlines only for a job still live (it tests that right before the call)
        mq = self.modules[job.module]
        where = "waiting in the queue" if job.state == QUEUED else f"running on replica {job.replica}"
        if job.state == QUEUED:
            try:
                mq.queue.remove(job)
            except ValueError:
                pass
        self._finish(job, TIMED_OUT, f"timed out after {seconds:g} s {where}")

    def _finish(self, job: Job, state: str, error: str | None) -> None:
        if not job.live:
            self.late_answers += 1
            return
        job.state = state
        job.live = False
        job.error = self.redact(error) if error else error
        if state != SUCCEEDED and job.result:
            # a failed job's result is the SDK's error object, whose text may quote a secret too (e.g. as a repr
            # inside one of its JSON strings: redacted in each decoded string as well)
            job.result = redact_json_bytes(job.result, self.redact)
        job.finished_at = time.time()
        now = time.monotonic()
        job.duration_ms = int((now - job._mono) * 1e6 + 0.5) / 1e3  # ms to 3 places; round() formats digits
        self.counts[state] += 1
        if job.replica is not None:
            mq = self.modules[job.module]
            for replica in mq.replicas:
                if replica.id == job.replica and replica.in_flight.pop(job.id, None) is not None:
                    if not replica.in_flight:
                        replica.idle_since = now
                        if replica.state == DRAINING:
                            self.on_drained(replica)
                    break
            if mq.queue:  # a slot came free: a queued job may go to a parked poll now
                self._dispatch(mq)
        if job._done is not None and not job._done.done():
            job._done.set_result(None)
        if job._listeners is not None:
            listeners, job._listeners = job._listeners, None
            for callback in listeners:
                try:
                    callback(job)
                except Exception as exc:  # noqa: BLE001 - one listener's bug must not stop the job's bookkeeping
                    self.loop.call_exception_handler({"message": "job listener failed", "exception": exc})
        if job._waiters:
            job._notify()
        for listener in self._finished_listeners:
            try:
                listener(job)
            except Exception as exc:  # noqa: BLE001 - an observer's bug must not stop the job's bookkeeping
                self.loop.call_exception_handler({"message": "finished-job listener failed", "exception": exc})
        if len(self.jobs) > self.job_history + self._trim_slack:
            self._trim()

    def _trim(self) -> None:
        """Forget the oldest finished jobs down to ``job_history`` (done in batches of ``_trim_slack``: not a call
        per job once the history is full)."""
        excess = len(self.jobs) - self.job_history
        while excess > 0:
            oldest_id, oldest = next(iter(self.jobs.items()))
            if not oldest.finished:
                self.jobs.move_to_end(oldest_id)
                excess -= 1
                continue
            del self.jobs[oldest_id]
            excess -= 1

    def recent(self, limit: int = 50, module: str | None = None) -> list[Job]:
        """The newest jobs first."""
        out: list[Job] = []
        for job in reversed(self.jobs.values()):
            if module is None or job.module == module:
                out.append(job)
                if len(out) >= limit:
                    break
        return out

    def cancel_all(self, reason: str) -> None:
        """End every unfinished job (the runtime is stopping)."""
        for job in list(self.jobs.values()):
            if not job.finished:
                if job.state == QUEUED:
                    try:
                        self.modules[job.module].queue.remove(job)
                    except ValueError:
                        pass
                self._finish(job, LOST, reason)
        for mq in self.modules.values():
            polls, mq.pollers = mq.pollers, []
            for poll in polls:
                self._answer(poll, None)


def _same(text: str) -> str:
    return text
