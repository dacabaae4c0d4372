"""Moved to :mod:`cmfleet.repo.affected`; this re-export keeps older imports working."""

from cmfleet.repo.affected import (
    DEFAULT_REPOSITORY_WIDE,
    AffectedConfig,
    AffectedResult,
    AffectedUnit,
    affected,
    collect_changes,
    glob_regex,
    matches,
    owner,
)

__all__ = [
    "DEFAULT_REPOSITORY_WIDE",
    "AffectedConfig",
    "AffectedResult",
    "AffectedUnit",
    "affected",
    "collect_changes",
    "glob_regex",
    "matches",
    "owner",
]
