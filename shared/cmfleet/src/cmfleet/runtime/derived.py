"""Schemas derived from ``app.py`` before any replica posted them, so a cold start checks calls as a warm one does.

A module scaled to zero (``--replicas 0:N``) has no posted schema until its first replica starts and posts; the
first call would reach the function unchecked, the same call a second later is a 422. For such a Python module,
the runtime runs ``cmfleet schema MODULE`` (what the SDK will post, read by importing ``app.py`` with the SDK's
startup switched off) with the module's own Python (its venv once built, its ``python`` setting, or the runtime's
in shared mode) at start and after each reload; the gateway checks calls against it until a replica posts.
A module run by its own ``command`` (another language) has nothing to derive. A failure (an import error, say)
leaves calls unchecked until the replica posts, as before; the replica's own start reports the error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

DERIVE_TIMEOUT = 120.0


async def derive_schemas(manager: Any, name: str) -> list[dict[str, Any]] | None:
    """The function schemas ``cmfleet schema NAME`` prints with the module's Python, or None when it cannot."""
    mod = manager.modules[name]
    settings = mod.settings
    if settings.command or not mod.unit.app.exists():
        return None
    python = settings.python or sys.executable
    env = dict(os.environ)
    if manager.envs is not None and settings.own_environment:
        try:
            python = str(await manager.envs.python(name))
        except Exception:  # noqa: BLE001 - the replica's start reports a failed build
            return None
    else:
        paths = [*manager.env.pythonpath.get(name, []), *filter(None, [env.get("PYTHONPATH")])]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("CMFLEET_ROOT", None)
    try:
        proc = await asyncio.create_subprocess_exec(
            python,
            "-m",
            "cmfleet",
            "schema",
            name,
            cwd=str(mod.unit.root),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), DERIVE_TIMEOUT)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        return None
    if proc.returncode != 0:
        return None
    try:
        schemas = json.loads(out)
    except ValueError:
        return None
    return schemas if isinstance(schemas, list) else None
