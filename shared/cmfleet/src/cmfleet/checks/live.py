"""The live rule: the SDK's own schema parser accepts every endpoint (app.py imported in a child process)."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.checks.probe import ProbeResult, run_probe
from cmfleet.discovery import Unit, normalize

SDK_APP_PLUGIN = "cmfleet.builtin.sdk_app"
_CACHE_KEY = "probe"

_TYPE_FIX = (
    "use a type the SDK accepts: str, int, float, bool, date, datetime, Decimal, list[T], dict[K, V] with "
    "parameters, Optional[T], a dataclass or TypedDict event (then 'cmfleet schema {module}' shows the schema)"
)
_LOST_FUNCTIONS = (
    " In Foundry the container would still start, with only the functions registered above this line; "
    "the later ones would answer 'Unknown query type'."
)


def missing_requirements(ctx: CheckContext, unit: Unit) -> list[str]:
    """Third-party requirements of ``unit`` and its shared libraries that this environment has not installed."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    local = {u.distribution for u in ctx.repo.units.values()}
    missing = []
    for owner in [unit, *ctx.repo.closure(unit)]:
        for text in owner.dependencies:
            req = Requirement(text)
            if normalize(req.name) in local or (req.marker is not None and not req.marker.evaluate()):
                continue
            try:
                distribution(req.name)
            except PackageNotFoundError:
                missing.append(req.name)
    return missing


def probe_python(ctx: CheckContext, unit: Unit) -> str | None:
    """The Python that imports ``unit``'s app.py: this one when it has everything the module declares, else the
    module's own venv, made or reused as ``cmfleet dev`` does (so the release gate, run from the dev environment,
    checks a module with a third-party dependency it lacks). ``None``: this interpreter."""
    if not missing_requirements(ctx, unit):
        return None
    try:
        from cmfleet.runtime.environments import EnvBuildError, ensure_module_environment
    except ImportError:  # without the runtime extra the probe runs here and names the missing import
        return None
    try:
        python, _ = ensure_module_environment(ctx.repo.root, unit.name, on_note=lambda _note: None)
    except EnvBuildError:
        return None  # the probe then fails here naming the import; cmfleet dev shows the env's own error
    return str(python)


def probe_for(unit: Unit, ctx: CheckContext) -> ProbeResult | None:
    """The probe result of a module (``None`` without app.py); every checked module is probed once, in parallel."""
    if not unit.is_module or not unit.app.exists():
        return None
    cache: dict[str, ProbeResult] = ctx.cache.setdefault(_CACHE_KEY, {})
    if unit.name not in cache:
        todo = [u for u in (ctx.units or [unit]) if u.is_module and u.app.exists() and u.name not in cache]
        if unit not in todo:
            todo.append(unit)
        workers = max(1, min(len(todo), os.cpu_count() or 1, 4))
        with ThreadPoolExecutor(workers) as pool:
            probe = lambda u: run_probe(u.path, python=probe_python(ctx, u))  # noqa: E731
            for u, result in zip(todo, pool.map(probe, todo), strict=True):
                cache[u.name] = result
    return cache[unit.name]


def _function_at(unit: Unit, ctx: CheckContext, line: int) -> str | None:
    for node in ast.walk(ctx.ast_of(unit.app)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno == line:
            return node.name
    return None


def _future_annotations_line(unit: Unit, ctx: CheckContext) -> int | None:
    for node in ctx.ast_of(unit.app).body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            if any(alias.name == "annotations" for alias in node.names):
                return node.lineno
    return None


def sdk_schema(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """app.py imports and the SDK's schema parser accepts every endpoint (checked in a child process)."""
    from cmfleet.checks.appsource import def_line_at, registrations
    from cmfleet.checks.endpoints import is_duplicate_error

    result = probe_for(unit, ctx)
    if result is None:
        return
    error = result.error
    if error is None:
        names = {ep["name"] for ep in result.endpoints}
        for reg in registrations(unit, ctx):
            if reg.name not in names:
                yield Finding(
                    unit.app,
                    reg.line,
                    f"{reg.name!r} is registered at this line ({reg.how}) but the SDK did not register it when "
                    "app.py was imported",
                    "register endpoints unconditionally at module level (no if/try around @function)",
                )
        return
    if error.kind == "registry" and is_duplicate_error(error.message):
        return  # reported by duplicate-functions
    file = Path(error.file) if error.file else unit.app
    line = error.line or 1
    in_app = file.resolve() == unit.app.resolve()
    if in_app:
        line = def_line_at(unit, ctx, line)
    reason = error.message.split(" failed: ", 1)[-1]
    function = _function_at(unit, ctx, line) if in_app else None
    subject = f"endpoint {function!r}" if function else "an endpoint"
    future = _future_annotations_line(unit, ctx)
    if error.in_sdk and error.exception == "NameError" and future:
        yield Finding(
            file,
            line,
            f"the SDK cannot resolve the type hints of {subject} ({reason}): 'from __future__ import annotations' "
            "turns annotations into strings and the SDK resolves them with get_type_hints(globalns={})."
            + _LOST_FUNCTIONS,
            f"remove 'from __future__ import annotations' from {unit.rel}/app.py (line {future})",
        )
    elif error.in_sdk:
        yield Finding(
            file,
            line,
            f"the SDK's schema parser rejects {subject}: {reason}." + (_LOST_FUNCTIONS if in_app else ""),
            _TYPE_FIX.format(module=unit.name),
        )
    elif error.kind == "import":
        yield Finding(
            file,
            line,
            f"importing app.py failed: {reason}",
            f"fix the error at this line so that '{unit.rel}/app.py' imports (check that its dependencies are "
            f"installed; 'cmfleet invoke {unit.name} ...' shows the full traceback)",
        )
    else:
        yield Finding(
            file,
            line,
            f"the endpoints of {unit.name!r} could not be registered: {error.message}",
            "fix the plugin or endpoint named in the message (CMFLEET_LOAD_PLUGINS limits which plugins load)",
        )
