"""The live rule: the SDK's own schema parser accepts every endpoint (app.py imported in a child process)."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.checks.probe import ProbeResult, run_probes_for
from cmfleet.discovery import Repository, Unit

_CACHE_KEY = "probe"

_TYPE_FIX = (
    "use a type the SDK accepts: str, int, float, bool, date, datetime, Decimal, list[T], dict[K, V] with "
    "parameters, Optional[T], a dataclass or TypedDict event (then 'cmfleet schema {module}' shows the schema)"
)
_LOST_FUNCTIONS = (
    " In Foundry the container would still start, with only the functions registered above this line; "
    "the later ones would answer 'Unknown query type'."
)


def probe_for(unit: Unit, ctx: CheckContext) -> ProbeResult | None:
    """The probe result of a module (``None`` without app.py); every checked module is probed once, in parallel."""
    if not unit.is_module or not unit.app.exists():
        return None
    cache: dict[str, ProbeResult] = ctx.shared.setdefault(_CACHE_KEY, {})
    if unit.name not in cache:
        _probe_into(cache, ctx.repo, [*(ctx.units or []), unit])
    return cache[unit.name]


def probed(repo: Repository, units: list[Unit]) -> dict[str, Any]:
    """``run_checks``'s ``shared`` facts, holding the probe results of every module of ``units``, probed at once:
    for several runs that check these modules (a build of many modules checks each with its libraries)."""
    cache: dict[str, ProbeResult] = {}
    _probe_into(cache, repo, units)
    return {_CACHE_KEY: cache}


def _probe_into(cache: dict[str, ProbeResult], repo: Repository, units: list[Unit]) -> None:
    """Probe every module of ``units`` with an app.py that ``cache`` lacks (each once, up to 4 at a time)."""
    todo = list({u.name: u for u in units if u.is_module and u.app.exists() and u.name not in cache}.values())
    if todo:
        workers = max(1, min(len(todo), os.cpu_count() or 1, 4))
        cache.update(zip((u.name for u in todo), run_probes_for(repo, todo, workers), strict=True))


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
        yield from unconvertible_events(unit, ctx)
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


#: Event annotations the SDK's schema parser accepts (as a "custom type" without fields: no inputs) but whose
#: conversion of every event fails or throws the event away (found by running the SDK's parse_function_schema and
#: convert_payload on each): the name, and what every call then gets.
UNCONVERTIBLE_EVENTS = {
    "dict": "fails: KeyError 'key' (a bare dict has no key and value types)",
    "Dict": "fails: the SDK has no key and value types",
    "list": "fails: KeyError 'list' (a bare list has no item type)",
    "set": "fails: KeyError 'set'",
    "Any": "fails: TypeError 'Any cannot be instantiated'",
    "datetime": "fails: the event is an object, not an ISO timestamp",
    "date": "fails: date() is called without its fields",
    "str": "gets '' (str() called without the event): the event is lost",
    "int": "gets 0 (int() called without the event): the event is lost",
    "float": "gets 0.0: the event is lost",
    "bool": "gets False: the event is lost",
    "bytes": "gets b'': the event is lost",
    "tuple": "gets (): the event is lost",
    "object": "gets a bare object(): the event is lost",
    "Decimal": "gets Decimal('0'): the event is lost",
}


def unconvertible_events(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """Endpoints whose event annotation the SDK accepts but cannot convert an event to (a bare ``dict``...)."""
    from cmfleet.checks.appsource import _name_of, _parse_string, classes_of, registrations

    classes = classes_of(unit, ctx)
    for reg in registrations(unit, ctx):
        node = reg.node
        if node is None:
            continue
        params = [*node.args.posonlyargs, *node.args.args]
        event = next((a for a in params if a.arg != "context"), None)
        if event is None or event.annotation is None:
            continue
        annotation = _parse_string(event.annotation)
        name = _name_of(annotation) if isinstance(annotation, (ast.Name, ast.Attribute)) else ""
        if name not in UNCONVERTIBLE_EVENTS or name in classes:
            continue
        yield Finding(
            unit.app,
            event.annotation.lineno,
            f"endpoint {reg.name!r} annotates its event {event.arg!r} as {name!r}: the SDK accepts it but publishes "
            f"a schema with no inputs, and every call {UNCONVERTIBLE_EVENTS[name]}",
            f"describe the event's fields with a dataclass or TypedDict (class Event(TypedDict): a: int; then "
            f"'{event.arg}: Event'), or drop the annotation to receive the JSON object as a dict",
        )
