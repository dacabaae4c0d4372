"""Release commits that describe their tags, and ``cmfleet tag --merged``: tag what a merged release PR released.

Every release commit carries machine-readable trailers (``git interpret-trailers`` reads them)::

    Cmfleet-Release: hello/v0.2.0
    Cmfleet-Release: textkit/v1.1.0
    Cmfleet-Release-Base: <the commit the release was planned on>

A release PR carries the same lines at the end of its description, so a squash merge that keeps the description
(or the commit message) still describes its tags. After the merge, :func:`plan_merged_tags` walks HEAD's history
for release commits whose tags do not exist yet and tags the commit on the first-parent line that brought each
one in (the merge commit, the squash commit, or the release commit itself after a fast-forward or rebase).

A release is *stale* when a unit it releases (or a shared library in that unit's closure) changed on the target
branch between the release's base and its merge: its version and changelog were decided without that change, so
it is refused, naming the commits, with the commands that re-plan it. A release commit is *superseded* when a
later release commit in the history releases the same unit: that later one is the release, the older one is
never tagged (this is how a refused release is replaced). A release commit whose changes were *reverted* later in
HEAD's history (its changelog section is gone at HEAD, see :func:`_reverted_by`) is not tagged and supersedes
nothing.

A tag that already exists on another commit of HEAD's history that itself names it in its trailers (the same
release merged twice: squash-merged, then its branch merged again) is *done*. Any other existing tag is a
*conflict*. Each tag is decided on its own: a stale or conflicting release is refused (``tag --merged`` exits 1
naming it) but does not keep the other releases' tags from being created, so one refused release PR does not hold
back the ones merged after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cmfleet.release.versions import TagFormat, Version, VersionError
from cmfleet.repo.git import Git

if TYPE_CHECKING:
    from cmfleet.discovery import Repository

RELEASE_TRAILER = "Cmfleet-Release"
BASE_TRAILER = "Cmfleet-Release-Base"
_RELEASE_RE = re.compile(rf"^{RELEASE_TRAILER}:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
_BASE_RE = re.compile(rf"^{BASE_TRAILER}:[ \t]*([0-9a-f]{{40}})[ \t]*$", re.MULTILINE)


def render_trailers(tags: list[str], base: str | None) -> str:
    """The trailer paragraph of a release commit (and of a release PR's description)."""
    lines = [f"{RELEASE_TRAILER}: {t}" for t in tags]
    if base:
        lines.append(f"{BASE_TRAILER}: {base}")
    return "\n".join(lines) + "\n"


def parse_trailers(message: str) -> tuple[list[str], str | None]:
    """``(tags, base)`` named by a commit message; lines are found anywhere, so a squash message that quotes the
    release commit or the PR description still counts."""
    tags = list(dict.fromkeys(_RELEASE_RE.findall(message)))
    base = _BASE_RE.search(message)
    return tags, base.group(1) if base else None


def names_release(git: Git, commit: str, tag: str) -> bool:
    """Whether ``commit`` is a release commit of ``tag``: its message names it in a ``Cmfleet-Release`` trailer (a
    release commit, or a squash commit carrying the PR description). A commit that ``tag --merged`` tagged because
    it merged one is not: only a release commit is ever advised to be dropped."""
    return tag in parse_trailers(git.run("log", "-1", "--format=%B", commit))[0]


def named_tags(git: Git, rev: str = "HEAD") -> set[str]:
    """Every tag a release commit (or a squash commit quoting one) in ``rev``'s history names."""
    out = git.run("log", "-E", f"--grep=^{RELEASE_TRAILER}: ", "--format=%B%x1e", rev)
    return {tag for message in out.split("\x1e") for tag in parse_trailers(message)[0]}


def unit_of_tag(repo: Repository, fmt: TagFormat, tag: str) -> tuple[str, Version] | None:
    """``(unit, version)`` when ``tag`` is one of a known unit's release tags, else None."""
    for name in repo.units:
        text = fmt.version_text(name, tag)
        if text is None:
            continue
        try:
            return name, Version.parse(text)
        except VersionError:
            continue
    return None


@dataclass
class MergedRelease:
    """One release commit found in HEAD's history, and the first-parent commit that brought it in."""

    commit: str  # the release commit (or the squash commit carrying its description)
    target: str  # where its tags go: the first-parent commit that brought it in
    base: str | None
    tags: list[str]
    subject: str


@dataclass
class TagDecision:
    """What ``tag --merged`` does with one tag a release commit names."""

    tag: str
    unit: str | None
    version: str | None
    target: str
    release: MergedRelease
    state: str  # create | done | superseded | reverted | conflict | stale | unknown
    detail: str = ""

    def as_json(self) -> dict[str, str | None]:
        return {
            "tag": self.tag,
            "unit": self.unit,
            "version": self.version,
            "commit": self.target,
            "release_commit": self.release.commit,
            "state": self.state,
            "detail": self.detail,
        }


@dataclass
class TagPlan:
    """Every decision of one ``tag --merged`` run; :attr:`to_create` are created even when :attr:`problems` (refused
    releases, the command then exits 1) is not empty."""

    decisions: list[TagDecision] = field(default_factory=list)

    @property
    def to_create(self) -> list[TagDecision]:
        return [d for d in self.decisions if d.state == "create"]

    @property
    def problems(self) -> list[TagDecision]:
        return [d for d in self.decisions if d.state in ("conflict", "stale")]


def release_commits(git: Git, rev: str = "HEAD") -> list[MergedRelease]:
    """The release commits reachable from ``rev`` (newest first on the first-parent line), each with its target."""
    out = git.run("log", "-E", f"--grep=^{RELEASE_TRAILER}: ", "--format=%H%x1f%s%x1f%B%x1e", rev)
    line = [entry.split() for entry in git.run("log", "--first-parent", "--format=%H %P", rev).splitlines()]
    order = {entry[0]: i for i, entry in enumerate(line)}  # newest first
    # a PR's head -> the merge commit that brought it (the common case, found without a walk)
    merged_head: dict[str, str] = {}
    for entry in reversed(line):
        for parent in entry[2:]:
            merged_head.setdefault(parent, entry[0])
    found = []
    for record in out.split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        sha, subject, body = (record.split("\x1f") + ["", ""])[:3]
        tags, base = parse_trailers(body)
        if not tags:
            continue
        if sha in order:
            target = sha
        elif sha in merged_head:
            target = merged_head[sha]
        else:  # deeper in a merged branch: the oldest first-parent commit descending from it brought it
            walk = git.run("rev-list", "--first-parent", "--ancestry-path", f"{sha}..{rev}").split()
            target = walk[-1] if walk else sha
        found.append(MergedRelease(sha, target, base, tags, subject.strip()))
    found.sort(key=lambda r: (order.get(r.target, len(order)), 0 if r.commit == r.target else 1))
    return found


def _peeled_tags(git: Git) -> dict[str, str]:
    """Every local tag and the commit it points at."""
    out = git.run("for-each-ref", "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)", "refs/tags")
    tags = {}
    for line in out.splitlines():
        name, obj, peeled = (line.split("\0") + ["", ""])[:3]
        tags[name] = peeled or obj
    return tags


def _stale_commits(repo: Repository, git: Git, unit: str, base: str | None, target: str) -> list[str]:
    """Commits that reached the target branch after ``base`` and before the merge, touching ``unit`` or a shared
    library in its closure (``short sha subject`` lines)."""
    from cmfleet.release.planner import unit_paths

    if base is None or not git.ok("cat-file", "-e", f"{base}^{{commit}}"):
        return []  # a release without a known base (made by hand): nothing to compare with
    before_merge = f"{target}^1"  # the branch as it was just before the merge (or the fast-forward)
    if not git.ok("rev-parse", "-q", "--verify", f"{before_merge}^{{commit}}"):
        return []
    u = repo.get(unit)
    paths = [p for lib in [*repo.closure(u), u] for p in unit_paths(lib)]
    out = git.run("log", "--format=%h %s", f"{base}..{before_merge}", "--", *paths)
    return [line for line in out.splitlines() if line]


def _reverted_by(repo: Repository, git: Git, unit: str, version: str, target: str) -> str | None:
    """The commit that reverted the release of ``unit`` ``version`` brought in by ``target``, or None.

    How a revert is recognised: by its effect on the tree, not by its message. Every release commit writes one
    ``## <version> (<date>)`` section into each released unit's CHANGELOG.md (pins move only for shared libraries),
    and any revert of it (``git revert -m 1`` of the merge commit, ``git revert`` of the squash commit or of a
    rebased copy, a revert squashed with other changes, whatever its message) takes that section out again. So the
    release is reverted when the section is in the unit's changelog at ``target`` and not at HEAD; a release made
    by hand without its section is never judged reverted. The reverting commit named is the newest first-parent
    commit after ``target`` whose parent still had the section."""
    path = f"{repo.get(unit).rel}/CHANGELOG.md"
    heading = re.compile(rf"^## {re.escape(version)}(?:[ \t(]|$)", re.MULTILINE)

    def has_section(rev: str) -> bool:
        return bool(heading.search(git.run("show", f"{rev}:{path}", check=False)))

    if not version or has_section("HEAD") or not has_section(target):
        return None
    for commit in git.run("log", "--first-parent", "--format=%H", f"{target}..HEAD", "--", path).split():
        if has_section(f"{commit}^1"):
            return commit
    return git.head()


def plan_merged_tags(repo: Repository, git: Git | None = None) -> TagPlan:
    """Decide, for every tag that a release commit in HEAD's history names, whether to create it (see module doc)."""
    git = git or Git(repo.root)
    git.ensure_repo()
    fmt = TagFormat.of(repo)
    existing = _peeled_tags(git)
    plan = TagPlan()
    later: dict[str, str] = {}  # unit -> the target of the newest release commit releasing it
    decided: set[str] = set()
    releases = release_commits(git)
    carriers: dict[str, set[str]] = {}  # tag -> the commits of HEAD's history whose trailers name it
    for release in releases:
        for tag in release.tags:
            carriers.setdefault(tag, set()).add(release.commit)
    for release in releases:
        for tag in release.tags:
            if tag in decided:  # the same release quoted twice (a merge message repeating the PR description)
                continue
            decided.add(tag)
            parsed = unit_of_tag(repo, fmt, tag)
            unit, version = (parsed[0], str(parsed[1])) if parsed else (None, None)
            decision = TagDecision(tag, unit, version, release.target, release, "create")
            at = existing.get(tag)
            if at is not None and at in (release.target, release.commit):
                decision.state = "done"
            elif at is not None and at in carriers.get(tag, ()):  # the same release, merged twice
                decision.state = "done"
                decision.detail = f"already on {at[:7]}, which carries the same release"
            elif unit is None:
                decision.state, decision.detail = "unknown", "not a tag of any unit of this repository; skipped"
            elif unit in later and later[unit] != release.target:
                decision.state = "superseded"
                decision.detail = f"a later release commit releases {unit}; this one is never tagged"
            elif at is None and (reverter := _reverted_by(repo, git, unit, version or "", release.target)):
                decision.state = "reverted"
                decision.detail = f"reverted by {reverter[:7]}: not tagged"
            elif at is not None:
                decision.state = "conflict"
                decision.detail = f"{tag} already exists on {at[:7]}, not on this release's commit"
            else:
                stale = _stale_commits(repo, git, unit, release.base, release.target)
                if stale:
                    decision.state = "stale"
                    decision.detail = (
                        f"{unit} (or a shared library it uses) changed on the branch after the release was planned "
                        f"on {release.base[:7] if release.base else '?'}: " + "; ".join(stale[:5])
                    )
            plan.decisions.append(decision)
            if unit is not None and decision.state != "reverted":  # a reverted release supersedes nothing
                later.setdefault(unit, release.target)
    return plan


def replan_hint(plan: TagPlan, branch: str, head: str) -> str:
    """The commands that replace refused releases with fresh ones (on a new PR branch named after HEAD)."""
    units = sorted({d.unit for d in plan.problems if d.unit})
    name = "release/" + "-".join(units)[:60] + f"-{head[:7]}"
    return (
        "Re-plan on top of the current branch (the new release supersedes the refused one):\n"
        f"  git switch {branch} && git pull --ff-only\n"
        f"  cmfleet release {' '.join(units)} --pr {name}\n"
        f"  git push -u origin {name}   # open the PR; after it merges, CI runs `cmfleet tag --merged`"
    )


def describe_tags(repo: Repository, git: Git, tags: list[str]) -> list[tuple[str, str, str, str]]:
    """``(tag, unit, version, commit)`` of existing release tags; an unknown or foreign tag raises GitError."""
    from cmfleet.repo.git import GitError

    fmt = TagFormat.of(repo)
    found = []
    for tag in tags:
        parsed = unit_of_tag(repo, fmt, tag)
        if parsed is None:
            raise GitError(f"{tag!r} is not a release tag of a unit here (expected {fmt.tag('<unit>', 'X.Y.Z')})")
        if not git.tag_exists(tag):
            raise GitError(f"tag {tag} does not exist here; fetch it (git fetch --tags)")
        found.append((tag, parsed[0], str(parsed[1]), git.tag_commit(tag)))
    return found


def create_tags(git: Git, plan: TagPlan) -> list[TagDecision]:
    """Create the annotated tags of ``plan`` that it decided to create (its problems create nothing); returns them."""
    created = []
    for d in plan.to_create:
        git.run("tag", "-a", d.tag, "-m", f"{d.unit} {d.version}", d.target)
        created.append(d)
    return created
