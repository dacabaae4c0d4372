"""``cmfleet check``: rules registered through the ``cmfleet_register_checks`` hook."""

from cmfleet.checks.base import CheckContext, Finding, run_checks

__all__ = ["CheckContext", "Finding", "run_checks"]
