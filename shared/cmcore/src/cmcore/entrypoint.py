"""What a container runs: load the module's endpoints through the hooks, hand them to the official SDK, and
start it with ``start_compute_module``.

    python -m cmcore.entrypoint /app/hello        # the module's folder (the image's ENTRYPOINT)

``CMFLEET_CONCURRENCY_TYPE`` picks the SDK's ``PROCESS_POOL`` (default, as in Foundry) or ``THREAD_POOL``.
Before the SDK starts, ``multiprocessing.Pool`` stops waking its worker handler on every result and every drain
(:mod:`cmcore.pool_wakeups`: the same jobs, less CPU and a shorter tail; ``CMCORE_POOL_WAKEUPS=stdlib`` opts out),
and urllib3 sends a small request body in the same write as its header block (:mod:`cmcore.request_writes`: the
SDK's result uploads reach the runtime in one read; ``CMCORE_REQUEST_WRITES=split`` opts out).
A module that fails to load exits 3 with the reason (file:line and the cause) on stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pluggy

from cmcore.registry import ModuleRef

#: Exit code of a module whose ``app.py`` (or an endpoint) failed to load.
EXIT_IMPORT = 3


def serve(module: ModuleRef | Path | str, pm: pluggy.PluginManager | None = None) -> None:
    """Load ``module``'s registry, register it with the SDK and poll the runtime until the SDK stops."""
    from compute_modules import ConcurrencyType, start_compute_module

    from cmcore.loader import ModuleLoadError, disable_sdk_startup
    from cmcore.pool_wakeups import quiet_pool_wakeups
    from cmcore.registry import RegistryError, load_registry
    from cmcore.request_writes import one_write_requests

    try:
        registry = load_registry(module, pm)
    except (ModuleLoadError, RegistryError) as exc:
        print(f"cmcore.entrypoint: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_IMPORT)
    registry.register_with_sdk()
    concurrency = ConcurrencyType(os.environ.get("CMFLEET_CONCURRENCY_TYPE", "PROCESS_POOL"))
    quiet_pool_wakeups()
    one_write_requests()
    disable_sdk_startup(False)
    try:
        start_compute_module(concurrency_type=concurrency, report_restart=True)
    finally:
        # The SDK also registered start_compute_module with atexit; never start it a second time.
        disable_sdk_startup(True)


def main(argv: list[str] | None = None) -> None:
    """``python -m cmcore.entrypoint MODULE_DIR`` (default ``$CMFLEET_MODULE``, else the current folder)."""
    args = sys.argv[1:] if argv is None else argv
    serve(Path(args[0] if args else os.environ.get("CMFLEET_MODULE", ".")))


if __name__ == "__main__":
    main()
