"""A local replica's entrypoint: the container's (``cmcore.entrypoint``), plus what only the repository has.

    python -m cmfleet.entrypoint modules/hello      # a module folder (what cmfleet dev's replicas run)
    python -m cmfleet.entrypoint hello              # a module name, inside the repository

It serves exactly as the image's ``python -m cmcore.entrypoint /app/<module>`` does, with the image's plugin
manager; it only resolves module names and, for a replica started by hand, holds its venv's "use" lock.
"""

from __future__ import annotations

import os
import sys

from cmcore.entrypoint import EXIT_IMPORT, serve

__all__ = ["main", "run"]


def run(target: str) -> None:
    """Serve ``target`` (a module folder or a name in the repository) as the container does."""
    from cmfleet.discovery import DiscoveryError
    from cmfleet.registry import module_unit

    try:
        unit = module_unit(target)
    except (DiscoveryError, KeyError) as exc:
        print(f"cmfleet.entrypoint: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_IMPORT)
    serve(unit)


def main(argv: list[str] | None = None) -> None:
    """``python -m cmfleet.entrypoint MODULE``."""
    args = sys.argv[1:] if argv is None else argv
    target = args[0] if args else os.environ.get("CMFLEET_MODULE", ".")
    # runtime.environments.USE_LOCK_VARIABLE (not imported: only a replica started by hand has it, never a container)
    use_lock = os.environ.get("CMFLEET_ENV_USE_LOCK")
    if use_lock:
        from cmfleet.runtime.environments import hold_use_lock

        _held.append(hold_use_lock(use_lock))
    run(target)


_held: list[object] = []  # open lock files: closing one (or exiting) releases the lock


if __name__ == "__main__":
    main()
