"""The SDK's log context (job id, process id, replica session id), read without importing the SDK.

The official SDK keeps ``job_id`` and ``process_id`` in a thread-local of ``compute_modules.logging.common``
(set by ``handle_job`` around every job) and reads the replica's ``COMPUTE_SESSION_ID`` from the environment.
If that module was never imported, nothing can have set them, so the SDK's own defaults apply; importing the
SDK just to read them would cost half a second.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_SDK_LOGGING = "compute_modules.logging.common"


def runtime_params() -> dict[str, str]:
    """``process_id``, ``job_id`` and ``session_id`` exactly as the SDK puts them in every log line."""
    common = sys.modules.get(_SDK_LOGGING)
    if common is None:
        process_id, job_id = "-1", ""
    else:
        process_id = str(common.get_thread_local_data("process_id", "-1"))
        job_id = str(common.get_thread_local_data("job_id", ""))
    return {"process_id": process_id, "job_id": job_id, "session_id": os.environ.get("COMPUTE_SESSION_ID", "")}


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Set the SDK's log-context job id for the duration of a call, then restore the previous one.

    Inside a container the SDK's ``handle_job`` has already set the same id; in process (``cmfleet invoke``,
    the pytest fixtures) nothing has, and this makes log lines carry the job id there too.
    """
    common = sys.modules.get(_SDK_LOGGING)
    if common is None:
        yield
        return
    previous = common.get_thread_local_data("job_id", "")
    common.set_thread_local_data("job_id", str(job_id))
    try:
        yield
    finally:
        common.set_thread_local_data("job_id", previous)
