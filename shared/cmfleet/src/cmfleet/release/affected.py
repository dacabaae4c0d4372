"""Moved to :mod:`cmfleet.repo.affected`; this re-export keeps older imports working."""

from cmfleet.repo.affected import (  # noqa: F401
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
