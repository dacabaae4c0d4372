"""``cmfleet publish``: push the branch and its release tags in one atomic push, then check the remote holds them.

``git push --atomic`` updates every ref or none: when someone published first (the branch push is rejected), no
tag lands either, so a remote never holds a release tag on a commit that no branch contains. After a push the
remote is read back (``git ls-remote``) and must show the branch at HEAD and every pushed tag as the local one.

The tags' state for ``cmfleet status`` (orphans, unpublished, pending) is in :mod:`cmfleet.release.tag_status`.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cmfleet.release.tagging import names_release, unit_of_tag
from cmfleet.release.versions import TagFormat, Version, VersionError
from cmfleet.repo.git import Git, GitError

if TYPE_CHECKING:
    from cmfleet.discovery import Repository


class PublishError(Exception):
    """A publish refused or rejected; ``code`` is the CLI exit code (1 rejected/refused, 2 bad input)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class RemoteRefs:
    """What ``git ls-remote`` says: branch heads and tags (tag -> (object, commit it points at))."""

    heads: dict[str, str] = field(default_factory=dict)
    tags: dict[str, tuple[str, str]] = field(default_factory=dict)
    remote_name: str = ""


def remote_refs(git: Git, remote: str) -> RemoteRefs:
    """Read the remote's heads and tags with one ``git ls-remote``."""
    try:
        out = git.run("ls-remote", "--heads", "--tags", remote)
    except GitError as exc:
        raise PublishError(f"cannot read the remote {remote!r}: {exc}; check `git remote -v`", code=2) from None
    refs = RemoteRefs(remote_name=remote)
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name.startswith("refs/heads/"):
            refs.heads[name[len("refs/heads/") :]] = sha
        elif name.startswith("refs/tags/"):
            tag = name[len("refs/tags/") :]
            if tag.endswith("^{}"):
                tag = tag[:-3]
                obj = refs.tags.get(tag, (sha, sha))[0]
                refs.tags[tag] = (obj, sha)
            elif tag not in refs.tags:
                refs.tags[tag] = (sha, sha)
            else:
                refs.tags[tag] = (sha, refs.tags[tag][1])
    return refs


def default_remote(git: Git, branch: str | None) -> str:
    """The branch's upstream remote, else ``origin``."""
    if branch:
        configured = git.run("config", "--get", f"branch.{branch}.remote", check=False).strip()
        if configured and configured != ".":
            return configured
    return "origin"


def _target_branch(git: Git, branch: str, remote: str) -> str:
    """The remote branch this branch publishes to: its upstream's when that is on ``remote``, else its own name."""
    if git.run("config", "--get", f"branch.{branch}.remote", check=False).strip() == remote:
        merge = git.run("config", "--get", f"branch.{branch}.merge", check=False).strip()
        if merge.startswith("refs/heads/"):
            return merge[len("refs/heads/") :]
    return branch


@dataclass
class LocalTag:
    name: str
    obj: str  # the tag object (annotated) or the commit (lightweight)
    commit: str


def local_unit_tags(repo: Repository, git: Git) -> dict[str, LocalTag]:
    """Every local tag that is a release tag of a unit of the repository."""
    fmt = TagFormat.of(repo)
    out = git.run("for-each-ref", "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)", "refs/tags")
    tags = {}
    for line in out.splitlines():
        name, obj, peeled = (line.split("\0") + ["", ""])[:3]
        if unit_of_tag(repo, fmt, name) is not None:
            tags[name] = LocalTag(name, obj, peeled or obj)
    return tags


@dataclass
class PublishResult:
    remote: str
    branch: str
    target: str
    commit: str
    tags: list[str]
    pushed: bool

    def as_json(self) -> dict[str, object]:
        return {
            "remote": self.remote,
            "branch": self.branch,
            "remote_branch": self.target,
            "commit": self.commit,
            "tags": self.tags,
            "pushed": self.pushed,
        }


def publish(repo: Repository, remote: str | None = None, git: Git | None = None) -> PublishResult:
    """Push the current branch and the release tags reachable from HEAD that the remote lacks, atomically; then
    verify the remote holds exactly them. Raises PublishError (with the re-plan commands) on a rejection."""
    git = git or Git(repo.root)
    git.ensure_repo()
    branch = git.branch()
    if branch is None:
        raise PublishError("HEAD is detached: publish pushes a branch; `git switch <branch>` first", code=2)
    remote = remote or default_remote(git, branch)
    target = _target_branch(git, branch, remote)
    head = git.head()
    before = remote_refs(git, remote)
    reachable = set(git.run("tag", "--list", "--merged", "HEAD").split())
    ours = local_unit_tags(repo, git)
    tags = []
    for name, tag in sorted(ours.items()):
        if name not in reachable:
            continue
        theirs = before.tags.get(name)
        if theirs is None:
            tags.append(name)
        elif theirs[0] != tag.obj:
            if not names_release(git, tag.commit, name):  # moved or made by hand: fix the tag, drop no commit
                raise PublishError(
                    f"tag {name} on {remote} points at {theirs[1][:7]}, yours at {tag.commit[:7]}, which is not a "
                    f"release commit naming it (the tag was moved or made by hand?). Nothing was pushed.\n"
                    f"Take {remote}'s tag, then publish:\n"
                    f"  git tag -d {name} && git fetch --tags {remote}\n"
                    f"  cmfleet publish {remote}"
                )
            raise PublishError(
                f"tag {name} on {remote} points at {theirs[1][:7]}, yours at {tag.commit[:7]}: someone released "
                f"{name} first. Nothing was pushed.\n" + replan_commands(repo, git, remote, target, [name], ours),
            )
    for name, unit, held, version, at in not_above_held(repo, git, tags, ours, before):
        raise PublishError(
            f"tag {name} is not above {held}, which {at}: a {unit} build after both would be versioned below "
            f"{version}. Someone released {unit} since you planned yours; release again above theirs. Nothing "
            f"was pushed.\n" + replan_commands(repo, git, remote, target, tags, ours)
        )
    if before.heads.get(target) == head and not tags:
        return PublishResult(remote, branch, target, head, [], False)
    refspecs = [f"HEAD:refs/heads/{target}", *(f"refs/tags/{t}:refs/tags/{t}" for t in tags)]
    out, err = _push(git, remote, refspecs)
    after = remote_refs(git, remote)
    ours_there = [t for t in tags if after.tags.get(t, ("", ""))[0] == ours[t].obj]
    if after.heads.get(target) != head or len(ours_there) != len(tags):
        landed = ours_there
        reasons = [line.split("\t")[-1] for line in out.splitlines() if line.startswith("!")]
        if not reasons:  # not a rejection: no network, no access, a server without atomic pushes...
            raise PublishError(f"git push to {remote} failed: {err.strip() or out.strip()}; nothing was published")
        why = "; ".join(dict.fromkeys(reasons))
        state = (
            "Nothing reached it: the push was atomic, so none of your refs landed, no tag either (checked "
            "with git ls-remote)."
            if not landed and after.heads.get(target) != head
            else f"Unexpected: {', '.join(landed) or target} changed on {remote}; inspect `git ls-remote {remote}`."
        )
        their_head = after.heads.get(target)
        raced = (
            any(m in why for m in _RACE_MARKS)
            or their_head != before.heads.get(target)  # it moved while we pushed
            or (their_head is not None and not git.ok("merge-base", "--is-ancestor", their_head, head))
        )
        if not raced:  # a hook or a protection rule: no re-plan helps
            raise PublishError(f"{remote} refused the push of {branch} -> {target} ({why}). {state}")
        raise PublishError(
            f"{remote} rejected the push of {branch} -> {target} ({why}): someone published first, so "
            f"{remote}/{target} has commits you do not have. {state}\n"
            + replan_commands(repo, git, remote, target, tags, ours)
        )
    wrong = [t for t in tags if after.tags[t][0] != ours[t].obj]
    if wrong:
        raise PublishError(f"{remote} holds other objects for {', '.join(wrong)} than yours; inspect git ls-remote")
    return PublishResult(remote, branch, target, head, tags, True)


def not_above_held(
    repo: Repository, git: Git, tags: list[str], ours: dict[str, LocalTag], before: RemoteRefs
) -> list[tuple[str, str, str, Version, str]]:
    """``(tag, unit, higher tag, its version, where it is)`` for each tag to push whose version is not above a release
    of its unit that the remote already holds, or that is in the history of the tag's own commit (another local
    tag): pushed, it would be the newest tag on the branch while a higher release is older, so builds after it
    (``git describe``) would be versioned below that release. Only remote tags on commits in HEAD's history count
    (what the push makes the branch). A unit's former names (``renamed-from``) count."""
    fmt = TagFormat.of(repo)
    found = []
    for name in tags:
        parsed = unit_of_tag(repo, fmt, name)
        if parsed is None:
            continue
        unit, version = parsed
        names = [unit, *repo.get(unit).renamed_from]
        # only the remote's tags on commits in what is pushed: a release on another branch (a maintenance one,
        # say) is no reason to refuse, builds of this branch never describe from it
        held = {
            t: f"{before.remote_name} already holds (on {c[:7]})"
            for t, (_, c) in before.tags.items()
            if any(fmt.version_text(n, t) is not None for n in names)
            and git.ok("merge-base", "--is-ancestor", c, "HEAD")
        }
        for t in git.run("tag", "--list", "--merged", ours[name].commit).split():
            if t != name and t in ours and t not in held:
                held[t] = f"the history of {name} already holds (on {ours[t].commit[:7]})"
        best: tuple[Version, str] | None = None
        for t in held:
            text = next((v for n in names if (v := fmt.version_text(n, t)) is not None), None)
            try:
                other = Version.parse(text) if text is not None else None
            except VersionError:
                other = None
            if other is not None and other >= version and (best is None or other > best[0]):
                best = (other, t)
        if best is not None:
            found.append((name, unit, best[1], best[0], held[best[1]]))
    return found


#: How git reports a push that lost a race (the atomic transaction then fails for every other ref too).
_RACE_MARKS = ("fetch first", "non-fast-forward", "already exists", "stale info", "cannot lock ref")


def _push(git: Git, remote: str, refspecs: list[str]) -> tuple[str, str]:
    """``git push --atomic --porcelain remote refspecs...``: (stdout, stderr); the caller reads the outcome back."""
    proc = subprocess.run(
        ["git", "push", "--atomic", "--porcelain", remote, *refspecs],
        cwd=git.root,
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"},
    )
    return proc.stdout, proc.stderr


def push_tags(git: Git, remote: str, tags: list[str]) -> None:
    """Push ``tags`` to ``remote`` in one atomic push and verify each is there as the local tag object."""
    if not tags:
        return
    refspecs = [f"refs/tags/{t}:refs/tags/{t}" for t in tags]
    out, err = _push(git, remote, refspecs)
    after = remote_refs(git, remote)
    local = {t: git.run("rev-parse", f"refs/tags/{t}").strip() for t in tags}
    wrong = [t for t in tags if after.tags.get(t, ("", ""))[0] != local[t]]
    if wrong:
        reasons = "; ".join(line.split("\t")[-1] for line in out.splitlines() if line.startswith("!")) or err.strip()
        raise PublishError(
            f"{remote} does not hold {', '.join(wrong)} as created here ({reasons}); the push was atomic, so check "
            f"`git ls-remote --tags {remote}` and run `cmfleet tag --merged` again after `git fetch --tags`"
        )


def replan_commands(
    repo: Repository, git: Git, remote: str, target: str, tags: list[str], ours: dict[str, LocalTag]
) -> str:
    """How to re-plan after someone published first: drop the local release (tags and commit), take theirs,
    release again, publish."""
    fmt = TagFormat.of(repo)
    lines = ["Re-plan on top of theirs:"]
    # only a release commit (its trailers name the tag) is dropped; a tag on any other commit was made by hand
    commits = list(dict.fromkeys(ours[t].commit for t in tags if t in ours and names_release(git, ours[t].commit, t)))
    if tags:
        lines.append(f"  git tag -d {' '.join(tags)}   # drop your release's tags")
    head = git.head()
    for commit in commits:
        merges = _merges_after(git, commit, head)
        if commit == head:
            lines.append(f"  git reset --keep HEAD~1   # drop your release commit {commit[:7]} (other commits stay)")
            head = git.resolve("HEAD~1") if git.ok("rev-parse", "-q", "--verify", "HEAD~1") else head
        elif merges:
            # only merges follow it (a `git pull --no-rebase` of theirs): drop them too, the pull below redoes them
            lines.append(
                f"  git reset --keep {commit[:7]}~1   # drop your release commit {commit[:7]} and the {merges} "
                "merge(s) after it (the pull below merges theirs again; other commits stay)"
            )
            head = git.resolve(f"{commit}~1")
        else:
            lines.append(f"  git rebase --onto {commit[:7]}~1 {commit[:7]}   # drop your release commit {commit[:7]}")
    lines.append(f"  git fetch --tags {remote}   # their release tags")
    lines.append(f"  git pull --rebase {remote} {target}   # their commits; your work rebased on them")
    units = {}
    for t in tags:
        parsed = unit_of_tag(repo, fmt, t)
        if parsed:
            units[parsed[0]] = parsed[1]
    if units:
        pre = {v.pre[0] for v in units.values() if v.pre}
        lines.append(f"  cmfleet release {' '.join(units)}" + (f" --pre {pre.pop()}" if len(pre) == 1 else ""))
    lines.append(f"  cmfleet publish {remote}")
    return "\n".join(lines)


def _merges_after(git: Git, commit: str, head: str) -> int:
    """How many commits follow ``commit`` on ``head``'s first-parent line when every one of them is a merge (0 when
    ``commit`` is not on that line, or a commit of yours follows it)."""
    out = git.run("rev-list", "--first-parent", "--parents", f"{commit}..{head}")
    rows = [line.split() for line in out.splitlines()]
    if not rows or rows[-1][1] != commit or any(len(r) < 3 for r in rows):
        return 0
    return len(rows)
