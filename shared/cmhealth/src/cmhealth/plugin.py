"""The cmfleet hooks of cmhealth: a ``health`` endpoint and a call counter around every invocation.

Import-light on purpose: the plugin module is imported whenever cmfleet builds its plugin manager.
"""

from __future__ import annotations

import os
import platform
import threading
import time

from cmcore import hookimpl

_started = time.time()
_lock = threading.Lock()
_calls: dict[str, int] = {}
_errors: dict[str, int] = {}


def _count(table: dict[str, int], name: str) -> None:
    with _lock:
        table[name] = table.get(name, 0) + 1


@hookimpl
def cmfleet_register_endpoints(module, register):
    """Register ``health`` in every module: liveness, versions and the calls this process has served."""

    def health(context, event) -> dict[str, object]:
        from importlib.metadata import version

        with _lock:
            calls, errors = dict(_calls), dict(_errors)
        return {
            "module": module.name,
            "status": "ok",
            "pid": os.getpid(),
            "python": platform.python_version(),
            "sdk_version": version("foundry-compute-modules"),
            "uptime_s": round(time.time() - _started, 3),
            "calls": calls,
            "errors": errors,
        }

    register(health)


@hookimpl(wrapper=True)
def cmfleet_invoke(call):
    """Count calls and errors per function (middleware on every call of every module)."""
    _count(_calls, call.name)
    try:
        return (yield)
    except Exception:
        _count(_errors, call.name)
        raise
