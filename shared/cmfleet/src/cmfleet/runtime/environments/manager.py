"""The runtime's side of module envs: builds off the event loop, several modules at once, one per module."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from cmfleet.runtime.environments.building import Builder
from cmfleet.runtime.environments.locking import hold_use_lock, lock_path
from cmfleet.runtime.environments.progress import _Progress
from cmfleet.runtime.environments.spec import (
    RETRY_AFTER,
    WORKERS,
    EnvBuildError,
    environment_spec,
    lock_used,
    read_stamp,
)


class EnvironmentManager:
    """The runtime's side: builds off the event loop (a bounded thread pool, several modules in parallel),
    one build per module at a time, results remembered until :meth:`invalidate` (hot reload)."""

    def __init__(self, root: Path, logs: Any, workers: int = WORKERS) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.root = Path(root)
        self.logs = logs
        self.builder = Builder()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cmfleet-env")
        self._ready: dict[str, Path] = {}
        self._building: dict[str, asyncio.Future[Path]] = {}
        self._generation: dict[str, int] = {}
        self._failed: dict[str, tuple[str, float, str]] = {}  # module -> (key, when, message)
        self._progress = _Progress(getattr(logs, "_console", None))  # the LogHub's console: lines print above
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._using: dict[str, IO[str]] = {}  # module -> its env's "use" lock, held (shared) until stop()
        #: Modules whose env uv is making right now (kept on the event loop; a reused env never enters it).
        self.building: set[str] = set()
        #: Called on the event loop with ``(module, True)`` when uv starts making the module's env and
        #: ``(module, False)`` when it is done (made or failed).
        self.on_building: Callable[[str, bool], None] = lambda module, building: None

    def prepare(self, modules: list[str]) -> None:
        """Start building ``modules``' envs now (a module scaled to zero then cold-starts without the wait)."""
        for name in modules:
            task = asyncio.get_running_loop().create_task(self._quietly(name))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _quietly(self, name: str) -> None:
        with contextlib.suppress(EnvBuildError):  # reported when a replica needs the env
            await self.python(name)

    def invalidate(self, module: str) -> None:
        """Files of ``module`` changed: check its env again (rebuilt only if its inputs changed)."""
        self._ready.pop(module, None)
        self._failed.pop(module, None)
        self._generation[module] = self._generation.get(module, 0) + 1

    async def python(self, module: str) -> Path:
        """The Python of ``module``'s env, once it exists; raises EnvBuildError with the cause."""
        loop = self._loop = asyncio.get_running_loop()
        while True:
            if self.builder.stopped:
                raise EnvBuildError("the runtime is stopping")
            if module in self._ready:
                return self._ready[module]
            generation = self._generation.get(module, 0)
            future = self._building.get(module)
            if future is None:
                future = self._building[module] = loop.run_in_executor(self._executor, self._build, module)

                def forget(f: asyncio.Future[Path], m: str = module) -> None:
                    if self._building.get(m) is f:
                        self._building.pop(m, None)

                future.add_done_callback(forget)
            try:
                python = await asyncio.shield(future)
            except EnvBuildError:
                if self._generation.get(module, 0) != generation:
                    continue  # files changed while it was being built: try the new ones
                raise
            if self._generation.get(module, 0) == generation:
                self._ready[module] = python
                return python

    def _log(self, message: str, module: str, level: str = "INFO") -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.logs.system, message, module, "-", level)

    def _building_changed(self, module: str, building: bool) -> None:
        """(On the event loop.) uv started or stopped making ``module``'s env."""
        if building:
            self.building.add(module)
        else:
            self.building.discard(module)
        self.on_building(module, building)

    def _build(self, module: str) -> Path:
        """(In a worker thread.) Create or reuse one module's env."""
        from cmfleet.discovery import DiscoveryError, Repository, rel_path

        try:
            repo = Repository.load(self.root)
            spec = environment_spec(repo, repo.module(module))
            key = spec.key()
        except DiscoveryError as exc:
            raise EnvBuildError(str(exc)) from None
        failed = self._failed.get(module)
        if failed is not None and failed[0] == key and time.monotonic() - failed[1] < RETRY_AFTER:
            raise EnvBuildError(failed[2])
        self._use(spec.folder.parent, module)
        where = rel_path(self.root, spec.folder)
        stamp = read_stamp(spec.folder)
        task = None
        making = stamp is None or stamp.get("key") != key
        if making:
            what = f"{len(spec.requirements)} requirement(s), {len(spec.editables)} editable"
            self._log(f"{'creating' if stamp is None else 'rebuilding'} environment {where} ({what})", module)
            task = self._progress.add(module)
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._building_changed, module, True)
        started = time.monotonic()
        try:
            python, built = self.builder.ensure(
                spec,
                lambda line: self._progress.update(task, line),
                lambda note: self._log(note, module, "WARNING"),
            )
        except Exception as exc:  # noqa: BLE001 - whatever it is, the module's replicas report it
            detail = str(exc) if isinstance(exc, (EnvBuildError, OSError)) else f"{type(exc).__name__}: {exc}"
            message = f"could not create its environment {where}: {detail}"
            self._failed[module] = (key, time.monotonic(), message)
            if not self.builder.stopped:
                self._log(message, module, "ERROR")
            raise EnvBuildError(message) from None
        finally:
            self._progress.done(task)
            if making and self._loop is not None:  # reaches the loop before the build's result (FIFO callbacks)
                self._loop.call_soon_threadsafe(self._building_changed, module, False)
        self._failed.pop(module, None)
        if built:
            locked = " (locked)" if lock_used(read_stamp(spec.folder)) else ""
            self._log(f"environment {where} ready{locked} in {time.monotonic() - started:.1f} s", module)
        else:
            self._log(f"reusing environment {where}", module)
        return python

    def _use(self, envs: Path, module: str) -> None:
        """(In a worker thread, one per module at a time.) Hold the env's "use" lock, shared, until stop(): another
        ``cmfleet dev`` then keeps the env even if it finds no such module (see remove_stale_environments)."""
        if module in self._using:
            return
        fh = hold_use_lock(str(lock_path(envs, module, "use")))
        if fh is not None:
            self._using[module] = fh

    async def stop(self) -> None:
        """End running builds (their uv processes) and the worker threads; release the envs' "use" locks."""
        self.builder.stop()
        for task in list(self._background):
            task.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        for fh in self._using.values():
            fh.close()
        self._using.clear()
