"""The commands ``publish``, ``tag`` and ``base-ref`` (registered by :mod:`cmfleet.release.commands`). Thin: each
calls :mod:`cmfleet.release.publish`, :mod:`~cmfleet.release.tagging` or :mod:`~cmfleet.release.baseref` and
prints."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from cmfleet.discovery import Repository
    from cmfleet.release.tagging import TagPlan


@click.command("publish")
@click.argument("remote", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def publish_command(remote: str | None, as_json: bool) -> None:
    """Push the current branch and its release tags in one atomic push, then verify the remote holds them.

    REMOTE defaults to the branch's upstream remote, else origin. The tags pushed are the release tags reachable
    from HEAD that REMOTE lacks. If REMOTE rejects the push (someone published first), nothing reaches it, and
    the error lists the commands that re-plan the release on top of theirs (exit 1).

    Example: cmfleet release hello && cmfleet publish origin
    """
    from cmfleet.cli import emit_json, load_repository
    from cmfleet.release.commands import _errors
    from cmfleet.release.publish import publish

    repo = load_repository()
    with _errors():
        result = publish(repo, remote)
    if as_json:
        emit_json(result.as_json())
        return
    if not result.pushed:
        click.echo(f"Nothing to publish: {result.remote}/{result.target} is at {result.commit[:7]} with every tag.")
        return
    tags = f" and {', '.join(result.tags)}" if result.tags else ""
    click.echo(f"Published {result.branch} ({result.commit[:7]}){tags} to {result.remote}/{result.target}.")
    click.echo(f"Verified with git ls-remote: {result.remote} holds them.")


def _tag_entries(repo: Repository, found: list[tuple[str, str, str, str]]) -> list[dict[str, str]]:
    """Matrix entries of tags: ``(tag, unit, version, commit)`` -> {tag, unit, version, kind, path, commit}."""
    return [
        {"tag": t, "unit": u, "version": v, "kind": repo.get(u).kind, "path": repo.get(u).rel, "commit": c}
        for t, u, v, c in found
    ]


def _print_entries(entries: list[dict[str, str]], fmt: str, extra: dict[str, Any] | None = None) -> bool:
    """Print ``entries`` as $GITHUB_OUTPUT lines or JSON; False for text (the caller prints)."""
    from cmfleet.cli import emit_json

    if fmt == "github":
        click.echo(f"tags={json.dumps(entries, separators=(',', ':'))}")
        click.echo(f"count={len(entries)}")
        return True
    if fmt == "json":
        emit_json({"tags": entries, **(extra or {})})
        return True
    return False


@click.command("tag")
@click.option("--merged", is_flag=True, help="Tag the release commits merged into HEAD.")
@click.option("--pushed", "pushed", metavar="TAG", multiple=True, help="Describe existing release tags instead.")
@click.option("--push", "push_remote", metavar="REMOTE", help="With --merged: push the new tags to REMOTE atomically.")
@click.option("--dry-run", is_flag=True, help="Print what would be tagged; create nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True)
def tag_command(merged: bool, pushed: tuple[str, ...], push_remote: str | None, dry_run: bool, fmt: str) -> None:
    """Create the annotated tags that release commits in HEAD's history describe (after a release PR merged).

    Each release commit names its tags in `Cmfleet-Release:` trailers; the tags go on the commit that brought it
    onto this branch (merge commit, squash commit, or the release commit itself). Idempotent: tags already there
    are left alone (also on another commit that names the same release: a PR merged twice), and with no untagged
    release commit nothing happens; a release reverted since (its changelog section is gone) is not tagged.
    Refused (exit 1, after creating the other releases' tags): a release whose units changed on the branch after
    it was planned, or whose tag exists elsewhere; re-plan with a new release PR (it supersedes the refused one).

    --format github prints $GITHUB_OUTPUT lines: tags=[...] (a JSON list of {tag, unit, version, kind, path,
    commit}) and count=N, for a job that builds each new tag. --pushed TAG prints the same for existing tags (a
    job started by a pushed tag).

    Examples: cmfleet tag --merged --dry-run; (CI, on main) cmfleet tag --merged --push origin --format github;
    (CI, on a tag) cmfleet tag --pushed "$GITHUB_REF_NAME" --format github
    """
    from cmfleet.cli import EXIT_FAILED, EXIT_USAGE, fail, load_repository
    from cmfleet.release.commands import _errors
    from cmfleet.release.publish import push_tags
    from cmfleet.release.tagging import create_tags, describe_tags, plan_merged_tags, replan_hint
    from cmfleet.repo.git import Git

    if merged == bool(pushed):
        fail("give --merged or --pushed TAG (one of them)", EXIT_USAGE)
    if pushed and (push_remote or dry_run):
        fail("--push and --dry-run go with --merged", EXIT_USAGE)
    repo = load_repository()
    git = Git(repo.root)
    if pushed:
        with _errors():
            found = describe_tags(repo, git, list(pushed))
        entries = _tag_entries(repo, found)
        if not _print_entries(entries, fmt):
            for e in entries:
                click.echo(f"{e['tag']}: {e['kind']} {e['unit']} {e['version']} on {e['commit'][:7]}")
        return
    with _errors():
        plan = plan_merged_tags(repo, git)
        created = [] if dry_run else create_tags(git, plan)
        if push_remote and created:
            push_tags(git, push_remote, [d.tag for d in created])
    chosen = plan.to_create if dry_run else created
    chosen_tags = []
    for d in chosen:
        # tags to create all name a known unit and version: plan_merged_tags marks the others "unknown"
        assert d.unit is not None and d.version is not None
        chosen_tags.append((d.tag, d.unit, d.version, d.target))
    entries = _tag_entries(repo, chosen_tags)
    decisions = {"dry_run": dry_run, "decisions": [d.as_json() for d in plan.decisions]}
    if not _print_entries(entries, fmt, decisions):
        _print_decisions(plan, entries, dry_run, push_remote)
    if plan.problems:
        lines = [
            f"  {d.tag} (release commit {d.release.commit[:7]}, {d.release.subject}): {d.state}: {d.detail}"
            for d in plan.problems
        ]
        others = ", ".join(e["tag"] for e in entries)
        verb = "would be created" if dry_run else "were created"
        done = f"the other tags {verb}: {others}" if others else "nothing was created"
        hint = replan_hint(plan, git.branch() or "main", git.head())
        fail(f"refused to tag, {done}:\n" + "\n".join(lines) + "\n" + hint, EXIT_FAILED)


def _print_decisions(plan: TagPlan, entries: list[dict[str, str]], dry_run: bool, push_remote: str | None) -> None:
    """The text output of ``tag --merged``: skipped and already-done tags, then the tags created."""
    for d in plan.decisions:
        if d.state in ("superseded", "reverted", "unknown"):
            click.echo(f"skipped {d.tag}: {d.detail}")
        elif d.state == "done" and d.detail:
            click.echo(f"{d.tag}: {d.detail}: done")
    if not entries:
        if not plan.problems:
            click.echo("Nothing to tag: every release commit in HEAD's history has its tags.")
        return
    verb = "Would create" if dry_run else "Created"
    for e in entries:
        click.echo(f"{verb} {e['tag']} on {e['commit'][:7]}")
    if push_remote and not dry_run:
        click.echo(f"Pushed to {push_remote} (atomic) and verified with git ls-remote.")


@click.command("base-ref")
@click.option("--before", metavar="SHA", help="The previous head of a push (github.event.before); may be missing.")
@click.option("--fallback", "fallbacks", metavar="REF", multiple=True, help="Try the merge base with REF next.")
@click.option("--explain", is_flag=True, help="Say on stderr why this base was chosen.")
def base_ref_command(before: str | None, fallbacks: tuple[str, ...], explain: bool) -> None:
    """Print the commit CI should compare HEAD with: the previous head when this clone has it, else the merge base
    with a --fallback ref, else the first commit (works after force pushes and first pushes).

    Example: cmfleet affected --since "$(cmfleet base-ref --before "$BEFORE" --fallback origin/main)"
    """
    from cmfleet.cli import load_repository
    from cmfleet.release.baseref import base_ref
    from cmfleet.release.commands import _errors
    from cmfleet.repo.git import Git

    repo = load_repository()
    with _errors():
        result = base_ref(Git(repo.root), before, list(fallbacks))
    click.echo(result.sha)
    if explain:
        click.echo(f"base {result.sha[:12]}: {result.reason}", err=True)


COMMANDS = (publish_command, tag_command, base_ref_command)
