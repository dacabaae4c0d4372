"""``cmfleet base-ref``: the commit CI compares with, robust to force pushes and first pushes.

GitHub gives a push's previous head as ``github.event.before``. After a force push that commit is usually not in
the clone (nothing reachable holds it), on a branch's first push it is all zeros, and ``cmfleet affected --since``
would stop on an unknown ref. The order tried:

1. ``--before SHA`` when it is a commit here: the merge base of it and HEAD (itself after a fast-forward, the
   last shared commit after a force push whose old head is still known);
2. each ``--fallback REF`` (e.g. ``origin/main``): the merge base of it and HEAD, unless that is HEAD itself
   (then REF already holds everything, and nothing would count as changed);
3. the repository's first commit (every file changed since it counts).
"""

from __future__ import annotations

from dataclasses import dataclass

from cmfleet.repo.git import Git

_NULL = "0" * 40


@dataclass
class BaseRef:
    sha: str
    reason: str


def base_ref(git: Git, before: str | None, fallbacks: list[str]) -> BaseRef:
    """The base commit and why it was chosen (see the module doc)."""
    git.ensure_repo()
    if git.is_shallow():
        from cmfleet.repo.git import GitError

        raise GitError(
            "this is a shallow clone, so no base can be found; fetch the history "
            "(actions/checkout with fetch-depth: 0, or `git fetch --unshallow`)"
        )
    head = git.head()
    skipped = []
    if before and before.strip("0") and not before.startswith("-"):
        if git.ok("cat-file", "-e", f"{before}^{{commit}}"):
            sha = git.merge_base(before, head) if git.ok("merge-base", before, head) else None
            if sha:
                how = "the previous head" if sha == git.resolve(before) else "the merge base with the previous head"
                return BaseRef(sha, f"{how} {before[:12]}")
            skipped.append(f"{before[:12]} shares no history with HEAD")
        else:
            skipped.append(f"the previous head {before[:12]} is not in this clone (a force push?)")
    elif before is not None:
        skipped.append("no previous head (a first push)")
    for ref in fallbacks:
        if not ref or ref.startswith("-") or not git.ok("rev-parse", "-q", "--verify", f"{ref}^{{commit}}"):
            skipped.append(f"{ref or '(empty)'} is not a commit here")
            continue
        if not git.ok("merge-base", ref, head):
            skipped.append(f"{ref} shares no history with HEAD")
            continue
        sha = git.merge_base(ref, head)
        if sha == head:
            skipped.append(f"{ref} already contains HEAD")
            continue
        return BaseRef(sha, f"the merge base with {ref}" + (f" ({'; '.join(skipped)})" if skipped else ""))
    roots = git.run("rev-list", "--max-parents=0", "HEAD").split()
    return BaseRef(roots[-1], "the first commit" + (f" ({'; '.join(skipped)})" if skipped else ""))
