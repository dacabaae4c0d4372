"""The unit-graph rules as ``cmfleet check`` findings (every other command refuses the same problems, exit 2)."""

from __future__ import annotations

from collections.abc import Iterator

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.discovery import Unit, graph_problems


def unit_graph(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """Folder, project name and tag pattern agree; dependencies name shared libraries; no cycles; test-uses known."""
    if "graph" not in ctx.shared:
        ctx.shared["graph"] = graph_problems(ctx.repo)
    for p in ctx.shared["graph"]:
        if p.unit == unit.name:
            yield Finding(p.file, p.line, p.message, p.fix)
