"""Deployable artifacts: wheels, rendered conda recipes and container build contexts.

``cmfleet build hello`` writes ``dist/hello/<version>/``: the wheels of the module, of every shared library it
needs, of cmfleet (the container entrypoint) and of every third-party dependency (so the image installs
offline), the rendered conda recipes, a Dockerfile for linux/amd64 with a numeric non-root user, the image
reference and ``manifest.json`` (every file with its sha256, and the versions inside).

Rooms: ``versions`` (tags and dev versions), ``preflight`` (what must hold before building), ``wheels``
(hatchling via ``uv build``, third-party downloads), ``recipe`` (rendered recipes and their checks),
``container`` (Dockerfile and its rules), ``manifest`` (hashes), ``builder`` (the whole build, atomically),
``commands`` (the CLI).
"""

from __future__ import annotations


class BuildError(Exception):
    """A build that cannot go on; the message names the file:line or unit and the fix.

    ``exit_code`` is 2 for bad input (unknown name, untagged without ``--dev``) and 1 for a failed build.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
