"""What a container (and every local replica) runs: load the module's endpoints through the hooks, hand
them to the official SDK, and start it with ``start_compute_module``.

    python -m cmfleet.entrypoint modules/hello      # a module folder (in a container: /app)
    python -m cmfleet.entrypoint hello              # a module name, inside the repository

``CMFLEET_CONCURRENCY_TYPE`` picks the SDK's ``PROCESS_POOL`` (default, as in Foundry) or ``THREAD_POOL``.
"""

from __future__ import annotations

import os
import sys


def run(target: str) -> None:
    """Load ``target``'s registry, register it with the SDK and poll the runtime forever."""
    from compute_modules import ConcurrencyType, start_compute_module

    from cmfleet.loader import ModuleLoadError, disable_sdk_startup
    from cmfleet.registry import RegistryError, load_registry

    try:
        registry = load_registry(target)
    except (ModuleLoadError, RegistryError, KeyError) as exc:
        print(f"cmfleet.entrypoint: {exc}", file=sys.stderr, flush=True)
        sys.exit(3)
    registry.register_with_sdk()
    concurrency = ConcurrencyType(os.environ.get("CMFLEET_CONCURRENCY_TYPE", "PROCESS_POOL"))
    disable_sdk_startup(False)
    try:
        start_compute_module(concurrency_type=concurrency, report_restart=True)
    finally:
        # The SDK also registered start_compute_module with atexit; never start it a second time.
        disable_sdk_startup(True)


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
