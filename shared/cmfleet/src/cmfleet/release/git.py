"""Moved to :mod:`cmfleet.repo.git`; this re-export keeps older imports working."""

from cmfleet.repo.git import Change, Git, GitError, LogEntry, _parse_name_status  # noqa: F401

__all__ = ["Change", "Git", "GitError", "LogEntry"]
