"""``cmcore.pool_wakeups``: the SDK's process pool stops waking its worker handler on every result and every drain
of its cache while it runs, and does everything else as before. Each case runs in a fresh interpreter (real
``multiprocessing``, real worker processes), so the change never leaks into the test process."""

from __future__ import annotations

import json
import multiprocessing.pool
import os
import subprocess
import sys
import textwrap

from cmcore.pool_wakeups import OPT_OUT_VARIABLE, quiet_pool_wakeups

_WAKEUPS = textwrap.dedent(
    """
    import json, sys, time
    from multiprocessing import pool as mp_pool
    from cmcore.pool_wakeups import quiet_pool_wakeups

    # the test's probe: how many times the worker-handler thread went round its loop (it waits once per round)
    rounds = 0
    wait_for_updates = mp_pool.Pool._wait_for_updates

    def counted(*args, **kwargs):
        global rounds
        rounds += 1
        return wait_for_updates(*args, **kwargs)

    mp_pool.Pool._wait_for_updates = staticmethod(counted)

    def square(x):
        return x * x

    if __name__ == "__main__":
        applied = quiet_pool_wakeups() if sys.argv[1] == "quiet" else False
        tasks, busy = 300, sys.argv[2] == "busy"
        with mp_pool.Pool(2 if busy else 1) as pool:
            # busy: a long job stays in the pool's cache throughout, as in a busy SDK; else one job at a time, the
            # SDK's default, so the cache drains after each
            long_job = pool.apply_async(time.sleep, (2,)) if busy else None
            time.sleep(0.2)
            before = rounds
            results = [pool.apply_async(square, (i,)).get(10) for i in range(tasks)]
            per_task = (rounds - before) / tasks
            if long_job is not None:
                long_job.get(10)
        ok = results == [i * i for i in range(tasks)]
        print(json.dumps({"applied": applied, "per_task": per_task, "ok": ok}))
    """
)


def _run(script: str, *args: str, drop: tuple[str, ...] = ()) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in drop and k != OPT_OUT_VARIABLE}
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_worker_handler_no_longer_wakes_on_every_result():
    stdlib = _run(_WAKEUPS, "stdlib", "busy")
    quiet = _run(_WAKEUPS, "quiet", "busy")
    assert stdlib["ok"] and quiet["ok"]
    assert quiet["applied"] is True and stdlib["applied"] is False
    # the stdlib's handler goes round on (nearly) every result, often several times: the result pipe wakes it; now
    # nothing wakes it while no worker exits and the pool's cache does not drain
    assert stdlib["per_task"] >= 0.3, stdlib
    assert quiet["per_task"] < 0.05, quiet


_SEMANTICS = textwrap.dedent(
    """
    import json, os, time
    from multiprocessing import Pool
    from cmcore.pool_wakeups import quiet_pool_wakeups

    def slow_square(x):
        time.sleep(0.01)
        return x * x

    def pid(_):
        time.sleep(0.005)
        return os.getpid()

    def fail(x):
        raise ValueError(f"bad {x}")

    if __name__ == "__main__":
        out = {"applied": quiet_pool_wakeups()}
        # close() then join() with work still queued: join waits for it all, then returns
        pool = Pool(2)
        pending = [pool.apply_async(slow_square, (i,)) for i in range(40)]
        pool.close()
        started = time.monotonic()
        pool.join()
        out["join_s"] = time.monotonic() - started
        out["closed_results"] = [r.get(0) for r in pending] == [i * i for i in range(40)]
        # workers that exit after 2 tasks are replaced and every task still runs
        with Pool(2, maxtasksperchild=2) as pool:
            pids = pool.map(pid, range(20), chunksize=1)
        out["replaced_workers"] = len(set(pids))
        # an exception in a task reaches the caller
        with Pool(1) as pool:
            try:
                pool.apply_async(fail, (7,)).get(10)
                out["error"] = None
            except ValueError as exc:
                out["error"] = str(exc)
        # terminate() with long tasks running returns promptly
        pool = Pool(2)
        for _ in range(4):
            pool.apply_async(time.sleep, (30,))
        time.sleep(0.2)
        started = time.monotonic()
        pool.terminate()
        pool.join()
        out["terminate_s"] = time.monotonic() - started
        # close() after the cache drained while the pool ran (that drain signalled nothing): join still returns
        pool = Pool(1)
        pool.apply_async(slow_square, (3,)).get(10)
        pool.close()
        started = time.monotonic()
        pool.join()
        out["join_after_drain_s"] = time.monotonic() - started
        # a ThreadPool's cache (it does not learn its pool) signals every drain, as before: close() and join() work
        from multiprocessing.pool import ThreadPool
        threads = ThreadPool(2)
        pending = [threads.apply_async(slow_square, (i,)) for i in range(10)]
        threads.close()
        threads.join()
        out["thread_pool"] = [r.get(0) for r in pending] == [i * i for i in range(10)]
        print(json.dumps(out))
    """
)


def test_the_pool_still_closes_joins_replaces_workers_reports_errors_and_terminates():
    out = _run(_SEMANTICS)
    assert out["applied"] is True
    assert out["closed_results"] is True and out["join_s"] < 10
    assert out["replaced_workers"] > 2  # more workers than the pool's size: exited ones were replaced
    assert out["error"] == "bad 7"
    assert out["terminate_s"] < 10
    assert out["join_after_drain_s"] < 5
    assert out["thread_pool"] is True


def test_opting_out_leaves_the_stdlib_pool_alone():
    before = multiprocessing.pool.Pool._get_sentinels, multiprocessing.pool._PoolCache
    assert quiet_pool_wakeups({OPT_OUT_VARIABLE: "stdlib"}) is False
    assert (multiprocessing.pool.Pool._get_sentinels, multiprocessing.pool._PoolCache) == before


def test_the_entrypoint_applies_it_before_the_sdk_starts(module_dir):
    # Without the runtime's variables the official SDK stops at its first step (reading RUNTIME_HOST), after the
    # entrypoint has prepared the interpreter: what it prepared is then visible in the same process.
    script = textwrap.dedent(
        """
        import json, multiprocessing.pool, sys
        from cmcore import entrypoint

        try:
            entrypoint.serve(sys.argv[1])
        except KeyError as exc:
            stopped_at = str(exc)
        patched = [multiprocessing.pool.Pool._get_sentinels.__module__, multiprocessing.pool._PoolCache.__module__]
        print(json.dumps({"stopped_at": stopped_at, "patched_by": patched}))
        """
    )
    folder = module_dir(
        "from compute_modules.annotations import function\n\n\n@function\ndef add(context, event):\n"
        "    return event['x'] + event['y']\n"
    )
    out = _run(script, str(folder), drop=("RUNTIME_HOST",))
    assert out == {"stopped_at": "'RUNTIME_HOST'", "patched_by": ["cmcore.pool_wakeups", "cmcore.pool_wakeups"]}


def test_a_cache_that_drains_after_every_job_no_longer_wakes_the_worker_handler():
    stdlib = _run(_WAKEUPS, "stdlib", "draining")
    quiet = _run(_WAKEUPS, "quiet", "draining")
    assert stdlib["ok"] and quiet["ok"]
    assert quiet["applied"] is True and stdlib["applied"] is False
    assert stdlib["per_task"] >= 0.9, stdlib  # the drain's signal at least, on every job
    assert quiet["per_task"] < 0.05, quiet
