"""Conventional commits: parse a message, decide the bump it asks for.

Rules (https://www.conventionalcommits.org): ``type(scope)!: description``; ``!`` after the type/scope or a
``BREAKING CHANGE:`` / ``BREAKING-CHANGE:`` footer is a breaking change (major); ``feat`` is minor; ``fix``,
``perf`` and ``revert`` are patch; ``build``, ``chore``, ``ci``, ``docs``, ``refactor``, ``style`` and ``test``
ask for no release. A message that is not a conventional commit still changed the unit, so it counts as a
patch (listed under "Other changes"), rather than being silently dropped.

0.x rules: while a unit's major version is 0, a breaking change bumps the minor version (0.3.1 -> 0.4.0), a
``feat`` the minor version too and a ``fix`` the patch; going to 1.0.0 is an explicit ``--bump major``. Changes
are labelled by what they are, not by the version step: a ``feat`` is never "breaking", at 0.x or later, so a
dependent of a library whose 0.x minor release holds only features and fixes gets a patch release (a minor one
when the library's release holds a breaking change or was a 0.x minor step chosen by hand).

A revert of a release commit (``git revert`` of ``release: ...``) asks for no release: the tags stay, so the
versions it released still count; the next release's changelog notes the revert.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cmfleet.release.versions import Version
from cmfleet.repo.git import LogEntry

_HEADER_RE = re.compile(r"^(?P<type>[A-Za-z][\w-]*)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?:\s+(?P<desc>\S.*)$")
_BREAKING_RE = re.compile(r"^BREAKING[ -]CHANGE:\s*(?P<text>.*)$", re.MULTILINE)

MINOR_TYPES = frozenset({"feat"})
PATCH_TYPES = frozenset({"fix", "perf", "revert"})
#: The type given to ``Revert "release: ..."`` commits (git revert of a release commit).
REVERTED_RELEASE = "release-revert"
NO_RELEASE_TYPES = frozenset({"build", "chore", "ci", "docs", "refactor", "style", "test", "release", REVERTED_RELEASE})
_REVERT_RELEASE_RE = re.compile(r'^Revert "release: .*"$')
_REVERTS_RE = re.compile(r"This reverts commit ([0-9a-f]{7,40})")
_RANK = {None: 0, "patch": 1, "minor": 2, "major": 3}

#: Changelog headings, in the order they are written.
SECTIONS = (
    ("breaking", "Breaking changes"),
    ("feat", "Features"),
    ("fix", "Fixes"),
    ("other", "Other changes"),
)


@dataclass(frozen=True)
class Commit:
    """A commit read as a conventional commit."""

    sha: str
    type: str | None  # None: not a conventional commit
    scope: str | None
    description: str
    breaking: bool
    breaking_note: str = ""
    reverts: str | None = None  # the sha a revert of a release commit reverts

    @property
    def level(self) -> str | None:
        """The bump this commit asks for: major, minor, patch or None."""
        if self.breaking:
            return "major"
        if self.type is None:
            return "patch"
        if self.type in MINOR_TYPES:
            return "minor"
        if self.type in PATCH_TYPES:
            return "patch"
        if self.type in NO_RELEASE_TYPES:
            return None
        return "patch"  # an unknown type: treat like a change worth a patch

    @property
    def section(self) -> str | None:
        """The changelog section this commit belongs to (None: not listed)."""
        if self.breaking:
            return "breaking"
        if self.type == "feat":
            return "feat"
        if self.type in ("fix", "perf", "revert"):
            return "fix"
        if self.type in NO_RELEASE_TYPES:
            return None
        return "other"


def parse_commit(entry: LogEntry) -> Commit:
    """Read one commit's message."""
    if _REVERT_RELEASE_RE.match(entry.subject):
        reverted = _REVERTS_RE.search(entry.body or "")
        return Commit(entry.sha, REVERTED_RELEASE, None, entry.subject, False, "", reverted and reverted.group(1)[:7])
    header = _HEADER_RE.match(entry.subject)
    footer = _BREAKING_RE.search(entry.body or "")
    note = footer.group("text").strip() if footer else ""
    if header is None:
        return Commit(entry.sha, None, None, entry.subject, bool(footer), note)
    return Commit(
        entry.sha,
        header.group("type").lower(),
        header.group("scope") or None,
        header.group("desc").strip(),
        bool(header.group("bang")) or bool(footer),
        note,
    )


def highest(levels: Iterable[str | None]) -> str | None:
    """The strongest of several bump levels (major > minor > patch > None)."""
    best: str | None = None
    for level in levels:
        if _RANK[level] > _RANK[best]:
            best = level
    return best


def effective_level(level: str | None, current: Version, *, explicit: bool = False) -> str | None:
    """Apply the 0.x rule to an automatic level: before 1.0.0 a breaking change bumps the minor version."""
    if not explicit and level == "major" and current.major == 0:
        return "minor"
    return level
