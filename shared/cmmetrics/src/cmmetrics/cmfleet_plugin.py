"""The cmfleet plugin of cmmetrics: calls, errors and durations of every function of every module, no module code.

Registered through the entry-point group ``cmfleet``. Import-light on purpose (cmfleet imports plugin modules
whenever it builds its plugin manager): cmmetrics itself is imported inside the hooks.
"""

from __future__ import annotations

from collections.abc import Iterator

from cmcore import hookimpl


@hookimpl(wrapper=True)
def cmfleet_invoke(call):
    """Time every call, count it and its errors, and write one structured line per call (see cmmetrics.calls).

    The SDK's log-context job id is set to the call's for the duration of the call, so lines the function logs
    carry it in process too (in a container the SDK has already set the same id).
    """
    from cmmetrics.calls import CallTimer, origin_of

    timer = CallTimer(call.module, call.name, call.job_id, origin=origin_of(call.endpoint.func))
    with timer:
        try:
            result = yield
        except BaseException as exc:
            timer.finish(exc)
            raise
    if call.endpoint.streaming and isinstance(result, Iterator):
        # A lazy stream runs after the function returned: the call ends when its last item is read.
        return timer.wrap_stream(result)
    timer.finish(None)
    return result


@hookimpl
def cmfleet_replica_environment(module, environ):
    """Local replicas write the per-call lines the runtime parses (unless the environment already decided)."""
    from cmmetrics.calls import CALL_LOG_ENV

    environ.setdefault(CALL_LOG_ENV, "1")
