"""Release tags that need a fix, for ``cmfleet status``: orphans (no branch contains their commit), tags the remote
lacks or holds as another object, and pending tags (a merged release commit names them; they do not exist yet),
each with the command that fixes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cmfleet.release.publish import (
    PublishError,
    RemoteRefs,
    default_remote,
    local_unit_tags,
    not_above_held,
    remote_refs,
)
from cmfleet.release.tagging import unit_of_tag
from cmfleet.release.versions import TagFormat
from cmfleet.repo.git import Git

if TYPE_CHECKING:
    from cmfleet.discovery import Repository


def tag_problems(
    repo: Repository, remote: str | None, git: Git | None = None, refs: RemoteRefs | None = None
) -> list[dict[str, str]]:
    """Release tags that need a fix: ``orphan`` (no local or remote-tracking branch contains its commit),
    ``unpublished`` (the remote lacks it) and ``differs`` (the remote's tag is another object); each with the
    command that fixes it. ``remote`` None checks orphans only (no network); ``refs``, the remote's refs when already
    read."""
    git = git or Git(repo.root)
    fmt = TagFormat.of(repo)
    ours = local_unit_tags(repo, git)
    refs = refs if refs is not None or not remote else remote_refs(git, remote)
    commits = sorted({t.commit for t in ours.values()})
    unreachable: set[str] = set()
    if commits:
        out = git.run("rev-list", "--stdin", "--not", "--branches", "--remotes", input="\n".join(commits) + "\n")
        unreachable = set(out.split()) & set(commits)
    reachable_from_head = set(git.run("tag", "--list", "--merged", "HEAD").split())
    problems = []
    for name, tag in sorted(ours.items()):
        parsed = unit_of_tag(repo, fmt, name)
        assert parsed is not None  # local_unit_tags keeps only the tags unit_of_tag resolves (same repo and format)
        unit = parsed[0]
        on_remote = refs is not None and name in refs.tags
        if tag.commit in unreachable:
            fix = f"git tag -d {name}" + (f" && git push --delete {remote} {name}" if on_remote else "")
            problems.append(
                {
                    "unit": unit,
                    "tag": name,
                    "problem": "orphan",
                    "detail": f"on {tag.commit[:7]}, which no branch contains (a rejected push or a dropped commit)",
                    "fix": fix,
                }
            )
        elif refs is not None and not on_remote:
            fix = f"cmfleet publish {remote}" if name in reachable_from_head else f"git push {remote} refs/tags/{name}"
            detail = f"{remote} lacks it"
            for _, _, higher, _, where in not_above_held(repo, git, [name], ours, refs):
                detail += f", and it is not above {higher}, which {where}: publish refuses it"
                fix = f"re-plan above {higher}: `cmfleet publish {remote}` prints the commands"
            problems.append({"unit": unit, "tag": name, "problem": "unpublished", "detail": detail, "fix": fix})
        elif refs is not None and refs.tags[name][0] != tag.obj:
            problems.append(
                {
                    "unit": unit,
                    "tag": name,
                    "problem": "differs",
                    "detail": f"{remote} has it on {refs.tags[name][1][:7]}, yours is on {tag.commit[:7]}",
                    "fix": f"git fetch --force {remote} refs/tags/{name}:refs/tags/{name}   # take the remote's",
                }
            )
    return problems


def add_tag_problems(
    repo: Repository, rows: list[dict[str, object]], remote: str | None, offline: bool, git: Git | None = None
) -> list[dict[str, str]]:
    """Add each unit's ``tag_problems`` to its ``cmfleet status`` row; returns the problems of those units.

    The remote (``remote``, else the branch's upstream remote, else ``origin`` when it exists) is asked unless
    ``offline``; a repository without that remote is checked for orphans only."""
    git = git or Git(repo.root)
    if offline:
        remote = None
    elif remote is not None:
        if not git.ok("remote", "get-url", remote) and not git.ok("ls-remote", remote):
            raise PublishError(f"--remote {remote}: no such remote or it cannot be read (see `git remote -v`)", code=2)
    else:
        remote = default_remote(git, git.branch())
        remote = remote if git.ok("remote", "get-url", remote) else None
    refs = remote_refs(git, remote) if remote else None
    found = tag_problems(repo, remote, git, refs) + untagged_releases(repo, git, refs)
    names = {str(r["name"]) for r in rows}
    for row in rows:
        row["tag_problems"] = [p for p in found if p["unit"] == row["name"]]
    return [p for p in found if p["unit"] in names]


def untagged_releases(repo: Repository, git: Git, refs: RemoteRefs | None = None) -> list[dict[str, str]]:
    """``pending`` tags: release commits in HEAD's history name them but they do not exist here (``cmfleet tag
    --merged`` makes them, or refuses a stale or conflicting release). A tag the remote (``refs``) holds was only
    not fetched: its fix is ``git fetch --tags``; unchecked (offline), the detail says the remote may have it."""
    from cmfleet.release.tagging import plan_merged_tags

    problems = []
    for d in plan_merged_tags(repo, git).decisions:
        if d.state not in ("create", "stale", "conflict"):
            continue
        # plan_merged_tags gives these states only to tags of a known unit (it marks the others "unknown")
        assert d.unit is not None
        named = f"release commit {d.release.commit[:7]} names it"
        theirs = refs.tags.get(d.tag) if refs is not None else None
        if d.state == "conflict":
            detail = f"{named}; {d.detail}"
            fix = f"re-plan: cmfleet release {d.unit} --pr <new branch>"
        elif refs is not None and theirs is not None:
            detail = f"{named}; {refs.remote_name} has it (on {theirs[1][:7]}) but this clone has not fetched it"
            fix = f"git fetch --tags {refs.remote_name}"
        else:
            maybe = "" if refs is not None else " (the remote may have it: `git fetch --tags` first)"
            detail = f"{named}; it does not exist here{maybe}"
            if d.state == "create":
                fix = "cmfleet tag --merged   (CI does it on the target branch after a release PR merges)"
            else:
                fix = f"re-plan: cmfleet release {d.unit} --pr <new branch>   ({d.detail})"
        problems.append({"unit": d.unit, "tag": d.tag, "problem": "pending", "detail": detail, "fix": fix})
    return problems
