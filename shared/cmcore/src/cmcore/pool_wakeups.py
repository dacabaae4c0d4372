"""One change the entrypoint makes in a replica's interpreter before the official SDK starts (in the image and in
``cmfleet dev`` alike): the SDK's ``multiprocessing.Pool`` stops waking its worker-handler thread on every result.

The SDK hands each job to ``multiprocessing.Pool`` (``PROCESS_POOL``, Foundry's default). The stdlib's pool has
a worker-handler thread that waits on the worker processes' sentinels, the pool's change notifier *and the result
pipe*. It only acts when a worker exits (it replaces it) or when the pool closes and its cache drains; the result
pipe tells it neither, yet it stays readable until the result-handler thread reads it, so on every result the
worker handler wakes, polls every worker, waits again, returns at once, and spins until the result handler gets
the GIL. Measured on ``hello.add`` (2 cores): 0.24 ms of the replica's CPU per job, 4 to 5 wake-ups per job, and
in some periods about 130 context switches per job with a p99 three times the p50.

:func:`quiet_pool_wakeups` makes the pool wait on its change notifier only (and, as always, on the workers'
sentinels): exactly what the stdlib's own ``ThreadPool`` waits on. Nothing the pool does changes: a worker that
exits still wakes the handler (its sentinel); ``close()`` and ``terminate()`` still put to the change notifier; and
the pool's cache puts to it when it drains, which is what ``close()`` followed by ``join()`` waits for
(``multiprocessing.pool._PoolCache``, Python 3.8 and later). The SDK's code is untouched; the change applies to
every ``multiprocessing.Pool`` of the process, which is why it is checked against the stdlib's shape first and
leaves an unknown one alone. ``CMCORE_POOL_WAKEUPS=stdlib`` keeps the stdlib's behaviour.
"""

from __future__ import annotations

import inspect
import multiprocessing.pool
import os
from typing import Any

__all__ = ["OPT_OUT_VARIABLE", "quiet_pool_wakeups"]

#: ``CMCORE_POOL_WAKEUPS=stdlib`` leaves ``multiprocessing.Pool`` as the stdlib has it.
OPT_OUT_VARIABLE = "CMCORE_POOL_WAKEUPS"


def _change_notifier_only(self: Any) -> list[Any]:
    """``Pool._get_sentinels`` without the result pipe (``ThreadPool._get_sentinels`` is the same)."""
    return [self._change_notifier._reader]


def _stdlib_shape() -> bool:
    """Whether the pool is the one described above: its handler's sentinels come from ``_get_sentinels`` and its
    cache signals the change notifier when it drains."""
    pool_cls: Any = multiprocessing.pool.Pool
    cache_cls: Any = getattr(multiprocessing.pool, "_PoolCache", None)
    if cache_cls is None or not callable(getattr(pool_cls, "_get_sentinels", None)):
        return False
    try:
        return "notifier" in inspect.signature(cache_cls).parameters
    except (TypeError, ValueError):
        return False


def quiet_pool_wakeups(environ: dict[str, str] | None = None) -> bool:
    """Make ``multiprocessing.Pool``'s worker handler wait as ``ThreadPool``'s does (see the module docstring);
    True when applied, False when opted out (``CMCORE_POOL_WAKEUPS=stdlib``) or the stdlib's pool is not the
    expected one. Idempotent."""
    env = os.environ if environ is None else environ
    if env.get(OPT_OUT_VARIABLE, "").strip().lower() == "stdlib" or not _stdlib_shape():
        return False
    pool_cls: Any = multiprocessing.pool.Pool
    pool_cls._get_sentinels = _change_notifier_only
    return True
