"""``cmfleet bump-shared``: release a shared library (its pins move with it, as every release of a library moves
them) and list or release its dependents. The same code path as ``cmfleet release``: :func:`plan_release`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cmfleet.release.planner import ReleaseError, ReleasePlan, plan_release
from cmfleet.repo.git import Git

if TYPE_CHECKING:
    from cmfleet.discovery import Repository


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
    run_checks: bool = True,
    run_tests: bool = False,
) -> BumpPlan:
    """Plan the library's release with its pin edits and (optionally) the dependents' releases.

    With ``pre`` every release of the plan is a pre-release and the pins name the library's pre-release;
    without it they name its final release, whatever pre-releases it had."""
    from cmfleet.discovery import UnknownUnitError

    git = git or Git(repo.root)
    lib = repo.units.get(lib_name)
    if lib is None:
        raise ReleaseError(str(UnknownUnitError(lib_name, sorted(u.name for u in repo.shared()), "shared library")), 2)
    if lib.is_module:
        raise ReleaseError(f"{lib_name!r} is a module; bump-shared takes a shared library (shared/<lib>/)", 2)
    chains = {n: c for n, c in repo.dependents([lib.name]).items() if n != lib.name}
    requests = {lib.name: request}
    if release_dependents:
        requests.update(dict.fromkeys(chains, "auto"))
    plan = plan_release(
        repo,
        requests,
        git=git,
        today=today,
        pre=pre,
        pin_pre=pre is not None,
        run_checks=run_checks,
        run_tests=run_tests,
    )
    version = str(next(p.next for p in plan.units if p.unit.name == lib.name))
    return BumpPlan(plan, lib.name, version, chains, release_dependents)
