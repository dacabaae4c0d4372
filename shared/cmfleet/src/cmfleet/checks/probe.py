"""Load a module's endpoints in a child process and describe them as JSON, for the live check rules.

``python -m cmfleet.checks.probe <module dir>`` imports ``app.py`` through :func:`cmfleet.registry.load_registry`
(so plugin endpoints are included and the SDK parses every schema exactly as in a container) and prints one
JSON object on stdout::

    {"ok": true, "error": null,
     "endpoints": [{"name", "plugin", "streaming", "file", "line", "positional", "schema"}, ...]}

A failure becomes ``{"ok": false, "error": {"kind", "message", "exception", "file", "line", "in_sdk"}}``.
Each module gets its own process, so modules never collide in ``sys.modules`` or in the SDK's registries,
and nothing the module prints can corrupt the JSON (stdout is redirected to stderr while it loads).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: How long one module may take to import before the probe gives up.
PROBE_TIMEOUT_S = 120

# Frames from these places are machinery, not the user's code, when blaming a line.
_MACHINERY = ("/cmfleet/", "/pluggy/", "/compute_modules/", "/importlib/", "<frozen ")


@dataclass
class ProbeError:
    """Why a module's endpoints could not be loaded."""

    kind: str  # "import", "registry" or "probe"
    message: str
    exception: str = ""
    file: str | None = None
    line: int | None = None
    in_sdk: bool = False  # the SDK's schema parser raised (a type it rejects)


@dataclass
class ProbeResult:
    """What the probe learned about one module."""

    ok: bool
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    error: ProbeError | None = None


def _user_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The innermost traceback frame outside cmfleet, pluggy, importlib and the SDK."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        name = frame.filename.replace("\\", "/")
        if not any(part in name for part in _MACHINERY):
            return frame.filename, frame.lineno
    return None, None


def _raised_in_sdk_parser(exc: BaseException) -> bool:
    """Whether the SDK's schema parser (or ``get_type_hints`` called by it) raised ``exc``."""
    while exc is not None:
        for frame in traceback.extract_tb(exc.__traceback__):
            if "function_schema_parser" in frame.filename:
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def _describe(endpoint: Any) -> dict[str, Any]:
    func = inspect.unwrap(endpoint.func)
    code = getattr(func, "__code__", None)
    try:
        params = inspect.signature(func).parameters.values()
        positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        exact = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    except (TypeError, ValueError):  # builtins without a signature
        positional, exact = -1, False
    return {
        "name": endpoint.name,
        "plugin": endpoint.plugin,
        "streaming": endpoint.streaming,
        "file": code.co_filename if code else None,
        "line": code.co_firstlineno if code else None,
        "positional": positional if exact else -1,
        "schema": endpoint.schema,
    }


def probe(module_dir: Path) -> ProbeResult:
    """Load the module in this process and describe its endpoints (run it in a child process)."""
    from cmfleet.loader import ModuleLoadError
    from cmfleet.registry import RegistryError, load_registry

    try:
        with contextlib.redirect_stdout(sys.stderr):
            registry = load_registry(module_dir)
    except ModuleLoadError as exc:
        cause = exc.__cause__ or exc
        return ProbeResult(
            False,
            error=ProbeError(
                "import", str(exc), type(cause).__name__, exc.file, exc.line, _raised_in_sdk_parser(cause)
            ),
        )
    except RegistryError as exc:
        file, line = _user_frame(exc)
        in_sdk = exc.__cause__ is not None and _raised_in_sdk_parser(exc.__cause__)
        return ProbeResult(False, error=ProbeError("registry", str(exc), "RegistryError", file, line, in_sdk))
    except Exception as exc:  # noqa: BLE001 - a plugin failing while registering is reported, not raised
        file, line = _user_frame(exc)
        return ProbeResult(
            False, error=ProbeError("probe", f"{type(exc).__name__}: {exc}", type(exc).__name__, file, line)
        )
    return ProbeResult(True, [_describe(e) for e in registry.endpoints.values()])


def run_probe(module_dir: Path, timeout: float = PROBE_TIMEOUT_S, python: str | None = None) -> ProbeResult:
    """Run the probe for ``module_dir`` in a child process with ``python`` (default: this interpreter)."""
    try:
        proc = subprocess.run(
            [python or sys.executable, "-m", "cmfleet.checks.probe", str(module_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(
            False, error=ProbeError("import", f"importing app.py did not finish within {timeout:.0f}s", "Timeout")
        )
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return ProbeResult(
            False, error=ProbeError("probe", f"the probe process failed (exit {proc.returncode}): {tail}", "")
        )
    error = ProbeError(**data["error"]) if data.get("error") else None
    return ProbeResult(bool(data["ok"]), list(data.get("endpoints") or []), error)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m cmfleet.checks.probe <module dir>``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cmfleet.checks.probe <module dir>", file=sys.stderr)
        return 2
    result = probe(Path(args[0]))
    payload = {
        "ok": result.ok,
        "endpoints": result.endpoints,
        "error": None if result.error is None else result.error.__dict__,
    }
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
