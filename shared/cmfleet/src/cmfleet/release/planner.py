"""Release planning and applying: next versions, changelog sections, one commit, annotated tags.

Everything is decided and checked first (:func:`plan_release`); only a plan that passed every check is written
(:func:`apply_plan`), files through temp-file-and-rename, so a refusal leaves the tree untouched.

Pre-releases (``pre="rc"``, also ``a`` and ``b``): the next version is computed as for a final release, from the
commits since the last *final* release, and becomes ``X.Y.Z<label>N``, N one above the highest ``<label>`` of the
same ``X.Y.Z`` (1 for a new target). An automatic release never goes below the target of a pre-release still
waiting for its final release (one made with an explicit ``--bump`` stays the target), and a release without
``pre`` finalises it. A pre-release's changelog section lists what is new since the previous pre-release; the
final release's section lists every change since the last final release.
"""

from __future__ import annotations

import datetime as _dt
import os
import shlex
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmfleet.recipes import BUILD_CONFIG
from cmfleet.release.changelog import insert_section, recorded_versions, render_section
from cmfleet.release.conventional import REVERTED_RELEASE, Commit, effective_level, highest, parse_commit
from cmfleet.release.pins import PIN_FORMAT, FileEdit, pin_edits
from cmfleet.release.tagging import named_tags, render_trailers
from cmfleet.release.versions import (
    BUMP_LEVELS,
    ZERO,
    Release,
    TagFormat,
    Version,
    VersionError,
    check_pre_label,
    check_tags_available,
    last_final,
    pre_releases_since,
    unit_releases,
    version_config_problems,
)
from cmfleet.repo.git import Git
from cmfleet.repo.interrupt import Interrupted, signals_held, signals_raise

if TYPE_CHECKING:
    from cmfleet.discovery import Repository, Unit

CHANGELOG = "CHANGELOG.md"


class ReleaseError(Exception):
    """A release refused before anything was written; the message says why and how to fix it.

    ``code`` is the CLI exit code: 1 for a refused state (dirty tree, failing checks...), 2 for bad input.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ReleaseSettings:
    """``[tool.cmfleet.release]``: how a dependency's release moves its dependents."""

    dependency_bump: str = "patch"
    dependency_breaking_bump: str = "minor"

    @classmethod
    def of(cls, repo: Repository) -> ReleaseSettings:
        raw = repo.config.get("release", {}) or {}
        settings = cls(raw.get("dependency-bump", "patch"), raw.get("dependency-breaking-bump", "minor"))
        for key, value in (
            ("dependency-bump", settings.dependency_bump),
            ("dependency-breaking-bump", settings.dependency_breaking_bump),
        ):
            if value not in BUMP_LEVELS:
                raise ReleaseError(
                    f"{repo.root / 'pyproject.toml'}: [tool.cmfleet.release] {key} = {value!r}; "
                    f"use one of {', '.join(BUMP_LEVELS)}"
                )
        return settings


def unit_paths(unit: Unit) -> list[str]:
    """The repository paths whose commits belong to ``unit``."""
    from cmfleet.discovery import RECIPES_DIR

    paths = [unit.rel]
    if not unit.is_module:
        paths.append(f"{RECIPES_DIR}/{unit.name}")
    for old in unit.renamed_from:  # commits made under a former name still belong to the unit
        paths.append(f"{unit.path.parent.name}/{old}")
        if not unit.is_module:
            paths.append(f"{RECIPES_DIR}/{old}")
    return paths


@dataclass
class DependencyRelease:
    """A shared library released since the dependent's last release (or in this same release), with the
    library's changes that reach the dependent (the library's commits between the two versions)."""

    name: str
    version: str
    breaking: bool
    planned: bool  # released by this very plan
    commits: list[Commit] = field(default_factory=list)

    def describe(self) -> str:
        when = "in this release" if self.planned else "since the last release"
        return f"{self.name} {self.version}{' (breaking)' if self.breaking else ''} released {when}"

    def changelog_entry(self) -> str:
        """The dependent's changelog line, the library's own entries below it (what reached the dependent)."""
        lines = [self.describe()]
        for c in self.commits:
            if c.section is None:
                continue
            scope = f"**{c.scope}:** " if c.scope else ""
            mark = "breaking: " if c.breaking else ""
            lines.append(f"  - {mark}{scope}{c.description} ({c.sha[:7]})")
        return "\n".join(lines)


def is_breaking_release(old: Version | None, new: Version, commits: list[Commit], explicit: bool = False) -> bool:
    """Whether a library release breaks its dependents, by what it is: a breaking commit, or a version step that
    only a breaking change explains (a major step; at 0.x a minor step no ``feat`` asked for, i.e. one chosen by
    hand). A ``feat`` is never breaking, at 0.x or later; a first release never is."""
    if old is None:
        return False
    if any(c.breaking for c in commits):
        return True
    if new.major != old.major:
        return True
    minor_step = old.major == 0 and new.minor != old.minor
    return minor_step and (explicit or not any(c.level == "minor" for c in commits))


@dataclass
class Analysis:
    """What happened to a unit since its last final release, and the bump it asks for.

    ``pres`` are the pre-releases since that final release (reachable from HEAD, lowest first); ``new_commits``
    and ``new_dependencies`` what came after the newest of them (the same as ``commits`` and ``dependencies``
    when there is none)."""

    unit: Unit
    last: Release | None
    commits: list[Commit]
    dependencies: list[DependencyRelease]
    level: str | None
    reasons: list[str]
    pres: list[Release] = field(default_factory=list)
    new_commits: list[Commit] = field(default_factory=list)
    new_dependencies: list[DependencyRelease] = field(default_factory=list)
    reverted: list[Commit] = field(default_factory=list)  # reverts of release commits: no release, a note

    @property
    def current(self) -> Version:
        """The last final release's version (0.0.0 for a unit never released): the base of every bump."""
        return self.last.version if self.last else ZERO

    @property
    def pending(self) -> Release | None:
        """The newest pre-release not followed by a final release yet."""
        return self.pres[-1] if self.pres else None


def analyze(
    repo: Repository,
    git: Git,
    unit: Unit,
    fmt: TagFormat,
    settings: ReleaseSettings,
    planned: dict[str, UnitPlan] | None = None,
) -> Analysis:
    """Commits touching ``unit`` since its last final release, dependency releases since then, and the automatic
    level (pre-release tags are never the base: see :class:`Analysis`)."""
    planned = planned or {}
    releases = unit_releases(git, fmt, unit.name, aliases=unit.renamed_from)
    last = last_final(releases)
    pres = pre_releases_since(releases, last)
    # the release commits of the pre-releases (their changelog sections) are no change to release
    skip = {git.tag_commit(r.tag) for r in pres}
    commits = _commits_since(git, unit, last, skip)
    deps = _dependency_releases(repo, git, unit, fmt, last, planned)
    new_commits, new_deps = commits, deps
    if pres:
        new_commits = _commits_since(git, unit, pres[-1], skip)
        new_deps = _dependency_releases(repo, git, unit, fmt, pres[-1], planned)
    reasons: list[str] = []
    commit_level = highest(c.level for c in commits)
    if commits:
        kinds = sorted({c.type or "other" for c in commits})
        reasons.append(
            f"{len(commits)} commit(s) since {last.tag if last else 'the first commit'} ({', '.join(kinds)})"
        )
    dep_level = None
    if deps:
        dep_level = highest(settings.dependency_breaking_bump if d.breaking else settings.dependency_bump for d in deps)
        reasons += [d.describe() for d in deps]
    current = last.version if last else ZERO
    level = effective_level(highest([commit_level, dep_level]), current)
    if pres:
        # a pre-release waiting for its final release asks for that release, at least
        level = highest([level, _level_between(current, pres[-1].version)])
        reasons.append(f"pre-release {pres[-1].version} ({pres[-1].tag}) is not final yet")
    elif commits and commit_level is None and not deps:
        reasons.append("no commit asks for a release (only " + ", ".join(sorted({c.type or "" for c in commits})) + ")")
    if last is not None and fmt.version_text(unit.name, last.tag) is None:
        # renamed (``cmfleet rename``): builds read only the unit's own tags, so the new name needs one
        level = highest([level, "patch"])
        reasons.append(f"renamed: its last release {last.tag} is tagged under a former name")
    reverted = [c for c in commits if c.type == REVERTED_RELEASE]
    if reverted:
        reasons.append(f"{len(reverted)} release commit(s) reverted: no release for that, the tags stay")
    return Analysis(unit, last, commits, deps, level, reasons, pres, new_commits, new_deps, reverted)


def _commits_since(git: Git, unit: Unit, since: Release | None, skip: set[str]) -> list[Commit]:
    """The commits touching ``unit`` after the release ``since`` (every one without it), newest first, but the
    ``release:`` commits in ``skip`` (a tag put by hand on another commit keeps that commit)."""
    commits = [parse_commit(e) for e in git.log(f"{since.tag}..HEAD" if since else "HEAD", unit_paths(unit))]
    return [c for c in commits if not (c.sha in skip and c.type == "release")]


def _dependency_releases(
    repo: Repository, git: Git, unit: Unit, fmt: TagFormat, since: Release | None, planned: dict[str, UnitPlan]
) -> list[DependencyRelease]:
    """The shared libraries of ``unit`` released in this plan, or finally released after ``since`` (a library's
    pre-release is no dependency release: dependents move with its final release)."""
    deps: list[DependencyRelease] = []
    for lib in repo.closure(unit):
        if lib.name in planned:
            plan = planned[lib.name]
            entries = [c for c in plan.analysis.commits if c.section is not None]
            deps.append(DependencyRelease(lib.name, str(plan.next), plan.breaking, True, entries))
            continue
        glob = fmt.glob(lib.name)
        reached = git.tags(glob)  # reachable from HEAD, and not from the release ``since`` (git tag --no-merged)
        if since:
            before_since = set(git.tags(glob, merged=since.tag))
            reached = [t for t in reached if t not in before_since]
        newer = _tag_versions(fmt, lib.name, reached)
        if newer:
            before = _tag_versions(fmt, lib.name, git.tags(fmt.glob(lib.name), merged=since.tag)) if since else []
            newest = max(newer)
            old = max(before) if before else None
            span = f"{fmt.tag(lib.name, old)}..{fmt.tag(lib.name, newest)}" if old else fmt.tag(lib.name, newest)
            commits = [parse_commit(e) for e in git.log(span, unit_paths(lib))]
            commits = [c for c in commits if c.type != "release"]
            breaking = is_breaking_release(old, newest, commits)
            entries = [c for c in commits if c.section is not None]
            deps.append(DependencyRelease(lib.name, str(newest), breaking, False, entries))
    return deps


def _tag_versions(fmt: TagFormat, unit: str, tags: list[str]) -> list[Version]:
    """The final versions of ``unit``'s ``tags`` (pre-releases left out)."""
    versions = (fmt.parse(unit, t) for t in tags if t)
    return [v for v in versions if not v.is_pre]


@dataclass
class UntaggedRelease:
    """A version the unit's ``CHANGELOG.md`` has a section for, above every tag of the unit, that no tag has: a
    release merged without its ``Cmfleet-Release`` trailers (a squash merge whose message dropped them), so
    ``cmfleet tag --merged`` cannot know it. ``commit`` is the one that added the section (None if not found)."""

    unit: str
    version: Version
    tag: str
    changelog: str  # the changelog's repository path
    commit: str | None

    @property
    def fix(self) -> str:
        """The command that tags the release where it was merged."""
        target = self.commit or f"$(git log -1 --format=%H -S'## {self.version} ' -- {self.changelog})"
        return f"git tag -a {self.tag} -m {shlex.quote(f'{self.unit} {self.version}')} {target}"

    def describe(self) -> str:
        added = f" (added by {self.commit[:7]})" if self.commit else ""
        return (
            f"{self.changelog} has a section for {self.version}{added} but no tag {self.tag} exists: the release of "
            f"{self.version} seems merged without its Cmfleet-Release trailers"
        )

    def as_json(self) -> dict[str, str | None]:
        return {
            "version": str(self.version),
            "tag": self.tag,
            "commit": self.commit,
            "detail": self.describe(),
            "fix": self.fix,
        }


def untagged_releases(
    repo: Repository, git: Git, unit: Unit, fmt: TagFormat, *, history: bool = False
) -> list[UntaggedRelease]:
    """The versions the unit's changelog records that no tag of the unit has (on any branch, former names
    included) and no release commit in HEAD's history names (``cmfleet tag --merged`` handles those: it tags them,
    or reports them stale or superseded), newest first: only those above its last release in HEAD's history (none
    for a unit never released: its sections may be from before cmfleet), unless ``history`` (all of them)."""
    return _untagged(repo, git, unit, fmt, history)[0]


def _untagged(
    repo: Repository, git: Git, unit: Unit, fmt: TagFormat, history: bool
) -> tuple[list[UntaggedRelease], Version | None]:
    """:func:`untagged_releases`, and the unit's last release in HEAD's history (None for a unit never released)."""
    path = unit.path / CHANGELOG
    if not path.is_file():
        return [], None
    tagged = {r.version for r in unit_releases(git, fmt, unit.name, merged=None, aliases=unit.renamed_from)}
    reached = [r.version for r in unit_releases(git, fmt, unit.name, aliases=unit.renamed_from)]
    top = max(reached, default=None)
    if top is None and not history:
        return [], top
    rel = path.relative_to(repo.root).as_posix()
    found: list[UntaggedRelease] = []
    named: set[str] | None = None
    for text, heading in recorded_versions(path.read_text(encoding="utf-8")):
        try:
            version = Version.parse(text)
        except VersionError:
            continue
        if version in tagged or (top is not None and version <= top and not history):
            continue  # below the last release: a section from before cmfleet, say (costs no git query)
        named = named_tags(git) if named is None else named
        if fmt.tag(unit.name, version) in named:
            continue
        # the newest commit changing how often the heading occurs, while it is there: the one that added it
        added = git.run("log", "-1", "--format=%H", "-S", heading, "HEAD", "--", rel, check=False).strip()
        found.append(UntaggedRelease(unit.name, version, fmt.tag(unit.name, version), rel, added or None))
    return found, top


def _refuse_rewriting_a_release(repo: Repository, git: Git, unit: Unit, fmt: TagFormat, version: Version) -> None:
    """Refuse ``version`` when the changelog records, untagged, that version or a higher one, or any version above
    the unit's last release (a unit released before): the next release must follow that one, once tagged (its
    changelog section would list that release's changes again)."""
    every, top = _untagged(repo, git, unit, fmt, history=True)
    # the versions untagged_releases reports (above the last release) block any version
    blocking = [u for u in every if version <= u.version or (top is not None and u.version > top)]
    if not blocking:
        return
    u = blocking[-1]  # the lowest: the release written again, or the first one a release above would follow
    fixes = "; ".join(b.fix for b in reversed(blocking))
    again = (
        f"releasing {version} would write it again"
        if version == u.version
        else f"releasing {version} would {'go below' if version < u.version else 'list its changes again over'} it"
    )
    raise ReleaseError(
        f"{unit.name}: {u.describe()} (a squash merge whose message dropped them?), and {again}; create the "
        f"missing tag on the commit that merged it, then release again: {fixes}"
    )


@dataclass
class UnitPlan:
    """One unit's part of a release."""

    unit: Unit
    analysis: Analysis
    next: Version
    level: str
    tag: str
    changelog: Path
    changelog_old: str | None
    changelog_new: str
    section: str

    @property
    def kind(self) -> str:
        """The level, and what this release is to the pre-releases (``minor, pre-release after 1.3.0rc1``)."""
        pres = self.analysis.pres
        if self.next.is_pre:
            return self.level + (f", pre-release after {pres[-1].version}" if pres else ", pre-release")
        finalises = pres and self.next == pres[-1].version.final
        return self.level + (f", finalises {pres[-1].version}" if finalises else "")

    explicit: bool = False  # the version or level was asked for, not derived from the commits

    @property
    def breaking(self) -> bool:
        """Whether this release breaks dependents (see :func:`is_breaking_release`)."""
        last = self.analysis.last
        return is_breaking_release(last.version if last else None, self.next, self.analysis.commits, self.explicit)

    def as_json(self) -> dict[str, Any]:
        last = self.analysis.last
        return {
            "unit": self.unit.name,
            "kind": self.unit.kind,
            "from": str(last.version) if last else None,
            "to": str(self.next),
            "level": self.level,
            "pre": self.next.pre[0] if self.next.pre else None,
            "pre_releases": [str(r.version) for r in self.analysis.pres],
            "tag": self.tag,
            "reasons": self.analysis.reasons,
            "changelog": self.changelog.relative_to(self.unit.root).as_posix(),
            "section": self.section,
        }


@dataclass
class ReleasePlan:
    """Everything a release will write: changelog sections, other edits, one commit, tags."""

    root: Path
    branch: str
    units: list[UnitPlan]
    edits: list[FileEdit] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # more JSON fields (bump-shared: the dependents)
    base: str | None = None  # the commit the release was planned on (named in the commit's trailers)
    pinned: list[str] = field(default_factory=list)  # units whose pins move but which are not released

    @property
    def tags(self) -> list[str]:
        return [p.tag for p in self.units]

    @property
    def message(self) -> str:
        """The commit message of the release commit."""
        head = "release: " + ", ".join(f"{p.unit.name} {p.next}" for p in self.units)
        body = [
            f"- {p.tag} ({p.kind}{': ' + '; '.join(p.analysis.reasons) if p.analysis.reasons else ''})"
            for p in self.units
        ]
        body += [f"- {e.path.relative_to(self.root).as_posix()}: {e.summary}" for e in self.edits]
        return head + "\n\n" + "\n".join(body) + "\n\n" + render_trailers(self.tags, self.base)

    def files(self) -> list[FileEdit]:
        """Every file the release writes, in order."""
        edits = [
            FileEdit(p.changelog, p.changelog_old, p.changelog_new, f"{p.unit.rel}/{CHANGELOG}") for p in self.units
        ]
        return [*self.edits, *edits]

    def describe(self, dry_run: bool) -> str:
        """A human account of the plan (``--dry-run`` prints exactly this)."""
        out = ["Release plan" + (" (dry run: nothing written)" if dry_run else "") + f", on branch {self.branch}:"]
        width = max((len(p.unit.name) for p in self.units), default=0)
        for p in self.units:
            last = str(p.analysis.last.version) if p.analysis.last else "unreleased"
            why = "; ".join(p.analysis.reasons) or "explicit bump"
            out.append(f"  {p.unit.name:<{width}}  {last} -> {p.next}  [{p.kind}]  tag {p.tag}  ({why})")
        for name, why in self.skipped.items():
            out.append(f"  skipped {name}: {why}")
        out += self.notes
        out.append("")
        out.append("Files:")
        for e in self.edits:
            out.append(f"  {e.path.relative_to(self.root).as_posix()}: {e.summary}")
        for p in self.units:
            state = "new file" if p.changelog_old is None else "new section"
            out.append(f"  {p.changelog.relative_to(self.root).as_posix()} ({state}):")
            out += [f"    {line}" if line else "" for line in p.section.rstrip("\n").splitlines()]
        out.append("")
        out.append("Commit:")
        out += [f"    {line}" if line else "" for line in self.message.rstrip("\n").splitlines()]
        out.append("")
        out.append("Annotated tags: " + ", ".join(self.tags))
        return "\n".join(out)

    def as_json(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "units": [p.as_json() for p in self.units],
            "edits": [{"path": e.path.relative_to(self.root).as_posix(), "summary": e.summary} for e in self.edits],
            "skipped": self.skipped,
            "pinned": self.pinned,
            "commit_message": self.message,
            "tags": self.tags,
            **self.extra,
        }


def untracked_in_units(repo: Repository, git: Git, units: set[str] | None = None) -> list[str]:
    """Untracked, non-ignored files inside units (only ``units`` when given): hatchling would pack them into
    artifacts although no commit holds them."""
    from cmfleet.repo.affected import owner

    return [p for p in git.untracked_paths() if (name := owner(repo, p)) and (units is None or name in units)]


def refuse_in_progress(git: Git, what: str = "a release commit") -> None:
    """Refuse while a rebase, merge, cherry-pick, revert, bisect or ``git am`` is stopped half-way, naming it and
    how to finish or abort it (its detached HEAD or conflicted files are not the problem to fix)."""
    git.ensure_repo()
    found = git.in_progress()
    if found is not None:
        raise ReleaseError(f"{found.describe()}: {what} cannot go on top of it; {found.how}, then try again")


def preflight(repo: Repository, git: Git) -> str:
    """Refuse states a release cannot start from; returns the branch name."""
    refuse_in_progress(git)
    check_tags_available(git)
    branch = git.branch()
    if branch is None:
        raise ReleaseError(
            "HEAD is detached: a release commit must go on a branch; `git switch <branch>` (e.g. main) first"
        )
    dirty = git.dirty_paths()
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise ReleaseError(
            f"the working tree has uncommitted changes ({shown}); commit or stash them, then release again"
        )
    untracked = untracked_in_units(repo, git)
    if untracked:
        raise ReleaseError(
            f"untracked files inside units ({', '.join(untracked)}): the release commit would lack them; "
            "`git add` and commit them, or ignore them in .gitignore, then release again"
        )
    hidden = git.hidden_differences([u.rel for u in repo.units.values()])
    if hidden:
        from cmfleet.artifacts.preflight import hidden_files_message

        # the gate would test these files, the tag would hold the commit's
        raise ReleaseError(
            "files inside units differ from the commit while `git status` shows nothing:\n  "
            + hidden_files_message(hidden)
        )
    return branch


def in_dependency_order(repo: Repository, names: list[str]) -> list[Unit]:
    """The units called ``names``, each after the shared libraries it depends on."""
    wanted = set(names)
    ordered: list[Unit] = []
    seen: set[str] = set()
    for name in names:
        unit = repo.get(name)
        for u in [*repo.closure(unit), unit]:
            if u.name in wanted and u.name not in seen:
                seen.add(u.name)
                ordered.append(u)
    return ordered


def plan_release(
    repo: Repository,
    requests: dict[str, str],
    *,
    git: Git | None = None,
    edits: list[FileEdit] | None = None,
    skip_unchanged: bool = False,
    run_checks: bool = True,
    run_tests: bool = False,
    today: str | None = None,
    dependency_notes: dict[str, list[str]] | None = None,
    pre: str | None = None,
    pin_pre: bool = False,
) -> ReleasePlan:
    """Decide every version, tag, changelog section and pin; raise ReleaseError on anything that forbids the
    release. The one code path behind ``release NAME...``, ``release --affected`` and ``bump-shared``.

    ``requests`` maps unit names to ``auto``, ``major``, ``minor``, ``patch`` or an explicit version (``X.Y.Z``,
    or a pre-release ``X.Y.Z{a|b|rc}N``). ``pre`` (``a``, ``b`` or ``rc``) makes every release a pre-release.
    With ``skip_unchanged``, units with nothing worth a release are skipped instead of refused.

    Pins: a shared library's final release moves its pins (conda_build_config.yaml and every direct dependent's
    pyproject) to ``>=`` that version in the same commit; a pre-release moves them only with ``pin_pre``
    (``bump-shared --pre``). The gate (``run_checks``, ``run_tests``) then runs ``cmfleet check``, the
    unreleased-pin rule and the tox envs of every unit released or whose pins move, before anything is written.
    """
    from cmfleet.discovery import UnknownUnitError

    git = git or Git(repo.root)
    refuse_in_progress(git)
    for name in requests:
        if name not in repo.units:
            raise ReleaseError(str(UnknownUnitError(name, sorted(repo.units))), code=2)
    try:
        if pre is not None:
            check_pre_label(pre)
    except VersionError as exc:
        raise ReleaseError(str(exc), code=2) from None
    explicit = {name: _explicit_version(name, request, pre) for name, request in requests.items()}
    try:
        fmt = TagFormat.of(repo)
    except VersionError as exc:
        raise ReleaseError(str(exc), code=2) from None
    settings = ReleaseSettings.of(repo)
    branch = preflight(repo, git)
    units = in_dependency_order(repo, list(requests))

    problems = []
    for u in units:
        requested = explicit[u.name]
        makes_pre = pre is not None or (requested is not None and requested.is_pre)
        problems += version_config_problems(u, fmt, pre=makes_pre)
    if problems:
        raise ReleaseError(
            "a build would not read the released version from the unit's own tags:\n  " + "\n  ".join(problems)
        )
    today = today or _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    planned: dict[str, UnitPlan] = {}
    pinned_versions: dict[str, str] = {}  # shared library -> the version its pins move to
    skipped: dict[str, str] = {}
    for unit in units:
        try:
            analysis = analyze(repo, git, unit, fmt, settings, planned)
        except VersionError as exc:
            raise ReleaseError(str(exc), code=2) from None
        request = requests[unit.name]
        level, version, note = _decide(unit, analysis, request, explicit[unit.name], pre, fmt, git)
        if version is None:
            if not analysis.commits and analysis.last is not None:
                from cmfleet.artifacts.versions import library_changes

                stale = library_changes(repo, unit)  # the reason `cmfleet build` and `cmfleet status` give
                note = f"{note}; but its build {stale}" if stale else note
            if skip_unchanged:
                skipped[unit.name] = note
                continue
            raise ReleaseError(f"{unit.name}: {note}")
        tag = fmt.tag(unit.name, version)
        if git.tag_exists(tag):
            raise ReleaseError(
                f"{unit.name}: tag {tag} already exists (on {git.tag_commit(tag)[:7]}); choose a higher version, "
                f"or delete the tag if it was a mistake (git tag -d {tag})"
            )
        _refuse_rewriting_a_release(repo, git, unit, fmt, version)
        # a pre-release lists what is new since the previous one; a final release everything since the last final
        commits, deps = (
            (analysis.new_commits, analysis.new_dependencies)
            if version.is_pre
            else (analysis.commits, analysis.dependencies)
        )
        dep_lines = [d.changelog_entry() for d in deps] + (dependency_notes or {}).get(unit.name, [])
        dep_lines += [
            f"requires {lib.distribution}{PIN_FORMAT.format(version=pinned_versions[lib.name])}"
            for lib in repo.shared_deps(unit)
            if lib.name in pinned_versions
        ]
        notes = [_pre_note(analysis, version)] if analysis.pres or version.is_pre else []
        notes += [revert_note(c) for c in analysis.reverted]
        if not commits and not deps and request != "auto":
            notes.append(f"Released with an explicit `{request}`.")
        section = render_section(str(version), today, commits, dep_lines, note=" ".join(notes) or None)
        path = unit.path / CHANGELOG
        old = path.read_text(encoding="utf-8") if path.exists() else None
        planned[unit.name] = UnitPlan(
            unit, analysis, version, level, tag, path, old, insert_section(old, section), section, request != "auto"
        )
        if not unit.is_module and (not version.is_pre or pin_pre):
            pinned_versions[unit.name] = str(version)
    if not planned:
        raise ReleaseError("nothing to release: " + "; ".join(f"{n}: {w}" for n, w in skipped.items()))
    all_edits = pin_edits(repo, pinned_versions, list(edits or []))
    plan = ReleasePlan(repo.root, branch, list(planned.values()), all_edits, skipped, base=git.head())
    plan.pinned = [u.name for u in pinned_units(repo, plan, pinned_versions) if u.name not in planned]
    if plan.pinned:
        plan.notes.append(f"  pins move in (not released): {', '.join(plan.pinned)}")
    if run_checks or run_tests:
        from cmfleet.release import gate

        gated = [p.unit for p in plan.units] + [repo.get(n) for n in plan.pinned]
        if run_checks:
            gate.refuse_failing_checks(repo, gated)
            gate.refuse_unreleased_pins(repo, git, gated, pinned_versions)
        if run_tests:
            gate.refuse_failing_tests(repo, git, gated)
    return plan


def pinned_units(repo: Repository, plan: ReleasePlan, pinned_versions: dict[str, str]) -> list[Unit]:
    """The units whose pins the plan moves: their pyproject is edited, or their recipe reads a moved key."""
    from cmfleet.release.pins import units_using_key

    edited = {e.path for e in plan.edits}
    found = {u.name: u for u in repo.units.values() if u.pyproject in edited}
    if repo.root / BUILD_CONFIG in edited:
        for name in pinned_versions:
            found.update({u.name: u for u in units_using_key(repo, repo.get(name).distribution)})
    return list(found.values())


def revert_note(commit: Commit) -> str:
    """The changelog note of a reverted release commit: its tags stay, so its versions still count."""
    return (
        f"The release commit {commit.reverts or ''} was reverted ({commit.sha[:7]}); its tags stay, so the versions "
        "it released still count and this release follows them."
    ).replace("commit  was", "commit was")


def _explicit_version(name: str, request: str, pre: str | None) -> Version | None:
    """The version an explicit ``request`` names (None for auto and levels), checked against ``pre``."""
    if request == "auto" or request in BUMP_LEVELS:
        return None
    try:
        version = Version.parse(request)
    except VersionError as exc:
        raise ReleaseError(f"{name}: {exc}", code=2) from None
    if pre is not None and (version.pre is None or version.pre[0] != pre):
        example = version.final.with_pre(pre, 1)
        raise ReleaseError(
            f"{name}: --pre {pre} makes a pre-release, but --bump {request} is "
            + ("a final version" if version.pre is None else f"a pre-release of another kind ({version.pre[0]})")
            + f"; give the pre-release itself (--bump {example}) or a level (--bump minor --pre {pre})",
            code=2,
        )
    return version


def _decide(
    unit: Unit,
    analysis: Analysis,
    request: str,
    explicit: Version | None,
    pre: str | None,
    fmt: TagFormat,
    git: Git,
) -> tuple[str, Version | None, str]:
    """(level, next version or None, why not) for one unit."""
    current = analysis.current
    pending = analysis.pending
    if explicit is not None:
        every = unit_releases(git, fmt, unit.name, merged=None, aliases=unit.renamed_from)
        finals = [r.version for r in every if not r.is_pre]
        highest_known = max([current, *finals])
        if explicit <= highest_known:
            raise ReleaseError(
                f"{unit.name}: version {explicit} is not above the last release {highest_known}; "
                "choose a higher version",
                code=2,
            )
        _refuse_below_pre_release(unit, explicit, current, every)
        return _level_between(current, explicit), explicit, ""
    if request == "auto":
        if analysis.level is None:
            since = analysis.last.tag if analysis.last else "the first commit"
            if not analysis.commits:
                return "", None, f"no commits touched {unit.rel} since {since}; nothing to release"
            return (
                "",
                None,
                (
                    f"the {len(analysis.commits)} commit(s) since {since} are all of types that ask for no release "
                    "(chore, docs, test, ...); pass --bump patch to release anyway"
                ),
            )
        target = current.bump(analysis.level)
        if pending is not None and pending.version.final > target:
            target = pending.version.final  # the target of a pending pre-release made with an explicit bump
        if pre is not None and pending is not None and not analysis.new_commits and not analysis.new_dependencies:
            return (
                "",
                None,
                (
                    f"no commits touched {unit.rel} since the pre-release {pending.tag}; nothing new for another "
                    f"pre-release (release without --pre to finalise it as {target}, or pass --bump to force one)"
                ),
            )
    else:
        target = current.bump(request)
    if pre is None:
        return _level_between(current, target), target, ""
    every = unit_releases(git, fmt, unit.name, merged=None, aliases=unit.renamed_from)
    same = [r.version.pre[1] for r in every if r.version.final == target and r.version.pre and r.version.pre[0] == pre]
    version = target.with_pre(pre, max(same, default=0) + 1)
    _refuse_below_pre_release(unit, version, current, every)
    return _level_between(current, target), version, ""


def _refuse_below_pre_release(unit: Unit, version: Version, current: Version, every: list[Release]) -> None:
    """A pre-release must sort above every pre-release made since the last final release (any branch)."""
    if not version.is_pre:
        return
    waiting = [r for r in every if r.is_pre and r.version > current]
    if waiting and version < waiting[-1].version:
        top = waiting[-1]
        raise ReleaseError(
            f"{unit.name}: pre-release {version} is lower than the existing pre-release {top.version} ({top.tag}); "
            f"PEP 440 orders a < b < rc < final: choose a version above {top.version}, or finalise it by "
            "releasing without --pre",
            code=2,
        )


def _pre_note(analysis: Analysis, version: Version) -> str:
    """The changelog note saying how a release relates to the pre-releases since the last final release."""
    since = str(analysis.last.version) if analysis.last else "the first commit"
    if version.is_pre:
        after = f"; changes since {analysis.pending.version}" if analysis.pending else f"; changes since {since}"
        return f"Pre-release of {version.final}{after}."
    names = ", ".join(str(r.version) for r in analysis.pres)
    return f"Final release after the pre-release(s) {names}; every change since {since}."


def _level_between(old: Version, new: Version) -> str:
    """The bump level from ``old`` to ``new`` (pre-release parts ignored)."""
    if new.major != old.major:
        return "major"
    return "minor" if new.minor != old.minor else "patch"


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temp file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ReleaseInterrupted(Interrupted):
    """A signal stopped :func:`apply_plan`: before the release commit existed (``commit`` None: every file and the
    index were put back) or after it (its tags not all created: ``cmfleet tag --merged`` creates them)."""

    def __init__(self, signum: int, commit: str | None, tags: list[str]) -> None:
        self.commit = commit
        self.tags = tags
        name = signal.Signals(signum).name
        if commit is None:
            message = (
                f"the release was interrupted ({name}) before its commit was made; nothing was changed "
                "(every file it wrote and the index are as they were)"
            )
        else:
            message = (
                f"the release was interrupted ({name}) after its commit {commit[:7]}, before all its tags were "
                f"created; create them with `cmfleet tag --merged` (tags: {', '.join(tags)})"
            )
        super().__init__(signum, message)


def apply_plan(repo: Repository, plan: ReleasePlan, git: Git | None = None) -> str:
    """Write the files, make the one release commit, create the annotated tags; returns the commit sha.

    If the commit is not made (a hook refused it, or a signal stopped it: Ctrl-C, SIGTERM, SIGHUP), every file is
    put back as it was, the index too, and nothing is tagged; a signal then raises :class:`ReleaseInterrupted`.
    """
    git = git or Git(repo.root)
    files = plan.files()
    rel = [f.path.relative_to(repo.root).as_posix() for f in files]
    before = git.head()
    with signals_raise():
        try:
            for f in files:
                _write_atomic(f.path, f.new)
            git.run_to_end("add", "--", *rel)
            git.run_to_end("commit", "-q", "-m", plan.message, "--", *rel)
        except BaseException as exc:
            with signals_held():
                sha = git.head()
                if sha == before:  # no release commit: undo every write
                    _put_back(git, files, rel)
            if isinstance(exc, (Interrupted, KeyboardInterrupt)):
                raise ReleaseInterrupted(_signum(exc), None if sha == before else sha, plan.tags) from None
            raise
        sha = git.head()
        try:
            for p in plan.units:
                git.run_to_end("tag", "-a", p.tag, "-m", f"{p.unit.name} {p.next}", sha)
        except (Interrupted, KeyboardInterrupt) as exc:
            raise ReleaseInterrupted(_signum(exc), sha, plan.tags) from None
    return sha


def _signum(exc: Interrupted | KeyboardInterrupt) -> int:
    """The signal that stopped a step (Python's own SIGINT handler raises KeyboardInterrupt)."""
    return exc.signum if isinstance(exc, Interrupted) else signal.SIGINT


def _put_back(git: Git, files: list[FileEdit], rel: list[str]) -> None:
    """The files as they were before :func:`apply_plan`, and their index entries as in HEAD."""
    for f in files:
        if f.old is None:
            f.path.unlink(missing_ok=True)
        else:
            _write_atomic(f.path, f.old)
    git.run("reset", "-q", "--", *rel, check=False)
