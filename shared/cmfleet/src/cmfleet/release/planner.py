"""Release planning and applying: next versions, changelog sections, one commit, annotated tags.

Everything is decided and checked first (:func:`plan_release`); only a plan that passed every check is written
(:func:`apply_plan`), files through temp-file-and-rename, so a refusal leaves the tree untouched.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmfleet.release.changelog import insert_section, render_section
from cmfleet.release.conventional import Commit, effective_level, highest, parse_commit
from cmfleet.release.git import Git, GitError
from cmfleet.release.pins import FileEdit
from cmfleet.release.versions import (
    BUMP_LEVELS,
    ZERO,
    Release,
    TagFormat,
    Version,
    VersionError,
    check_tags_available,
    unit_releases,
    version_config_problems,
)

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
    return paths


@dataclass
class DependencyRelease:
    """A shared library released since the dependent's last release (or in this same release)."""

    name: str
    version: str
    breaking: bool
    planned: bool  # released by this very plan

    def describe(self) -> str:
        when = "in this release" if self.planned else "since the last release"
        return f"{self.name} {self.version}{' (breaking)' if self.breaking else ''} released {when}"


@dataclass
class Analysis:
    """What happened to a unit since its last release, and the bump it asks for."""

    unit: Unit
    last: Release | None
    commits: list[Commit]
    dependencies: list[DependencyRelease]
    level: str | None
    reasons: list[str]

    @property
    def current(self) -> Version:
        return self.last.version if self.last else ZERO


def analyze(
    repo: Repository,
    git: Git,
    unit: Unit,
    fmt: TagFormat,
    settings: ReleaseSettings,
    planned: dict[str, UnitPlan] | None = None,
) -> Analysis:
    """Commits touching ``unit`` since its last tag, dependency releases since then, and the automatic level."""
    planned = planned or {}
    releases = unit_releases(git, fmt, unit.name)
    last = releases[-1] if releases else None
    rev_range = f"{last.tag}..HEAD" if last else "HEAD"
    commits = [parse_commit(e) for e in git.log(rev_range, unit_paths(unit))]
    deps: list[DependencyRelease] = []
    for lib in repo.closure(unit):
        if lib.name in planned:
            plan = planned[lib.name]
            deps.append(DependencyRelease(lib.name, str(plan.next), plan.breaking, True))
            continue
        args = ["tag", "--list", "--merged", "HEAD"]
        if last:
            args += ["--no-merged", last.tag]
        newer = [fmt.parse(lib.name, t) for t in git.run(*args, fmt.glob(lib.name)).splitlines() if t]
        if newer:
            before = [fmt.parse(lib.name, t) for t in git.tags(fmt.glob(lib.name), merged=last.tag)] if last else []
            newest = max(newer)
            breaking = bool(before) and is_breaking_step(max(before), newest)
            deps.append(DependencyRelease(lib.name, str(newest), breaking, False))
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
    level = effective_level(highest([commit_level, dep_level]), last.version if last else ZERO)
    if commits and commit_level is None and not deps:
        reasons.append("no commit asks for a release (only " + ", ".join(sorted({c.type or "" for c in commits})) + ")")
    return Analysis(unit, last, commits, deps, level, reasons)


def is_breaking_step(old: Version, new: Version) -> bool:
    """Whether going from ``old`` to ``new`` is a breaking release (major; minor while at 0.x)."""
    if new.major != old.major:
        return True
    return old.major == 0 and new.minor != old.minor


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
    def breaking(self) -> bool:
        """Whether this release breaks dependents (major, or minor while at 0.x); a first release never does."""
        last = self.analysis.last
        return last is not None and is_breaking_step(last.version, self.next)

    def as_json(self) -> dict[str, Any]:
        last = self.analysis.last
        return {
            "unit": self.unit.name,
            "kind": self.unit.kind,
            "from": str(last.version) if last else None,
            "to": str(self.next),
            "level": self.level,
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

    @property
    def tags(self) -> list[str]:
        return [p.tag for p in self.units]

    @property
    def message(self) -> str:
        """The commit message of the release commit."""
        head = "release: " + ", ".join(f"{p.unit.name} {p.next}" for p in self.units)
        body = [
            f"- {p.tag} ({p.level}{': ' + '; '.join(p.analysis.reasons) if p.analysis.reasons else ''})"
            for p in self.units
        ]
        body += [f"- {e.path.relative_to(self.root).as_posix()}: {e.summary}" for e in self.edits]
        return head + "\n\n" + "\n".join(body) + "\n"

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
            out.append(f"  {p.unit.name:<{width}}  {last} -> {p.next}  [{p.level}]  tag {p.tag}  ({why})")
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
            "commit_message": self.message,
            "tags": self.tags,
            **self.extra,
        }


def preflight(repo: Repository, git: Git) -> str:
    """Refuse states a release cannot start from; returns the branch name."""
    git.ensure_repo()
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
    today: str | None = None,
    dependency_notes: dict[str, list[str]] | None = None,
) -> ReleasePlan:
    """Decide every version, tag and changelog section; raise ReleaseError on anything that forbids the release.

    ``requests`` maps unit names to ``auto``, ``major``, ``minor``, ``patch`` or an explicit ``X.Y.Z``.
    With ``skip_unchanged``, units with nothing worth a release are skipped instead of refused.
    """
    from cmfleet.discovery import UnknownUnitError

    git = git or Git(repo.root)
    for name in requests:
        if name not in repo.units:
            raise ReleaseError(str(UnknownUnitError(name, sorted(repo.units))), code=2)
    try:
        fmt = TagFormat.of(repo)
    except VersionError as exc:
        raise ReleaseError(str(exc), code=2) from None
    settings = ReleaseSettings.of(repo)
    branch = preflight(repo, git)
    units = in_dependency_order(repo, list(requests))

    problems = [p for u in units for p in version_config_problems(u, fmt)]
    if problems:
        raise ReleaseError(
            "a build would not read the released version from the unit's own tags:\n  " + "\n  ".join(problems)
        )
    if run_checks:
        _refuse_failing_checks(repo, units)

    today = today or _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    planned: dict[str, UnitPlan] = {}
    skipped: dict[str, str] = {}
    for unit in units:
        try:
            analysis = analyze(repo, git, unit, fmt, settings, planned)
        except VersionError as exc:
            raise ReleaseError(str(exc), code=2) from None
        request = requests[unit.name]
        level, version, note = _decide(unit, analysis, request, fmt, git)
        if version is None:
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
        dep_lines = [d.describe() for d in analysis.dependencies] + (dependency_notes or {}).get(unit.name, [])
        section = render_section(
            str(version),
            today,
            analysis.commits,
            dep_lines,
            note=None if analysis.commits or analysis.dependencies else f"Released with an explicit `{request}`.",
        )
        path = unit.path / CHANGELOG
        old = path.read_text(encoding="utf-8") if path.exists() else None
        planned[unit.name] = UnitPlan(
            unit, analysis, version, level, tag, path, old, insert_section(old, section), section
        )
    if not planned:
        raise ReleaseError("nothing to release: " + "; ".join(f"{n}: {w}" for n, w in skipped.items()))
    return ReleasePlan(repo.root, branch, list(planned.values()), list(edits or []), skipped)


def _decide(unit: Unit, analysis: Analysis, request: str, fmt: TagFormat, git: Git) -> tuple[str, Version | None, str]:
    """(level, next version or None, why not) for one unit."""
    current = analysis.current
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
        return analysis.level, current.bump(analysis.level), ""
    if request in BUMP_LEVELS:
        return request, current.bump(request), ""
    try:
        version = Version.parse(request)
    except VersionError as exc:
        raise ReleaseError(f"{unit.name}: {exc}", code=2) from None
    every = unit_releases(git, fmt, unit.name, merged=None)
    highest_known = every[-1].version if every else None
    if version <= current or (highest_known is not None and version <= highest_known):
        above = highest_known if highest_known and highest_known > current else current
        raise ReleaseError(
            f"{unit.name}: version {version} is not above the last release {above}; choose a higher version",
            code=2,
        )
    return _level_between(current, version), version, ""


def _level_between(old: Version, new: Version) -> str:
    if new.major != old.major:
        return "major"
    return "minor" if new.minor != old.minor else "patch"


def _refuse_failing_checks(repo: Repository, units: list[Unit]) -> None:
    from cmfleet.checks.base import run_checks

    findings = run_checks(repo, units)
    if findings:
        lines = [f"{f.location(repo.root)}: [{f.rule}] {f.message} (fix: {f.fix})" for f in findings[:20]]
        more = f"\n  ... and {len(findings) - 20} more" if len(findings) > 20 else ""
        names = ", ".join(sorted({f.unit for f in findings}))
        raise ReleaseError(f"`cmfleet check` fails for {names}:\n  " + "\n  ".join(lines) + more)


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


def apply_plan(repo: Repository, plan: ReleasePlan, git: Git | None = None) -> str:
    """Write the files, make the one release commit, create the annotated tags; returns the commit sha.

    If the commit fails (a hook refused it), every file is put back as it was and nothing is tagged.
    """
    git = git or Git(repo.root)
    files = plan.files()
    rel = [f.path.relative_to(repo.root).as_posix() for f in files]
    try:
        for f in files:
            _write_atomic(f.path, f.new)
        git.run("add", "--", *rel)
        git.run("commit", "-q", "-m", plan.message, "--", *rel)
    except GitError:
        for f in files:
            if f.old is None:
                f.path.unlink(missing_ok=True)
            else:
                _write_atomic(f.path, f.old)
        git.run("reset", "-q", "--", *rel, check=False)
        raise
    sha = git.head()
    for p in plan.units:
        git.run("tag", "-a", p.tag, "-m", f"{p.unit.name} {p.next}", sha)
    return sha
