"""Rules about the endpoints of a module: their signature, their return types, their names.

``app.py`` is read statically (so these rules work even when it does not import); endpoints added by
plugins are checked from the probe's description of the live registry.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cmcore.plugins import SDK_APP_PLUGIN
from cmfleet.checks import appsource
from cmfleet.checks.base import CheckContext, Finding
from cmfleet.checks.live import probe_for
from cmfleet.discovery import Registration, Unit

#: Types the SDK's JSON encoder cannot serialise (contract §2.2/§3.2), with what to return instead.
UNSERIALISABLE = {
    "bytes": "a str (decode it) or base64 text",
    "bytearray": "a str (decode it) or base64 text",
    "Decimal": "a float or a str",
    "set": "a list (sorted(...))",
    "frozenset": "a list (sorted(...))",
    "Set": "a list (sorted(...))",
    "FrozenSet": "a list (sorted(...))",
    "AbstractSet": "a list (sorted(...))",
    "MutableSet": "a list (sorted(...))",
}
#: Schema dataTypes the encoder cannot serialise, for endpoints checked live.
UNSERIALISABLE_SCHEMA = {"binary": "bytes", "decimal": "Decimal", "set": "set"}
ITERATOR_HEADS = {"Iterable", "Iterator", "Generator", "AsyncIterable", "AsyncIterator", "AsyncGenerator"}
STREAMABLE_HEADS = ITERATOR_HEADS | {"list", "List", "tuple", "Tuple", "Sequence", "Collection"}
#: Streamed items go through plain json.dumps (no date, dataclass or Decimal support).
PLAIN_JSON_UNSUPPORTED = set(UNSERIALISABLE) | {"date", "datetime", "time", "timedelta"}
_DUPLICATE_RE = re.compile(r"function name '([^']+)' is registered twice")


def _signature_problem(node: appsource.FunctionNode) -> str | None:
    args = node.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    if isinstance(node, ast.AsyncFunctionDef):
        return "is 'async def': the SDK calls it without awaiting, so the job returns a coroutine"
    extra = []
    if args.vararg:
        extra.append(f"*{args.vararg.arg}")
    extra += [a.arg for a in args.kwonlyargs]
    if args.kwarg:
        extra.append(f"**{args.kwarg.arg}")
    if len(positional) != 2 or extra:
        shown = ", ".join([*positional, *extra])
        return f"takes ({shown}); the SDK calls every endpoint with exactly two positional arguments"
    first = (args.posonlyargs or args.args)[0]
    if first.annotation is not None and first.arg != "context":
        return (
            f"annotates its first parameter {first.arg!r}: the SDK only recognises a parameter named 'context', "
            "so it would treat that annotation as the event type"
        )
    return None


def endpoint_signature(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """Every endpoint takes exactly (context, event)."""
    for reg in appsource.registrations(unit, ctx):
        if reg.node is None:
            continue
        problem = _signature_problem(reg.node)
        if problem:
            yield Finding(
                unit.app,
                reg.node.lineno,
                f"endpoint {reg.name!r} {problem}",
                f"define it as 'def {reg.name}(context, event):' (annotate event with a dataclass or TypedDict "
                "for a typed payload; use a plain 'def')",
            )
    for ep in _plugin_endpoints(unit, ctx, "signature"):
        if ep["positional"] != 2:
            yield Finding(
                Path(ep["file"] or unit.app),
                ep["line"] or 1,
                f"endpoint {ep['name']!r} added by plugin {ep['plugin']} does not take exactly (context, event)",
                f"give {ep['name']} the signature (context, event) in plugin {ep['plugin']}",
            )


def _plugin_endpoints(unit: Unit, ctx: CheckContext, rule: str) -> list[dict[str, Any]]:
    """Endpoints added by plugins, each returned once per check run and rule (plugins add them to every module)."""
    result = probe_for(unit, ctx)
    seen: set[tuple[str, str]] = ctx.cache.setdefault(f"plugin-endpoints:{rule}", set())
    fresh = []
    for ep in result.endpoints if result else []:
        key = (ep["plugin"], ep["name"])
        if ep["plugin"] != SDK_APP_PLUGIN and key not in seen:
            seen.add(key)
            fresh.append(ep)
    return fresh


def _return_findings(unit: Unit, reg: Registration, classes: dict[str, ast.ClassDef]) -> Iterator[tuple[str, str]]:
    node = reg.node
    assert node is not None
    annotation = node.returns
    if not reg.streaming:
        if appsource.yields(node):
            yield (
                f"endpoint {reg.name!r} is a generator but not streaming: the SDK's encoder cannot serialise "
                "a generator, so every call fails",
                "use @function(streaming=True) to stream its items, or build and return a list",
            )
            return
        if annotation is None:
            return
        head = appsource.head_of(annotation)
        if head in ITERATOR_HEADS:
            yield (
                f"endpoint {reg.name!r} returns {head}[...] but is not streaming: the SDK's encoder fails on a "
                "generator or iterator",
                "return a list (annotate '-> list[...]'), or use @function(streaming=True)",
            )
            return
        for name in appsource.names_in(annotation, classes):
            if name in UNSERIALISABLE:
                yield (
                    f"endpoint {reg.name!r} returns {name} (in '-> {ast.unparse(annotation)}'): the SDK's JSON "
                    f"encoder cannot serialise {name}, so the job fails with 'Circular reference detected'",
                    f"return {UNSERIALISABLE[name]} instead of {name}",
                )
                return
        return
    if annotation is None:
        return
    head = appsource.head_of(annotation)
    if head not in STREAMABLE_HEADS:
        yield (
            f"streaming endpoint {reg.name!r} returns {head or ast.unparse(annotation)}: the SDK streams only a "
            "non-dict iterable (a dict is sent whole, a str character by character)",
            "yield the items and annotate '-> Iterable[ItemType]', or drop streaming=True",
        )
        return
    item = appsource.item_type(annotation)
    if item is None:
        return
    for name in appsource.names_in(item, classes):
        cls = classes.get(name)
        if name in PLAIN_JSON_UNSUPPORTED or (cls is not None and not appsource.is_typed_dict(cls)):
            yield (
                f"streaming endpoint {reg.name!r} yields {name} items: the SDK sends each item with plain "
                "json.dumps, which cannot encode it",
                "yield JSON-ready items (dict, list, str, int, float, bool; dates as ISO strings)",
            )
            return


def serializable_return(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """Return types the SDK can serialise; streaming endpoints return an iterable."""
    classes = appsource.classes_of(unit, ctx)
    for reg in appsource.registrations(unit, ctx):
        if reg.node is None:
            continue
        for message, fix in _return_findings(unit, reg, classes):
            yield Finding(unit.app, reg.node.lineno, message, fix)
    for ep in _plugin_endpoints(unit, ctx, "return"):
        if ep["streaming"]:
            continue
        bad = _schema_types(ep["schema"].get("output", {}))
        if bad:
            py = UNSERIALISABLE_SCHEMA[bad]
            yield Finding(
                Path(ep["file"] or unit.app),
                ep["line"] or 1,
                f"endpoint {ep['name']!r} added by plugin {ep['plugin']} returns {py}, which the SDK cannot serialise",
                f"return {UNSERIALISABLE[py]} instead of {py} in plugin {ep['plugin']}",
            )


def _schema_types(data: object) -> str | None:
    """The first unserialisable dataType tag anywhere in a schema fragment."""
    if isinstance(data, dict):
        tag = data.get("type")
        if tag in UNSERIALISABLE_SCHEMA and isinstance(tag, str):  # a key of UNSERIALISABLE_SCHEMA is a str
            return tag
        for value in data.values():
            found = _schema_types(value)
            if found:
                return found
    elif isinstance(data, list):
        for value in data:
            found = _schema_types(value)
            if found:
                return found
    return None


def duplicate_functions(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """No function name is registered twice (in app.py, or by app.py and a plugin)."""
    first: dict[str, Registration] = {}
    for reg in appsource.registrations(unit, ctx):
        if reg.name in first:
            earlier = first[reg.name]
            yield Finding(
                unit.app,
                reg.line,
                f"function name {reg.name!r} is registered again ({reg.how}); it was registered at line "
                f"{earlier.line} ({earlier.how}). The SDK keeps only the last one and posts its schema twice",
                f"rename one of them or remove the second registration of {reg.name!r}",
            )
        else:
            first[reg.name] = reg
    result = probe_for(unit, ctx)
    error = result.error if result else None
    if error is None or error.kind != "registry":
        return
    match = _DUPLICATE_RE.search(error.message)
    if match:
        name = match.group(1)
        registered = first.get(name)
        file, line = (unit.app, registered.line) if registered else (Path(error.file or unit.app), error.line or 1)
        yield Finding(
            file,
            line,
            error.message,
            f"rename {name!r} in app.py (plugin endpoints are added to every module), or leave out the plugin "
            "with CMFLEET_LOAD_PLUGINS",
        )


def is_duplicate_error(message: str) -> bool:
    """Whether a registry error is a duplicate name (reported by ``duplicate-functions``)."""
    return bool(_DUPLICATE_RE.search(message))
