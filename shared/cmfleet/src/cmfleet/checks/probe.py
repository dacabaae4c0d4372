"""Load a module's endpoints in a child process and describe them as JSON, for the live check rules.

``python -m cmfleet.checks.probe <module dir>`` imports ``app.py`` through :func:`cmfleet.registry.load_registry`
(so plugin endpoints are included and the SDK parses every schema exactly as in a container) and prints one
JSON object on stdout::

    {"ok": true, "error": null,
     "endpoints": [{"name", "plugin", "streaming", "file", "line", "positional", "schema"}, ...]}

A failure becomes ``{"ok": false, "error": {"kind", "message", "exception", "file", "line", "in_sdk"}}``.
Each module gets its own process, so modules never collide in ``sys.modules`` or in the SDK's registries,
and nothing the module prints can corrupt the JSON (stdout is redirected to stderr while it loads).

Many modules at once (``cmfleet check`` of a fleet): ``python -m cmfleet.checks.probe --batch`` reads module
folders from stdin, one per line, imports the SDK and cmfleet once, then forks a child per module (where ``fork``
exists) that loads it and reports, and prints ``{"module_dir": ..., "result": {...}}`` per line: each module
still has a process of its own, without paying an interpreter's start and the SDK's import each time (0.15 s of
CPU per module). :func:`run_probes` drives it.
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
    current: BaseException | None = exc
    while current is not None:
        for frame in traceback.extract_tb(current.__traceback__):
            if "function_schema_parser" in frame.filename:
                return True
        current = current.__cause__ or current.__context__
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


def _python_for(repo: Any, unit: Any) -> Path | str | None | ProbeResult:
    """The interpreter that probes ``unit``: this one when it has what the module declares, else the module's own
    env's (made or reused as ``cmfleet dev`` does: runtime/environments/select.py); a failed result when that env
    cannot be made."""
    try:
        from cmfleet.runtime.environments.select import EnvBuildError, module_python
    except ImportError:  # pragma: no cover - cmfleet without its runtime extra
        return None
    try:
        return module_python(repo, unit)
    except EnvBuildError as exc:
        message = f"its dependencies are not installed here and its environment could not be made: {exc}"
        return ProbeResult(False, error=ProbeError("import", message, "EnvBuildError"))


def run_probe_for(repo: Any, unit: Any, timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Probe ``unit`` with the interpreter :func:`_python_for` picks."""
    python = _python_for(repo, unit)
    return python if isinstance(python, ProbeResult) else run_probe(unit.path, timeout, python)


def run_probes_for(repo: Any, units: list[Any], workers: int, timeout: float = PROBE_TIMEOUT_S) -> list[ProbeResult]:
    """Probe every unit of ``units``: ``workers`` batch processes at a time per interpreter (:func:`run_probes`),
    the modules shared out among them."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        pythons = list(pool.map(lambda u: _python_for(repo, u), units))
    results: dict[int, ProbeResult] = {}
    groups: dict[str, list[int]] = {}
    for i, python in enumerate(pythons):
        if isinstance(python, ProbeResult):
            results[i] = python
        else:
            groups.setdefault(str(python or sys.executable), []).append(i)
    jobs = [(python, members[k::workers]) for python, members in groups.items() for k in range(workers)]
    jobs = [(python, part) for python, part in jobs if part]
    with ThreadPoolExecutor(workers) as pool:
        answers = pool.map(lambda job: run_probes([units[i].path for i in job[1]], timeout, job[0]), jobs)
        for (_, part), found in zip(jobs, answers, strict=True):
            results.update(zip(part, found, strict=True))
    return [results[i] for i in range(len(units))]


def run_probe(module_dir: Path, timeout: float = PROBE_TIMEOUT_S, python: Path | str | None = None) -> ProbeResult:
    """Run the probe for ``module_dir`` in a child process with ``python`` (default: this interpreter)."""
    try:
        proc = subprocess.run(
            [str(python or sys.executable), "-m", "cmfleet.checks.probe", str(module_dir)],
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
    return _result(data)


def _payload(result: ProbeResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "endpoints": result.endpoints,
        "error": None if result.error is None else result.error.__dict__,
    }


def _result(data: dict[str, Any]) -> ProbeResult:
    error = ProbeError(**data["error"]) if data.get("error") else None
    return ProbeResult(bool(data["ok"]), list(data.get("endpoints") or []), error)


def run_probes(
    module_dirs: list[Path], timeout: float = PROBE_TIMEOUT_S, python: Path | str | None = None
) -> list[ProbeResult]:
    """Probe every folder of ``module_dirs`` with ``python`` through one ``--batch`` process (a child per module,
    forked from it); where there is no ``fork``, a process per module (:func:`run_probe`)."""
    import os

    if not hasattr(os, "fork") or len(module_dirs) < 2:
        return [run_probe(d, timeout, python) for d in module_dirs]
    listing = "".join(f"{d}\n" for d in module_dirs)
    try:
        proc = subprocess.run(
            [str(python or sys.executable), "-m", "cmfleet.checks.probe", "--batch", "--timeout", str(timeout)],
            input=listing,
            capture_output=True,
            text=True,
            timeout=timeout * len(module_dirs) + 60,
        )
    except subprocess.TimeoutExpired:
        return [run_probe(d, timeout, python) for d in module_dirs]
    found: dict[str, ProbeResult] = {}
    for line in proc.stdout.splitlines():
        try:
            item = json.loads(line)
            found[item["module_dir"]] = _result(item["result"])
        except (ValueError, KeyError, TypeError):
            continue  # not a line of the batch's (a module wrote to the terminal itself)
    # a folder the batch did not answer (it failed itself) gets a process of its own, as before
    return [found.get(str(d)) or run_probe(d, timeout, python) for d in module_dirs]


def _probe_forked(module_dir: Path, timeout: float) -> dict[str, Any]:
    """Load ``module_dir`` in a forked child of this process; its payload, or the failure's."""
    import os
    import select
    import signal
    import time

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report on the pipe, never return into the parent's code
        status = 0
        try:
            os.close(read_fd)
            os.dup2(2, 1)  # whatever the module prints goes to stderr, never into the answers
            data = json.dumps(_payload(probe(module_dir)), default=str).encode()
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
        except BaseException:  # noqa: BLE001 - a child must end here, whatever happened
            traceback.print_exc()
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    with os.fdopen(read_fd, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                message = f"importing app.py did not finish within {timeout:.0f}s"
                return _payload(ProbeResult(False, error=ProbeError("import", message, "Timeout")))
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    try:
        payload: dict[str, Any] = json.loads(b"".join(chunks))  # the child writes _payload(...)
        return payload
    except ValueError:
        how = (
            f"signal {-os.waitstatus_to_exitcode(status)}"
            if os.WIFSIGNALED(status)
            else f"exit {os.WEXITSTATUS(status)}"
        )
        message = f"the probe process failed ({how}); see the lines above"
        return _payload(ProbeResult(False, error=ProbeError("probe", message, "")))


def _batch(timeout: float) -> int:
    """``--batch``: the folders on stdin, an answer line each on stdout (see the module docstring)."""
    import compute_modules  # noqa: F401 - imported once here, inherited by every forked child

    from cmfleet import loader, registry  # noqa: F401
    from cmfleet.plugins import get_plugin_manager

    # What every child would read the same way: the plugins installed here and the repository of the modules
    get_plugin_manager()
    registry.loaded_repositories = {}
    for line in sys.stdin:
        folder = line.rstrip("\n")
        if not folder:
            continue
        with contextlib.suppress(Exception):  # a folder that is no module: the child says what is wrong
            registry._repository_of(registry.module_unit(folder))
        result = _probe_forked(Path(folder), timeout)
        sys.stdout.write(json.dumps({"module_dir": folder, "result": result}, default=str) + "\n")
        sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m cmfleet.checks.probe <module dir>`` (or ``--batch [--timeout S]``)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--batch"]:
        timeout = float(args[2]) if args[1:2] == ["--timeout"] and len(args) > 2 else PROBE_TIMEOUT_S
        return _batch(timeout)
    if len(args) != 1:
        print("usage: python -m cmfleet.checks.probe <module dir> | --batch [--timeout S]", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(_payload(probe(Path(args[0]))), default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
