"""Errors as people read them: a job's failure in the one shape (``cmcore.errors``, re-exported here) and one
line for a command stopped by a missing optional dependency or system tool."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cmcore.errors import (
    TRACEBACK_HEAD,
    Frame,
    FunctionError,
    format_frames,
    from_exception,
    from_result,
    one_line,
    own_frames,
    parse_traceback,
)

__all__ = [
    "TRACEBACK_HEAD",
    "Frame",
    "FunctionError",
    "format_frames",
    "from_exception",
    "from_result",
    "job_error",
    "missing_extra",
    "missing_tool",
    "one_line",
    "own_frames",
    "parse_traceback",
]


def job_error(job: Any, root: Path | None = None) -> dict[str, Any]:
    """The error fields of a finished job that did not succeed (``{}`` for one that did or still runs).

    A failed job's fields come from the result its replica posted; a lost or timed-out job's from the runtime's
    own message; both point at the replica's log lines, where the full output is."""
    if job.error is None:
        return {}
    shaped = from_result(job.result, root) if job.result else None
    if shaped is None:
        shaped = FunctionError(one_line(job.error))
    if shaped.hint is None:
        shaped.hint = f"the replica's log lines of this job: GET /api/logs?job={job.id}"
    return shaped.as_json()


# -- missing optional parts -----------------------------------------------------------------------------------

#: Import names that differ from their distribution's name (the rest: lower case, ``-`` as ``_``).
_IMPORT_NAMES = {"py-rattler-build": "rattler_build", "prometheus-client": "prometheus_client"}
#: System tools a module's ``command`` may name, and how to get them.
_TOOLS = {
    "node": ("Node.js", "apt-get install nodejs (or from https://nodejs.org)"),
    "npm": ("npm", "apt-get install npm (or Node.js from https://nodejs.org)"),
    "deno": ("Deno", "curl -fsSL https://deno.land/install.sh | sh"),
    "java": ("Java", "apt-get install default-jre-headless"),
    "uv": ("uv", "pip install uv (or pip install 'cmfleet[runtime]')"),
}


def _extra_of(import_name: str) -> str | None:
    """The extra of cmfleet whose requirements provide ``import_name`` (read from cmfleet's own metadata)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    try:
        lines = metadata.requires("cmfleet") or []
    except metadata.PackageNotFoundError:
        return None
    for line in lines:
        req = Requirement(line)
        found = re.search(r"""extra\s*==\s*["']([^"']+)["']""", str(req.marker or ""))
        name = req.name.lower()
        if found and _IMPORT_NAMES.get(name, name.replace("-", "_")) == import_name:
            return found.group(1)
    return None


def missing_extra(exc: ImportError, command: str) -> str | None:
    """One line for a command that stopped on a missing optional dependency of cmfleet: which extra, and the
    command that installs it; None when the missing module is not one of cmfleet's extras."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    extra = _extra_of(name) if name else None
    if extra is None:
        return None
    install = f"pip install 'cmfleet[{extra}]'"
    return f"cmfleet {command} needs cmfleet's {extra!r} extra ({name} is not installed): {install}"


def missing_tool(executable: str, needed_by: str) -> str | None:
    """One line when ``executable`` cannot be run (not on PATH, or no such file): what is missing, what needs it,
    how to install it; None when it is there."""
    import shutil

    if shutil.which(executable):
        return None
    base = Path(executable).name
    what, install = _TOOLS.get(base, (base, f"install {base} and put it on PATH"))
    return f"{needed_by} needs {what} ({executable} is not on PATH): {install}"
