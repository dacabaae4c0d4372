"""Release PRs (as release-please makes them): the release commit on a new branch, a PR title and markdown body.

The commit is written with git's plumbing into a temporary index (``hash-object``, ``update-index``,
``write-tree``, ``commit-tree``), so the checked-out branch, the index and the working tree stay untouched; the
branch ref is created last, so a failure leaves no branch. No tag is made: after the PR merges,
``cmfleet tag --merged`` creates the tags its trailers describe (:mod:`cmfleet.release.tagging`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cmfleet.release.planner import ReleaseError, ReleasePlan
from cmfleet.release.tagging import render_trailers
from cmfleet.repo.git import Git, GitError

if TYPE_CHECKING:
    from cmfleet.discovery import Repository


@dataclass
class ReleasePR:
    branch: str
    commit: str
    base: str
    title: str
    body: str

    def as_json(self) -> dict[str, str]:
        return {"branch": self.branch, "commit": self.commit, "base": self.base, "title": self.title, "body": self.body}


def check_branch_name(git: Git, branch: str) -> None:
    """Refuse an invalid or existing branch name (exit 2), before anything is planned or written."""
    if branch.startswith("-") or not git.ok("check-ref-format", "--branch", branch):
        raise ReleaseError(f"--pr {branch!r} is not a valid branch name (see `git check-ref-format`)", code=2)
    if git.ok("rev-parse", "-q", "--verify", f"refs/heads/{branch}"):
        raise ReleaseError(
            f"--pr {branch}: the branch already exists; choose another name, or delete it (git branch -D {branch})",
            code=2,
        )


def pr_title(plan: ReleasePlan) -> str:
    """The PR title: the release commit's subject."""
    return plan.message.splitlines()[0]


def pr_body(plan: ReleasePlan) -> str:
    """The PR description: a table of units and versions, each unit's changelog section, and the trailers."""
    lines = ["## Release", "", "| unit | kind | version | level | tag |", "|---|---|---|---|---|"]
    for p in plan.units:
        last = str(p.analysis.last.version) if p.analysis.last else "unreleased"
        lines.append(f"| {p.unit.name} | {p.unit.kind} | {last} → {p.next} | {p.kind} | `{p.tag}` |")
    for e in plan.edits:
        lines.append("")
        lines.append(f"- `{e.path.relative_to(plan.root).as_posix()}`: {e.summary}")
    for p in plan.units:
        lines += ["", f"### {p.unit.name} {p.next}", ""]
        section = p.section.rstrip("\n").splitlines()
        body = section[1:] if section and section[0].startswith("## ") else section  # the version heading
        lines += [line.replace("### ", "#### ", 1) if line.startswith("### ") else line for line in body]
    lines += [
        "",
        "---",
        "Merging this PR releases these units: `cmfleet tag --merged` (CI, on the target branch) then creates the",
        "annotated tags of the table on the commit that merged it. The hidden lines below name them (a squash merge",
        "that uses this description keeps them).",
        "",
        "<!--",
        render_trailers(plan.tags, plan.base).rstrip("\n"),
        "-->",
    ]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def write_release_branch(repo: Repository, plan: ReleasePlan, branch: str, git: Git | None = None) -> ReleasePR:
    """Commit ``plan`` on a new ``branch`` starting at HEAD, leaving HEAD, the index and the working tree as they
    were; returns the PR's branch, commit, title and body."""
    git = git or Git(repo.root)
    check_branch_name(git, branch)
    base = git.head()
    fd, index = tempfile.mkstemp(prefix="cmfleet-pr-index.")
    os.close(fd)
    try:
        env = {"GIT_INDEX_FILE": index}
        _git(git, env, "read-tree", base)
        for f in plan.files():
            rel = f.path.relative_to(repo.root).as_posix()
            blob = git.run("hash-object", "-w", "--stdin", "--path", rel, input=f.new).strip()
            mode = _mode(git, base, rel)
            _git(git, env, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{rel}")
        tree = _git(git, env, "write-tree").strip()
        commit = git.run("commit-tree", tree, "-p", base, input=plan.message).strip()
    finally:
        Path(index).unlink(missing_ok=True)
    git.run("branch", branch, commit)
    return ReleasePR(branch, commit, base, pr_title(plan), pr_body(plan))


def _mode(git: Git, commit: str, rel: str) -> str:
    """The file mode of ``rel`` at ``commit`` (100644 for a new file)."""
    out = git.run("ls-tree", commit, "--", rel).split()
    return out[0] if out else "100644"


def _git(git: Git, env: dict[str, str], *args: str) -> str:
    """Run git with extra environment (the temporary index); a failure raises GitError."""
    proc = subprocess.run(
        ["git", *args], cwd=git.root, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C", **env}
    )
    if proc.returncode != 0:
        raise GitError(f"`git {' '.join(args)}` failed in {git.root}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def finish_pr(repo: Repository, plan: ReleasePlan, branch: str, dry_run: bool, as_json: bool) -> None:
    """``release --pr BRANCH``: print the plan, write the branch (unless ``dry_run``), print the PR."""
    import click

    from cmfleet.cli import emit_json

    if dry_run:
        pr = ReleasePR(branch, "", plan.base or "", pr_title(plan), pr_body(plan))
    else:
        pr = write_release_branch(repo, plan, branch)
    if as_json:
        emit_json({**plan.as_json(), "dry_run": dry_run, "pr": pr.as_json()})
        return
    after = "Tags (made after the merge by `cmfleet tag --merged`):"
    click.echo(plan.describe(dry_run).replace("Annotated tags:", after))
    if not dry_run:
        click.echo(f"\nCommitted {pr.commit[:7]} on the new branch {branch} (on {plan.branch} nothing changed).")
    click.echo(f"\nPR title:\n{pr.title}\n\nPR body (markdown):\n{pr.body}")
    click.echo(
        "Next: git push -u origin "
        + branch
        + ", open the PR (e.g. gh pr create --base "
        + plan.branch
        + " --head "
        + branch
        + " --title '<title>' --body-file <body>); after the merge, CI on "
        + plan.branch
        + " runs `cmfleet tag --merged`."
    )
