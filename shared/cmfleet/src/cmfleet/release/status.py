"""``cmfleet status``: per unit, the last (final) release and the pre-release waiting for its final release, what
changed since, its shared libraries and whether it needs a release."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from cmfleet.release.planner import ReleaseSettings, analyze, untagged_releases
from cmfleet.release.versions import TagFormat, check_tags_available, current_version, last_final, unit_releases
from cmfleet.repo.git import Git, reading

if TYPE_CHECKING:
    from cmfleet.discovery import Repository


def repository_status(repo: Repository, names: list[str] | None = None, git: Git | None = None) -> list[dict[str, Any]]:
    """One row per unit (all units, or ``names``): release state and why it needs a release, if it does.

    ``last_release`` is the last final release; ``pre_release`` the newest pre-release since it (None when every
    pre-release has had its final release); a shared library's ``released`` is its last final release.
    ``version`` is what hatch-vcs says (an editable install's version: a dev version after any commit), while
    ``builds_as`` is the version ``cmfleet build`` gives the unit's artifacts: its newest tag's while nothing the
    artifact is made of changed since, else None (a dev build, ``cmfleet build --dev``)."""
    from cmfleet.artifacts.versions import library_changes, unit_version

    git = git or Git(repo.root)
    git.ensure_repo()
    check_tags_available(git)
    # a rebase or merge stopped on a conflict: the rows describe HEAD, not what the operation will leave
    busy = git.in_progress()
    fmt = TagFormat.of(repo)
    settings = ReleaseSettings.of(repo)
    from cmfleet.release.rename import unit_for_old_name

    # a former name (``cmfleet rename``) answers for the unit it became; names of one unit give one row, in the
    # place of the first
    named = [repo.get(n) if n in repo.units else (unit_for_old_name(repo, n) or repo.get(n)) for n in names or []]
    units = list({u.name: u for u in named}.values()) or list(repo.units.values())
    last_of: dict[str, str | None] = {}

    def last_version(name: str) -> str | None:
        if name not in last_of:
            last = last_final(unit_releases(git, fmt, name))
            last_of[name] = str(last.version) if last else None
        return last_of[name]

    def row(unit: Any) -> dict[str, Any]:
        a = analyze(repo, git, unit, fmt, settings)
        # a unit with a static [project].version builds as that version: untagged is not "needs a release" for it
        static = "version" in unit.project and "version" not in unit.project.get("dynamic", [])
        untagged = a.last is None and not static
        needs = a.level is not None or untagged
        why = (["never released"] if untagged else []) + a.reasons
        if not needs and a.last is not None:
            # nothing of its own changed, but a library its build holds did: `cmfleet build` refuses it too
            stale = library_changes(repo, unit)
            current = (
                f"nothing since {a.last.tag} as of HEAD, but {busy.describe()}"
                if busy
                else f"up to date with {a.last.tag}"
            )
            needs, why = (True, [stale]) if stale else (False, why or [current])
        elif not needs:
            why = why or [f"builds as its static version {unit.project['version']}"]
        unmarked = untagged_releases(repo, git, unit, fmt)
        if unmarked:  # merged without its trailers: tag it before anything else
            versions = ", ".join(str(u.version) for u in unmarked)
            why = [f"untagged release {versions} in its CHANGELOG.md: tag it first (see below)", *why]
        return {
            "name": unit.name,
            "kind": unit.kind,
            "last_release": str(a.last.version) if a.last else None,
            "tag": a.last.tag if a.last else None,
            "pre_release": str(a.pending.version) if a.pending else None,
            "pre_tag": a.pending.tag if a.pending else None,
            "version": current_version(repo, unit, git),
            "builds_as": unit_version(repo, unit).expected,
            "commits_since": len(a.commits),
            "shared": [{"name": lib.name, "released": last_version(lib.name)} for lib in repo.closure(unit)],
            "needs_release": needs,
            "next_level": a.level,
            "why": why,
            "untagged_releases": [u.as_json() for u in unmarked],
        }

    # Each unit's questions to git are separate processes: ask them for several units at once, and each distinct
    # question once (a library's tags, the tree's state, HEAD), however many units ask it.
    with reading(), ThreadPoolExecutor(8) as pool:
        return list(pool.map(row, units))
