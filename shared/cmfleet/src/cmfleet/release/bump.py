"""``cmfleet bump-shared``: release a shared library, move its pin everywhere, and list or release its dependents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cmfleet.repo.git import Git
from cmfleet.release.pins import edit_build_config, edit_pyproject_dependency
from cmfleet.release.planner import ReleaseError, ReleasePlan, plan_release

if TYPE_CHECKING:
    from cmfleet.discovery import Repository

#: The specifier written for a released library: dependents need at least this version (a pre-release when
#: bump-shared made one: ``>=1.3.0rc1`` admits it, as PEP 440 and conda do for a specifier naming a pre-release).
PIN_FORMAT = ">={version}"


@dataclass
class BumpPlan:
    """The lib's release plan (pins included) and the dependents it affects (name -> chain)."""

    plan: ReleasePlan
    lib: str
    version: str
    dependents: dict[str, list[str]]
    released_dependents: bool


def plan_bump_shared(
    repo: Repository,
    lib_name: str,
    request: str = "auto",
    *,
    release_dependents: bool = False,
    git: Git | None = None,
    today: str | None = None,
    pre: str | None = None,
) -> BumpPlan:
    """Plan the library's release, the pin edits, and (optionally) the dependents' releases.

    With ``pre`` every release of the plan is a pre-release and the pins name the library's pre-release;
    without it they name its final release, whatever pre-releases it had."""
    from cmfleet.discovery import UnknownUnitError

    git = git or Git(repo.root)
    lib = repo.units.get(lib_name)
    if lib is None:
        raise ReleaseError(str(UnknownUnitError(lib_name, sorted(u.name for u in repo.shared()), "shared library")), 2)
    if lib.is_module:
        raise ReleaseError(f"{lib_name!r} is a module; bump-shared takes a shared library (shared/<lib>/)", 2)
    first = plan_release(repo, {lib.name: request}, git=git, run_checks=False, today=today, pre=pre)
    version = str(first.units[0].next)
    spec = PIN_FORMAT.format(version=version)
    edits = []
    config_edit = edit_build_config(repo, lib, spec)
    if config_edit is not None:
        edits.append(config_edit)
    for unit in repo.units.values():
        if any(dep.name == lib.name for dep in repo.shared_deps(unit)):
            edit = edit_pyproject_dependency(unit, lib, spec)
            if edit is not None:
                edits.append(edit)
    chains = {n: c for n, c in repo.dependents([lib.name]).items() if n != lib.name}
    requests = {lib.name: request}
    notes: dict[str, list[str]] = {}
    if release_dependents:
        for name in chains:
            requests[name] = "auto"
            notes[name] = [f"requires {lib.distribution}{spec}"]
    plan = plan_release(repo, requests, git=git, edits=edits, today=today, dependency_notes=notes, pre=pre)
    return BumpPlan(plan, lib.name, version, chains, release_dependents)
