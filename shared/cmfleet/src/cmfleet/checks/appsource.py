"""Static reading of ``app.py`` for the endpoint rules: registrations, their ``def`` nodes, annotation names.

Everything here reads the AST only; nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from cmfleet.checks.base import CheckContext
from cmfleet.discovery import Registration, Unit
from cmfleet.discovery import registrations as app_registrations

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def registrations(unit: Unit, ctx: CheckContext) -> list[Registration]:
    """Every endpoint registration in ``app.py``, duplicates included, in source order (discovery's reading)."""
    if not unit.app.exists():
        return []
    return sorted(app_registrations(ctx.ast_of(unit.app)), key=lambda r: r.line)


def def_line_at(unit: Unit, ctx: CheckContext, line: int) -> int:
    """The ``def`` line of the function whose decorators or signature span ``line`` (else ``line``)."""
    if not unit.app.exists():
        return line
    for node in ast.walk(ctx.ast_of(unit.app)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            body_start = node.body[0].lineno if node.body else node.lineno
            if first <= line < body_start or line == node.lineno:
                return node.lineno
    return line


def classes_of(unit: Unit, ctx: CheckContext) -> dict[str, ast.ClassDef]:
    """Top-level classes of ``app.py`` by name (dataclasses, TypedDicts, plain classes)."""
    if not unit.app.exists():
        return {}
    return {n.name: n for n in ctx.ast_of(unit.app).body if isinstance(n, ast.ClassDef)}


def _name_of(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _parse_string(node: ast.expr) -> ast.expr:
    """A string (forward-reference) annotation parsed into an expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return node
    return node


def names_in(annotation: ast.expr, classes: dict[str, ast.ClassDef], seen: set[str] | None = None) -> Iterator[str]:
    """Every type name used by ``annotation``, following the fields of classes defined in ``app.py``."""
    seen = set() if seen is None else seen
    for node in ast.walk(_parse_string(annotation)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield from names_in(node, classes, seen)
            continue
        name = _name_of(node)
        if not name:
            continue
        yield name
        cls = classes.get(name)
        if cls is not None and name not in seen:
            seen.add(name)
            for stmt in cls.body:
                if isinstance(stmt, ast.AnnAssign):
                    yield from names_in(stmt.annotation, classes, seen)


def unwrap_optional(annotation: ast.expr) -> ast.expr:
    """``X`` for ``Optional[X]`` or ``X | None``; otherwise the annotation itself."""
    node = _parse_string(annotation)
    if isinstance(node, ast.Subscript) and _name_of(node.value) == "Optional":
        return node.slice
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        for side, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(other, ast.Constant) and other.value is None:
                return side
    return node


def head_of(annotation: ast.expr) -> str:
    """The outermost type name: ``Iterable`` for ``Iterable[int]``, ``dict`` for ``dict``."""
    node = unwrap_optional(annotation)
    if isinstance(node, ast.Subscript):
        return _name_of(node.value)
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    return _name_of(node)


def item_type(annotation: ast.expr) -> ast.expr | None:
    """``T`` for ``Iterable[T]``, ``Generator[T, ...]``, ``list[T]``; ``None`` when not parameterised."""
    node = unwrap_optional(annotation)
    if not isinstance(node, ast.Subscript):
        return None
    return node.slice.elts[0] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice


def yields(node: FunctionNode) -> bool:
    """Whether the function's own body (not nested functions) contains ``yield``: it is a generator."""
    stack: list[ast.AST] = list(node.body)
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(current))
    return False


def is_typed_dict(cls: ast.ClassDef) -> bool:
    """Whether a class derives from ``TypedDict`` (its instances are plain dicts)."""
    return any(_name_of(base) == "TypedDict" for base in cls.bases)
