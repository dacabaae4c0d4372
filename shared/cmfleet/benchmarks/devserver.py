"""A throw-away repository for the runtime benchmarks and ``cmfleet dev`` started on it as a real CLI process.

The repository holds the example ``hello`` module (copied unchanged), I/O-bound ``sleep-rR-cC`` modules (one per
replicas x concurrency pair of the scaling run, each with its own ``[tool.cmfleet.dev.modules.*]`` settings) and
``reloadme`` with its shared library ``reloadlib`` (constants the hot-reload benchmark rewrites).
"""

from __future__ import annotations

import http.client
import shutil
from pathlib import Path
from typing import Any

from benchlib import BIN, REPO, BenchError, Service, bench_env, free_port, get_json, unit_pyproject, wait_until

SLEEP_S = 0.2

SLEEP_APP = '''"""An I/O-bound function: it waits, as a call to another service would."""

import time

from compute_modules.annotations import function


@function
def wait(context, event):
    time.sleep(float(event.get("seconds", {sleep})))
    return event.get("n", 0)
'''

RELOAD_APP = '''"""The hot-reload benchmark rewrites VERSION (or the library's) and waits for a call to return it."""

import reloadlib
from compute_modules.annotations import function

VERSION = {version}


@function
def version(context, event):
    return [VERSION, reloadlib.VERSION]
'''

RELOAD_LIB = "VERSION = {version}\n"

SDK = "foundry-compute-modules>=0.34"


def sleep_module(replicas: int, concurrency: int) -> str:
    return f"sleep-r{replicas}-c{concurrency}"


def build_fleet(root: Path, scaling: list[tuple[int, int]]) -> Path:
    """Write the benchmark repository under ``root`` and return it."""
    if root.exists():
        shutil.rmtree(root)
    (root / "modules").mkdir(parents=True)
    shutil.copytree(
        REPO / "modules" / "hello",
        root / "modules" / "hello",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dev = ['[tool.cmfleet]\ntag-format = "{unit}/v{version}"\n']
    for replicas, concurrency in scaling:
        name = sleep_module(replicas, concurrency)
        mod = root / "modules" / name
        mod.mkdir()
        (mod / "app.py").write_text(SLEEP_APP.format(sleep=SLEEP_S))
        (mod / "pyproject.toml").write_text(unit_pyproject(name, [SDK]))
        dev.append(
            f'[tool.cmfleet.dev.modules.{name}]\nreplicas = "{replicas}:{replicas}"\nconcurrency = {concurrency}\n'
        )
    mod = root / "modules" / "reloadme"
    mod.mkdir()
    (mod / "app.py").write_text(RELOAD_APP.format(version=0))
    (mod / "pyproject.toml").write_text(unit_pyproject("reloadme", [SDK, "reloadlib"]))
    lib = root / "shared" / "reloadlib"
    (lib / "src" / "reloadlib").mkdir(parents=True)
    (lib / "src" / "reloadlib" / "__init__.py").write_text(RELOAD_LIB.format(version=0))
    (lib / "pyproject.toml").write_text(
        unit_pyproject("reloadlib", []) + '\n[tool.hatch.build.targets.wheel]\npackages = ["src/reloadlib"]\n'
    )
    (root / "pyproject.toml").write_text("\n".join(dev))
    return root


class Client:
    """A stdlib keep-alive HTTP client: one connection, so the client's cost stays small and constant."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, path: str, body: bytes, call_id: int | None = None) -> tuple[int, bytes]:
        """POST ``body``; with ``call_id``, an ``X-Request-Id`` header carrying it, so no two calls share a header
        block either (as clients that send request ids or trace headers do)."""
        headers = {"Content-Type": "application/json"}
        if call_id is not None:
            headers["X-Request-Id"] = str(call_id)
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # the server closed an idle keep-alive connection (as servers do after a few seconds): reconnect
                self.reconnect()
                if attempt == 2:
                    raise
            except (http.client.HTTPException, OSError):
                self.reconnect()
                raise
        raise AssertionError("unreachable")

    def reconnect(self) -> None:
        """A fresh connection (made now, so the next call does not pay for it)."""
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        self.conn.connect()

    def close(self) -> None:
        self.conn.close()


class DevServer(Service):
    """``cmfleet dev MODULES`` on free loopback ports, started as a user would (the console script)."""

    def __init__(
        self,
        root: Path,
        modules: list[str],
        *args: str,
        log: Path | None = None,
        prefix: list[str] | None = None,
        expect: list[str] | None = None,
    ) -> None:
        """``cmfleet dev MODULES ARGS``; ``expect`` names the modules :meth:`wait_ready` waits for when
        ``modules`` is empty (every module of the repository, as ``cmfleet dev`` alone runs them)."""
        self.port, self.runtime_port = free_port(), free_port()
        argv = [*(prefix or []), str(BIN / "cmfleet"), "dev", *modules, "--port", str(self.port)]
        argv += ["--runtime-port", str(self.runtime_port), *args]
        super().__init__(argv, cwd=root, env=bench_env(), log=log)
        self.modules = modules or list(expect or [])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str) -> Any:
        return get_json(self.url + path)

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until every replica of every module is ready and has posted its schemas."""

        def ready() -> bool:
            mods = {m["name"]: m for m in self.api("/api/modules")}
            for name in self.modules:
                mod = mods.get(name)
                if mod is None or mod.get("start_error"):
                    if mod and mod.get("start_error"):
                        raise BenchError(f"{name} failed to start: {mod['start_error']}")
                    return False
                ready_n = sum(1 for r in mod["replicas"] if r["state"] == "ready")
                if not mod["schemas_posted"] or ready_n < max(1, mod["min_replicas"]):
                    return False
            return True

        wait_until(ready, timeout, f"cmfleet dev replicas of {', '.join(self.modules)}", self)

    def replica_pids(self, module: str) -> list[int]:
        mods = {m["name"]: m for m in self.api("/api/modules")}
        return [r["pid"] for r in mods[module]["replicas"] if r.get("pid")]
