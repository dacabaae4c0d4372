"""The ``version-config`` rule: a unit whose version comes from its tags reads them the way releases write them."""

from __future__ import annotations

from collections.abc import Iterator

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.checks.packaging import line_of
from cmfleet.discovery import Unit


def version_config(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """``[tool.hatch.version]`` of a unit with a dynamic version must read the unit's own tags (and, once it was
    renamed, its former names' too): otherwise its builds claim another unit's version, or go back to
    ``0.0.0.devN``. ``cmfleet build`` and ``cmfleet release`` refuse the same problems; reported here first."""
    from cmfleet.release.versions import TagFormat, VersionError, version_config_problems

    try:
        fmt = TagFormat.of(ctx.repo)
    except VersionError:
        return  # a malformed [tool.cmfleet] tag-format: every release and build command names it
    prefix = f"{unit.rel}/pyproject.toml: "
    for problem in version_config_problems(unit, fmt):
        message = problem.removeprefix(prefix)
        setting = "git_describe_command" if "git_describe_command" in message else "tag-pattern"
        line = line_of(unit.pyproject, rf"^\s*{setting}\s*=") if setting in message else 1
        yield Finding(
            unit.pyproject,
            line,
            message,
            "set it as the message says (what `cmfleet new` and `cmfleet rename` write), then commit",
        )
