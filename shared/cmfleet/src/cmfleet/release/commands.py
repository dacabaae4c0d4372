"""Built-in plugin: the release commands ``affected``, ``matrix``, ``release``, ``status`` and ``bump-shared``
(and ``publish``, ``tag`` and ``base-ref`` from :mod:`cmfleet.release.publish_commands`).

Thin: each parses its options, calls the library in ``cmfleet.release`` and prints. Library errors become
``Error: ...`` on stderr with exit code 2 (bad input: unknown ref, unit, malformed tag or version) or 1 (a
release refused: dirty tree, failing checks, detached HEAD, existing tag).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from cmfleet.hookspecs import hookimpl

if TYPE_CHECKING:
    from cmfleet.discovery import Repository
    from cmfleet.release.planner import ReleasePlan
    from cmfleet.repo.affected import AffectedResult

F = TypeVar("F", bound=Callable[..., Any])

_SINCE_HELP = "Base git ref: changes in REF...HEAD count (env CMFLEET_SINCE)."


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the library's errors into ``Error: ...`` and an exit code."""
    from cmfleet.cli import EXIT_FAILED, EXIT_USAGE, fail
    from cmfleet.discovery import DiscoveryError
    from cmfleet.release.pins import PinError
    from cmfleet.release.planner import ReleaseError
    from cmfleet.release.publish import PublishError
    from cmfleet.release.versions import VersionError
    from cmfleet.repo.git import GitError
    from cmfleet.repo.interrupt import Interrupted

    try:
        yield
    except Interrupted as exc:  # a release stopped by a signal says what it left (release.planner.apply_plan)
        fail(str(exc), exc.exit_code)
    except PublishError as exc:
        fail(str(exc), exc.code)
    except ReleaseError as exc:
        fail(str(exc) + ("\nNothing was written." if exc.code == EXIT_FAILED else ""), exc.code)
    except (GitError, VersionError, PinError, DiscoveryError) as exc:
        fail(str(exc), EXIT_USAGE)


@contextmanager
def _interruptible(what: str) -> Iterator[None]:
    """Ctrl-C while a release is planned (checks, tox envs): one line and exit 130 instead of click's
    ``Aborted!``; nothing is written before the plan is complete."""
    from cmfleet.cli import fail

    try:
        yield
    except KeyboardInterrupt:
        fail(f"the {what} was interrupted (SIGINT) before anything was written; nothing was changed", 130)


def _affected(since: str | None, uncommitted: bool) -> tuple[Repository, AffectedResult]:
    from cmfleet.cli import EXIT_USAGE, fail, load_repository
    from cmfleet.repo.affected import affected

    if since is None and not uncommitted:
        fail("give --since REF (or CMFLEET_SINCE), --uncommitted, or both", EXIT_USAGE)
    repo = load_repository()
    with _errors():
        return repo, affected(repo, since, uncommitted=uncommitted)


def _nothing_affected(since: str | None, uncommitted: bool, files: int) -> str:
    """The one line printed when no unit is affected."""
    spans = (f"since {since}" if since else "", "in the working tree" if uncommitted else "")
    where = " and ".join(w for w in spans if w)
    return f"No unit is affected {where} ({files} changed file(s) in no unit)" if files else f"No change {where}"


@click.command("affected")
@click.option("--since", metavar="REF", envvar="CMFLEET_SINCE", help=_SINCE_HELP)
@click.option("--uncommitted", is_flag=True, help="Also count staged, unstaged and untracked files.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--explain", is_flag=True, help="Show the chain that made each unit affected.")
def affected_command(since: str | None, uncommitted: bool, as_json: bool, explain: bool) -> None:
    """Units changed since REF, plus every unit depending on them (transitively).

    Example: cmfleet affected --since origin/main --explain
    """
    from cmfleet.cli import emit_json

    _, result = _affected(since, uncommitted)
    if as_json:
        emit_json(result.as_json())
        return
    if not result.units:
        # stdout stays a list of names for scripts (an empty one); the log says why it is empty
        click.echo(_nothing_affected(since, uncommitted, len(result.files)), err=True)
        return
    if not explain:
        for name in result.units:
            click.echo(name)
        return
    span = f"{since}...HEAD" if since else "HEAD"
    click.echo(
        f"{len(result.units)} unit(s) affected by {len(result.files)} changed file(s) in {span}"
        + (" and the working tree" if uncommitted else "")
        + " ('a -> b' means a depends on b):"
    )
    width = max((len(n) for n in result.units), default=0)
    for unit in result.units.values():
        click.echo(f"  {unit.name:<{width}}  {unit.kind:<6}  {unit.explain()}")
    if result.unowned:
        shown = ", ".join(result.unowned[:10]) + (" ..." if len(result.unowned) > 10 else "")
        click.echo(f"Not in any unit (affect nothing): {shown}")
    if result.removed:
        click.echo(f"Removed units: {', '.join(result.removed)}")


@click.command("matrix")
@click.option("--since", metavar="REF", envvar="CMFLEET_SINCE", help=_SINCE_HELP)
@click.option("--uncommitted", is_flag=True, help="Also count the working tree.")
@click.option("--format", "fmt", type=click.Choice(["github", "json"]), default="json", show_default=True)
@click.option("--shard-size", type=click.IntRange(1), default=256, show_default=True, help="Entries per matrix.")
@click.option("--shard", type=click.IntRange(0), default=None, help="Print only this shard (0-based).")
def matrix_command(since: str | None, uncommitted: bool, fmt: str, shard_size: int, shard: int | None) -> None:
    """The tox envs of affected units as a CI matrix (GitHub Actions fromJSON), sharded past --shard-size.

    --format github prints $GITHUB_OUTPUT lines: matrix={"include":[{"env":...,"unit":...}]}, count=N, shards=K.
    Past --shard-size (GitHub allows 256 jobs) each entry runs several envs (env "module-a,module-b") unless
    --shard picks one shard. --format json prints every shard.

    Example: cmfleet matrix --since origin/main --format github >> "$GITHUB_OUTPUT"
    """
    from cmfleet.cli import EXIT_USAGE, emit_json, fail
    from cmfleet.release import matrix

    if fmt == "github" and shard_size > matrix.GITHUB_MAX_JOBS:
        fail(
            f"--shard-size {shard_size}: GitHub Actions runs at most {matrix.GITHUB_MAX_JOBS} jobs per matrix",
            EXIT_USAGE,
        )
    _, result = _affected(since, uncommitted)
    items = matrix.entries(result)
    if not items:  # the matrix itself goes to a file or a script: the log says why it is empty
        click.echo(f"{_nothing_affected(since, uncommitted, len(result.files))}: an empty matrix", err=True)
    if fmt == "json":
        emit_json(matrix.json_matrix(items, shard_size, shard))
        return
    for key, value in matrix.github_outputs(items, shard_size, shard).items():
        click.echo(f"{key}={value}")


def _bump_option(default: str | None = "auto") -> Callable[[F], F]:
    return click.option(
        "--bump",
        default=default,
        show_default=default is not None,
        metavar="auto|major|minor|patch|X.Y.Z|X.Y.ZrcN",
        help="auto: from conventional commits; or a level; or an explicit version (a pre-release too: 1.3.0rc1).",
    )


def _pre_option(what: str) -> Callable[[F], F]:
    return click.option(
        "--pre",
        metavar="a|b|rc",
        help=f"Make {what} a PEP 440 pre-release: the next version plus aN, bN or rcN (1.3.0rc1, then 1.3.0rc2); "
        "a later release without --pre finalises it (1.3.0).",
    )


def _validate_pre(pre: str | None) -> None:
    from cmfleet.cli import EXIT_USAGE, fail
    from cmfleet.release.versions import VersionError, check_pre_label

    if pre is not None:
        try:
            check_pre_label(pre)
        except VersionError as exc:
            fail(str(exc), EXIT_USAGE)


def _validate_bump(bump: str) -> None:
    from cmfleet.cli import EXIT_USAGE, fail
    from cmfleet.release.versions import BUMP_LEVELS, Version, VersionError

    if bump in ("auto", *BUMP_LEVELS):
        return
    try:
        Version.parse(bump)
    except VersionError as exc:
        fail(f"--bump {bump!r}: use auto, major, minor, patch or a version ({exc})", EXIT_USAGE)


def _check_pr_branch(repo: Repository, pr_branch: str | None) -> None:
    """Refuse a bad --pr branch name before anything is planned."""
    if pr_branch is not None:
        from cmfleet.release.pr import check_branch_name
        from cmfleet.repo.git import Git

        check_branch_name(Git(repo.root), pr_branch)


_no_tests_option = click.option(
    "--no-tests",
    is_flag=True,
    envvar="CMFLEET_NO_TESTS",
    help="Skip the tox envs of the units released or re-pinned (cmfleet check still runs); env CMFLEET_NO_TESTS=1.",
)


def _finish(repo: Repository, plan: ReleasePlan, dry_run: bool, as_json: bool, pr_branch: str | None = None) -> None:
    from cmfleet.cli import emit_json
    from cmfleet.release.planner import apply_plan

    if pr_branch is not None:
        from cmfleet.release.pr import finish_pr

        with _errors():
            finish_pr(repo, plan, pr_branch, dry_run, as_json)
        return
    if as_json:
        data = plan.as_json()
        data["dry_run"] = dry_run
        if not dry_run:
            with _errors():
                data["commit"] = apply_plan(repo, plan)
        emit_json(data)
        return
    click.echo(plan.describe(dry_run))
    if dry_run:
        return
    with _errors():
        sha = apply_plan(repo, plan)
    click.echo(f"\nCommitted {sha[:7]} on {plan.branch} and tagged {', '.join(plan.tags)}.")
    click.echo("Publish with: cmfleet publish   (one atomic push of the branch and its tags)")


@click.command("release")
@click.argument("names", nargs=-1)
@_bump_option()
@_pre_option("every release")
@click.option("--affected", "use_affected", is_flag=True, help="Release every affected unit that has changes.")
@click.option("--since", metavar="REF", envvar="CMFLEET_SINCE", help="With --affected: " + _SINCE_HELP)
@click.option("--dry-run", is_flag=True, help="Print exactly what would happen; write nothing.")
@_no_tests_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--pr", "pr_branch", metavar="BRANCH", help="Write the release commit on a new BRANCH for a release PR.")
def release_command(
    names: tuple[str, ...],
    bump: str,
    pre: str | None,
    use_affected: bool,
    since: str | None,
    dry_run: bool,
    no_tests: bool,
    as_json: bool,
    pr_branch: str | None,
) -> None:
    """Release units: next version from conventional commits, CHANGELOG.md section, one commit, annotated tags.

    feat -> minor, fix/perf -> patch, '!' or BREAKING CHANGE -> major (minor while at 0.x); a shared library
    released since (or now) -> patch, minor if that release was breaking (a feat never is). Releasing a shared
    library moves its pins (conda_build_config.yaml, dependents' pyproject) in the same commit. --pre rc (or a,
    b) makes 1.3.0rc1, then 1.3.0rc2; releasing without --pre finalises (1.3.0). Refuses, writing nothing, on a
    dirty tree, a detached HEAD, an existing tag, a version not above the last, a pre-release below an existing
    one, a pin naming an unreleased version, or a unit released or re-pinned that fails `cmfleet check` or its
    tox env (--no-tests skips the envs).

    --pr BRANCH writes the release commit on a new branch (the current one stays as it is), creates no tag, and
    prints the PR's title and markdown body; after the merge `cmfleet tag --merged` creates the tags.

    Examples: cmfleet release hello --dry-run; cmfleet release hello --pre rc;
    cmfleet release --affected --since origin/main; cmfleet release hello --pr release/hello
    """
    from cmfleet.cli import EXIT_USAGE, fail, load_repository
    from cmfleet.release.planner import plan_release, refuse_in_progress
    from cmfleet.repo.git import Git

    _validate_bump(bump)
    _validate_pre(pre)
    if use_affected == bool(names):
        fail("give unit names or --affected --since REF (not both)", EXIT_USAGE)
    given = click.get_current_context().get_parameter_source("since")
    if since is not None and not use_affected and given is ParameterSource.COMMANDLINE:
        # CMFLEET_SINCE, set for a whole CI job, is no request: only a --since typed here is refused
        fail(
            f"--since goes with --affected: `cmfleet release --affected --since {since}`, or name the units", EXIT_USAGE
        )
    repo = load_repository()
    with _errors(), _interruptible("release"):
        refuse_in_progress(Git(repo.root))
        _check_pr_branch(repo, pr_branch)
        if use_affected:
            from cmfleet.repo.affected import affected

            if since is None:
                fail("--affected needs --since REF (or CMFLEET_SINCE)", EXIT_USAGE)
            chosen = affected(repo, since).names()
            if not chosen:
                click.echo(f"No unit is affected since {since}; nothing to release.")
                return
            plan = plan_release(repo, dict.fromkeys(chosen, bump), skip_unchanged=True, pre=pre, run_tests=not no_tests)
        else:
            plan = plan_release(repo, dict.fromkeys(names, bump), pre=pre, run_tests=not no_tests)
    _finish(repo, plan, dry_run, as_json, pr_branch)


@click.command("status")
@click.argument("names", nargs=-1)
@click.option("--removed", is_flag=True, help="List units that have release tags but no folder any more.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--remote", metavar="REMOTE", help="Compare tags with REMOTE (default: the upstream's, else origin).")
@click.option("--offline", is_flag=True, help="Do not ask the remote (orphan tags are still reported).")
def status_command(names: tuple[str, ...], removed: bool, as_json: bool, remote: str | None, offline: bool) -> None:
    """Per unit: last release, pending pre-release, the version it builds as, commits since, shared libraries and
    their versions, whether it needs a release; then release tags that need a fix: orphans (no branch contains
    them), tags the remote lacks or holds differently, each with the command that fixes it. A unit's former name
    (cmfleet rename) shows the unit.

    Example: cmfleet status --json; cmfleet status --removed
    """
    from cmfleet.cli import emit_json, load_repository
    from cmfleet.release.status import repository_status
    from cmfleet.release.tag_status import add_tag_problems
    from cmfleet.repo.git import Git

    repo = load_repository()
    if removed:
        from cmfleet.release.rename import removed_units

        with _errors():
            gone = removed_units(repo, Git(repo.root))
        if as_json:
            emit_json(gone)
        else:
            for row in gone:
                click.echo(f"{row['name']}  last release {row['last_release']} ({row['tag']})")
            if not gone:
                click.echo("No removed unit: every unit with release tags has a folder.")
        return
    with _errors():
        busy = Git(repo.root).in_progress()
        rows = repository_status(repo, list(names) or None)
        problems = add_tag_problems(repo, rows, remote, offline)
    if busy is not None:  # first, on stderr for --json (stdout stays JSON)
        click.echo(f"Warning: {busy.describe()}: the rows describe HEAD, not its result; {busy.how}", err=as_json)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"No unit in {repo.root}: nothing to report.")
        return
    from cmfleet.tables import echo_table

    columns = (
        "unit",
        "kind",
        "released",
        "pre-release",
        "version",
        "builds as",
        "commits",
        "shared",
        "release?",
        "why",
    )
    lines = []
    for r in rows:
        shared = ", ".join(f"{d['name']} {d['released'] or '-'}" for d in r["shared"]) or "-"
        needs = (
            f"yes ({r['next_level']})"
            if r["needs_release"] and r["next_level"]
            else ("yes" if r["needs_release"] else "no")
        )
        lines.append(
            (
                r["name"],
                r["kind"],
                r["last_release"] or "-",
                r["pre_release"] or "-",
                r["version"],
                r["builds_as"] or "dev",
                str(r["commits_since"]),
                shared,
                needs,
                "; ".join(r["why"]),
            )
        )
    echo_table(columns, lines)
    for r in rows:
        for u in r["untagged_releases"]:
            click.echo(f"untagged release {r['name']} {u['version']}: {u['detail']}; fix: {u['fix']}")
    for p in problems:
        click.echo(f"{p['problem']} tag {p['tag']}: {p['detail']}; fix: {p['fix']}")


@click.command("bump-shared")
@click.argument("lib")
@click.argument("version", required=False)
@_bump_option(default=None)
@_pre_option("the library's release (and the dependents' with --release-dependents), pinned as >=X.Y.ZrcN,")
@click.option("--release-dependents", is_flag=True, help="Also release every unit depending on LIB.")
@click.option("--dry-run", is_flag=True, help="Print exactly what would happen; write nothing.")
@_no_tests_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--pr", "pr_branch", metavar="BRANCH", help="Write the release commit on a new BRANCH for a release PR.")
def bump_shared_command(
    lib: str,
    version: str | None,
    bump: str | None,
    pre: str | None,
    release_dependents: bool,
    dry_run: bool,
    no_tests: bool,
    as_json: bool,
    pr_branch: str | None,
) -> None:
    """Release a shared library, update its pin everywhere (conda_build_config.yaml, dependents' pyproject),
    and list (or, with --release-dependents, release) the units depending on it.

    Pins name final releases (>=X.Y.Z; the library's pre-releases never move them) unless --pre is given here:
    then the library's pre-release is pinned (>=X.Y.ZrcN) so dependents build and test against it.

    Examples: cmfleet bump-shared textkit --bump minor --dry-run; cmfleet bump-shared textkit 1.2.0;
    cmfleet bump-shared textkit --pre rc --release-dependents
    """
    from cmfleet.cli import EXIT_USAGE, fail, load_repository
    from cmfleet.release.bump import plan_bump_shared
    from cmfleet.release.planner import refuse_in_progress
    from cmfleet.repo.git import Git

    if version and bump:
        fail("give either VERSION or --bump, not both", EXIT_USAGE)
    request = version or bump or "auto"
    _validate_bump(request)
    _validate_pre(pre)
    repo = load_repository()
    with _errors(), _interruptible("release"):
        refuse_in_progress(Git(repo.root))
        _check_pr_branch(repo, pr_branch)
        bumped = plan_bump_shared(
            repo, lib, request, release_dependents=release_dependents, pre=pre, run_tests=not no_tests
        )
    bumped.plan.extra["dependents"] = bumped.dependents
    if not release_dependents and bumped.dependents:
        bumped.plan.notes.append(
            f"  units depending on {lib} (not released; re-run with --release-dependents, or test them with "
            f"`cmfleet affected`): " + ", ".join(f"{n} ({' -> '.join(c)})" for n, c in bumped.dependents.items())
        )
    _finish(repo, bumped.plan, dry_run, as_json, pr_branch)
    if as_json:
        return
    if not bumped.dependents:
        click.echo(f"No unit depends on {lib}.")


@click.command("rename")
@click.argument("old")
@click.argument("new")
@click.option("--dry-run", is_flag=True, help="Print the moves and edits; write nothing.")
def rename_command(old: str, new: str, dry_run: bool) -> None:
    """Rename a module or shared library everywhere: folder, project name, tag pattern, tests, recipe, pins,
    dependents, a changelog note. Its old tags (OLD/vX.Y.Z) still count as its releases. Staged, not committed.

    Example: cmfleet rename payments billing
    """
    from cmfleet.cli import load_repository
    from cmfleet.release.rename import apply_rename, plan_rename
    from cmfleet.repo.git import Git

    repo = load_repository()
    git = Git(repo.root)
    with _errors():
        plan = plan_rename(repo, git, old, new)
        click.echo(plan.describe())
        if dry_run:
            return
        apply_rename(repo, git, plan)
    click.echo(f"\nStaged. Commit with: git commit -m 'refactor: rename {old} to {new}'")


@hookimpl
def cmfleet_register_commands(cli: click.Group) -> None:
    """Register the release commands."""
    from cmfleet.release.publish_commands import COMMANDS

    for command in (
        affected_command,
        matrix_command,
        release_command,
        status_command,
        bump_shared_command,
        rename_command,
        *COMMANDS,
    ):
        cli.add_command(command)
