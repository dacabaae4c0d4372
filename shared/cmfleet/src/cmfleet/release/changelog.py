"""Changelog sections: render one release's section and insert it at the top of a unit's ``CHANGELOG.md``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from cmfleet.release.conventional import SECTIONS, Commit

TITLE = "# Changelog"
INTRO = "All notable changes of this unit, newest first. Written by `cmfleet release`."
# a release's heading: ``## 1.2.0 (2024-05-01)`` as written here; ``## [1.2.0]`` and ``## v1.2.0`` read too
_HEADING_RE = re.compile(r"^##[ \t]+\[?v?(\d[^\s\]]*)")


def render_section(
    version: str,
    date: str,
    commits: Iterable[Commit],
    dependencies: Iterable[str] = (),
    note: str | None = None,
) -> str:
    """The Markdown section of one release (ends with a blank line)."""
    groups: dict[str, list[str]] = {key: [] for key, _ in SECTIONS}
    for commit in commits:
        section = commit.section
        if section is None:
            continue
        scope = f"**{commit.scope}:** " if commit.scope else ""
        line = f"- {scope}{commit.description} ({commit.sha[:7]})"
        if commit.breaking and commit.breaking_note:
            line += f"\n  {commit.breaking_note}"
        groups[section].append(line)
    lines = [f"## {version} ({date})", ""]
    if note:
        lines += [note, ""]
    for key, heading in SECTIONS:
        if groups[key]:
            lines += [f"### {heading}", "", *groups[key], ""]
    deps = list(dependencies)
    if deps:
        lines += ["### Dependencies", "", *(f"- {d}" for d in deps), ""]
    if len(lines) == 2:
        lines += ["No user-facing changes.", ""]
    return "\n".join(lines) + "\n"


def insert_section(existing: str | None, section: str) -> str:
    """``existing`` (or a new changelog) with ``section`` placed above the previous newest release."""
    if not existing or not existing.strip():
        return f"{TITLE}\n\n{INTRO}\n\n{section}"
    lines = existing.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("## "):
            return "".join(lines[:i]) + section + "".join(lines[i:])
    text = existing if existing.endswith("\n") else existing + "\n"
    return f"{text}\n{section}"


def recorded_versions(text: str) -> list[tuple[str, str]]:
    """``(version text, heading line)`` of every release section of a changelog, newest first."""
    found = []
    for line in text.splitlines():
        match = _HEADING_RE.match(line)
        if match:
            found.append((match.group(1), line.rstrip()))
    return found
