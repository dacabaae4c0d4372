"""Release PRs: `release --pr BRANCH` (the current branch untouched), then merges as GitHub makes them (merge
commit, squash) and `cmfleet tag --merged`; two PRs in sequence, a stale PR refused and re-planned. Real git."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

from cmfleet.release.tagging import parse_trailers


def release_pr(repo, *args: str):
    result = repo.cmfleet("release", *args)
    assert result.returncode == 0, result.stderr
    return result


def pr_parts(stdout: str) -> tuple[str, str]:
    """The PR title and body `release --pr` printed."""
    title = stdout.split("PR title:\n", 1)[1].split("\n", 1)[0]
    body = stdout.split("PR body (markdown):\n", 1)[1].split("\nNext: ", 1)[0]
    return title, body


def merge(repo, branch: str) -> str:
    """A GitHub-style merge commit of ``branch`` into the current branch."""
    repo.git("merge", "-q", "--no-ff", "-m", f"Merge pull request #1 from x/{branch}", branch)
    return repo.head()


def tag_merged(repo, *args: str):
    return repo.cmfleet("tag", "--merged", *args)


def tag_target(repo, tag: str) -> str:
    assert repo.git("cat-file", "-t", tag) == "tag"  # annotated
    return repo.git("rev-parse", f"{tag}^{{commit}}")


def test_two_release_prs_merged_one_after_the_other(fleet):
    fleet.change("modules/hello/app.py", "fix: trim names")
    fleet.change("modules/wordcount/app.py", "feat: count lines")
    base = fleet.head()
    before = fleet.snapshot()

    hello = release_pr(fleet, "hello", "--pr", "release/hello")
    assert fleet.snapshot() == before  # branch, index, files and tags as they were
    assert fleet.git("rev-parse", "release/hello~1") == base
    message = fleet.git("log", "-1", "--format=%B", "release/hello")
    assert message.startswith("release: hello 0.0.1\n")
    assert parse_trailers(message) == (["hello/v0.0.1"], base)
    trailers = fleet.git("log", "-1", "--format=%(trailers:key=Cmfleet-Release,valueonly)", "release/hello")
    assert trailers.split() == ["hello/v0.0.1"]  # real git trailers
    assert fleet.git("show", "--name-only", "--format=", "release/hello").split() == ["modules/hello/CHANGELOG.md"]
    title, body = pr_parts(hello.stdout)
    assert title == "release: hello 0.0.1"
    assert "| hello | module | unreleased → 0.0.1 | patch | `hello/v0.0.1` |" in body
    assert "### hello 0.0.1" in body and "trim names" in body and "count lines" not in body
    assert parse_trailers(body) == (["hello/v0.0.1"], base)

    words = release_pr(fleet, "wordcount", "--pr", "release/wordcount", "--json")
    data = json.loads(words.stdout)
    assert data["pr"]["branch"] == "release/wordcount" and data["tags"] == ["wordcount/v0.1.0"]
    assert "| wordcount | module | unreleased → 0.1.0 | minor | `wordcount/v0.1.0` |" in data["pr"]["body"]
    assert fleet.snapshot() == before

    nothing = tag_merged(fleet)
    assert nothing.returncode == 0 and "Nothing to tag" in nothing.stdout
    assert fleet.tags() == []

    first = merge(fleet, "release/hello")
    status = json.loads(fleet.cmfleet("status", "hello", "--json").stdout)
    assert [(p["tag"], p["problem"]) for p in status[0]["tag_problems"]] == [("hello/v0.0.1", "pending")]
    assert status[0]["tag_problems"][0]["fix"].startswith("cmfleet tag --merged")
    created = tag_merged(fleet)
    assert created.returncode == 0, created.stderr
    assert f"Created hello/v0.0.1 on {first[:7]}" in created.stdout
    assert fleet.tags() == ["hello/v0.0.1"] and tag_target(fleet, "hello/v0.0.1") == first
    assert json.loads(fleet.cmfleet("status", "hello", "--json").stdout)[0]["tag_problems"] == []
    again = tag_merged(fleet)  # idempotent
    assert again.returncode == 0 and "Nothing to tag" in again.stdout and fleet.tags() == ["hello/v0.0.1"]

    second = merge(fleet, "release/wordcount")
    out = tag_merged(fleet, "--format", "github")
    assert out.returncode == 0, out.stderr
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert lines["count"] == "1"
    entry = {"tag": "wordcount/v0.1.0", "unit": "wordcount", "version": "0.1.0", "kind": "module"}
    entry |= {"path": "modules/wordcount", "commit": second}
    assert json.loads(lines["tags"]) == [entry]
    # a job started by the pushed tag itself describes it the same way
    pushed = fleet.cmfleet("tag", "--pushed", "wordcount/v0.1.0", "--format", "github")
    assert pushed.returncode == 0 and pushed.stdout == out.stdout
    unknown = fleet.cmfleet("tag", "--pushed", "v1.0.0")
    assert unknown.returncode == 2 and "not a release tag of a unit" in unknown.stderr
    assert fleet.tags() == ["hello/v0.0.1", "wordcount/v0.1.0"]
    assert tag_target(fleet, "wordcount/v0.1.0") == second
    assert tag_target(fleet, "hello/v0.0.1") == first


def test_squash_merged_release_pr_is_tagged_from_its_description(fleet):
    fleet.change("modules/hello/app.py", "feat: greet")
    title, body = pr_parts(release_pr(fleet, "hello", "--pr", "release/hello").stdout)
    # GitHub's squash merge: one new commit on main, the PR title and description as its message
    fleet.git("merge", "-q", "--squash", "release/hello")
    fleet.git("commit", "-q", "-m", f"{title} (#7)", "-m", body)
    squash = fleet.head()
    assert fleet.git("rev-list", "--count", "HEAD") == "3"  # the release commit itself is not in main
    result = tag_merged(fleet)
    assert result.returncode == 0, result.stderr
    assert fleet.tags() == ["hello/v0.1.0"] and tag_target(fleet, "hello/v0.1.0") == squash
    assert "Nothing to tag" in tag_merged(fleet).stdout


def test_dry_run_and_bad_branch_names_write_nothing(fleet):
    fleet.change("modules/hello/app.py", "fix: x")
    before = fleet.snapshot()
    branches = fleet.git("branch", "--list")
    dry = release_pr(fleet, "hello", "--pr", "release/hello", "--dry-run")
    assert "PR title:" in dry.stdout and "Cmfleet-Release: hello/v0.0.1" in dry.stdout
    for name, why in (("release/hello..x", "not a valid branch name"), ("main", "already exists")):
        bad = fleet.cmfleet("release", "hello", "--pr", name)
        assert bad.returncode == 2 and why in bad.stderr, bad.stderr
    assert fleet.snapshot() == before and fleet.git("branch", "--list") == branches


def test_stale_release_pr_is_refused_then_replanned(tmp_path, fleet):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    fleet.git("remote", "add", "origin", str(remote))
    fleet.git("push", "-q", "-u", "origin", "main")
    fleet.change("modules/hello/app.py", "fix: trim names")
    release_pr(fleet, "hello", "--pr", "release/hello")
    # while the PR is open, a feature lands on main: the PR's 0.0.1 and its changelog no longer describe hello
    feature = fleet.change("modules/hello/extra.py", "feat: a new function")
    merge(fleet, "release/hello")
    fleet.git("push", "-q", "origin", "main")

    refused = tag_merged(fleet)
    assert refused.returncode == 1
    assert "hello/v0.0.1" in refused.stderr and "stale" in refused.stderr
    assert f"{feature[:7]} feat: a new function" in refused.stderr
    assert "nothing was created" in refused.stderr and fleet.tags() == []

    # the re-plan, command by command as printed (the PR branch pushed; its merge stands in for GitHub's)
    block = refused.stderr.split("Re-plan on top of the current branch", 1)[1].split("\n", 1)[1]
    new_branch = None
    for line in block.splitlines():
        command = line.split("#", 1)[0].strip()
        for part in command.split("&&"):
            args = shlex.split(part)
            if args[0] == "cmfleet":
                result = fleet.cmfleet(*args[1:])
                new_branch = args[args.index("--pr") + 1]
            else:
                result = subprocess.run(args, cwd=fleet.root, capture_output=True, text=True, env=dict(os.environ))
            assert result.returncode == 0, (part, result.stdout, result.stderr)
    assert new_branch and new_branch != "release/hello"
    merged = merge(fleet, new_branch)
    result = tag_merged(fleet)
    assert result.returncode == 0, result.stderr
    assert "skipped hello/v0.0.1: a later release commit releases hello" in result.stdout
    assert fleet.tags() == ["hello/v0.1.0"] and tag_target(fleet, "hello/v0.1.0") == merged


def test_release_pr_merged_twice_is_tagged_once_and_the_others_still_are(fleet):
    fleet.change("modules/hello/app.py", "feat: greet")
    title, body = pr_parts(release_pr(fleet, "hello", "--pr", "release/hello").stdout)
    fleet.change("modules/wordcount/app.py", "fix: count")
    release_pr(fleet, "wordcount", "--pr", "release/wordcount")
    fleet.git("merge", "-q", "--squash", "release/hello")
    fleet.git("commit", "-q", "-m", f"{title} (#7)", "-m", body)
    squash = fleet.head()
    assert tag_merged(fleet).returncode == 0 and tag_target(fleet, "hello/v0.1.0") == squash
    # the same PR branch merged again: its release commit arrives too, naming the same tag
    merge(fleet, "release/hello")
    merged = merge(fleet, "release/wordcount")
    result = tag_merged(fleet)
    assert result.returncode == 0, result.stderr
    assert f"hello/v0.1.0: already on {squash[:7]}, which carries the same release: done" in result.stdout
    assert f"Created wordcount/v0.0.1 on {merged[:7]}" in result.stdout
    assert fleet.tags() == ["hello/v0.1.0", "wordcount/v0.0.1"] and tag_target(fleet, "hello/v0.1.0") == squash
    assert all(not row["tag_problems"] for row in json.loads(fleet.cmfleet("status", "--json").stdout))
    again = tag_merged(fleet)
    assert again.returncode == 0 and "Nothing to tag" in again.stdout


def test_second_pr_for_the_same_version_is_refused(fleet):
    fleet.change("modules/hello/app.py", "fix: one")
    fleet.change("modules/wordcount/app.py", "fix: count")
    release_pr(fleet, "hello", "--pr", "release/a")
    release_pr(fleet, "wordcount", "--pr", "release/wordcount")
    # a second person opens their own PR: run within the same second by the same identity, `release --pr` would
    # write the very same commit object (same tree, parent, message, dates), i.e. one PR, not two
    other = {"GIT_AUTHOR_NAME": "Second Releaser", "GIT_COMMITTER_NAME": "Second Releaser"}
    assert fleet.cmfleet("release", "hello", "--pr", "release/b", env=other).returncode == 0
    assert fleet.git("rev-parse", "release/a") != fleet.git("rev-parse", "release/b")
    for branch in ("release/a", "release/b"):
        assert parse_trailers(fleet.git("log", "-1", "--format=%B", branch))[0] == ["hello/v0.0.1"]
    first = merge(fleet, "release/a")
    assert tag_merged(fleet).returncode == 0
    # both PRs wrote the same changelog section: git conflicts; someone merges keeping main's side
    fleet.git("merge", "-q", "--no-ff", "-X", "ours", "-m", "Merge pull request #2", "release/b")
    # an unrelated release PR merged after it: the conflict does not keep it from being tagged
    words = merge(fleet, "release/wordcount")
    result = tag_merged(fleet)
    assert result.returncode == 1
    assert f"hello/v0.0.1 already exists on {first[:7]}" in result.stderr
    assert "the other tags were created: wordcount/v0.0.1" in result.stderr
    assert f"Created wordcount/v0.0.1 on {words[:7]}" in result.stdout
    assert fleet.tags() == ["hello/v0.0.1", "wordcount/v0.0.1"] and tag_target(fleet, "hello/v0.0.1") == first
    assert tag_target(fleet, "wordcount/v0.0.1") == words
    again = tag_merged(fleet)  # still refused, nothing more to create
    assert again.returncode == 1 and "nothing was created" in again.stderr


def readme_flows(repo_root) -> list[list[str]]:
    """The command lines of the README's two publishing blocks (direct flow, PR flow), comments kept as lines."""
    text = (repo_root / "shared/cmfleet/README.md").read_text(encoding="utf-8")
    section = text.split("### Publishing a release", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("\n", 1)[1] for b in section.split("```bash")[1:]]
    return [[line for line in b.split("```", 1)[0].splitlines() if line.strip()] for b in blocks]


def run_line(repo, line: str):
    command = line.split("  #", 1)[0].strip()
    args = shlex.split(command)
    if args[0] == "cmfleet":
        return repo.cmfleet(*args[1:])
    return subprocess.run(args, cwd=repo.root, capture_output=True, text=True, env=dict(os.environ))


def with_remote(tmp_path, fleet) -> str:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    fleet.git("remote", "add", "origin", str(remote))
    fleet.git("push", "-q", "-u", "origin", "main")
    return str(remote)


def remote_tag_commits(remote: str) -> dict[str, str]:
    out = subprocess.run(
        ["git", "--git-dir", remote, "for-each-ref", "--format=%(refname:strip=2) %(*objectname)", "refs/tags"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split() for line in out.splitlines())


def test_readme_direct_flow_works_as_shown(tmp_path, fleet, repo_root):
    direct, _ = readme_flows(repo_root)
    remote = with_remote(tmp_path, fleet)
    fleet.change("modules/hello/app.py", "fix: as in the README")
    for line in direct:
        result = run_line(fleet, line)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
    main = subprocess.run(["git", "--git-dir", remote, "rev-parse", "main"], capture_output=True, text=True).stdout
    assert remote_tag_commits(remote) == {"hello/v0.0.1": main.strip()} == {"hello/v0.0.1": fleet.head()}


def test_readme_pr_flow_works_as_shown(tmp_path, fleet, repo_root):
    _, pr = readme_flows(repo_root)
    remote = with_remote(tmp_path, fleet)
    fleet.change("modules/hello/app.py", "fix: as in the README")
    fleet.change("modules/wordcount/app.py", "feat: as in the README")
    fleet.git("push", "-q", "origin", "main")
    for line in pr:
        if line.startswith("#"):  # the merge on GitHub
            branch = fleet.git("branch", "--list", "release/*").strip()
            merge(fleet, branch)
            fleet.git("push", "-q", "origin", "main")
            continue
        result = run_line(fleet, line)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
    merged = fleet.head()
    assert remote_tag_commits(remote) == {"hello/v0.0.1": merged, "wordcount/v0.1.0": merged}


def test_shared_library_release_pr_and_a_dependent_planned_before_it(fleet):
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: tokenize")
    fleet.change("modules/wordcount/app.py", "fix: count")
    before = fleet.snapshot()
    result = fleet.cmfleet("bump-shared", "textkit", "--bump", "minor", "--pr", "release/textkit")
    assert result.returncode == 0, result.stderr
    assert fleet.snapshot() == before
    changed = fleet.git("show", "--name-only", "--format=", "release/textkit").split()
    assert "conda_recipes/conda_build_config.yaml" in changed and "shared/textkit/CHANGELOG.md" in changed
    message = fleet.git("log", "-1", "--format=%B", "release/textkit")
    assert parse_trailers(message)[0] == ["textkit/v0.1.0"]
    # a wordcount release planned before textkit's merged: it was decided without textkit 0.1.0
    release_pr(fleet, "wordcount", "--pr", "release/wordcount")

    lib_merge = merge(fleet, "release/textkit")
    assert tag_merged(fleet).returncode == 0
    assert tag_target(fleet, "textkit/v0.1.0") == lib_merge
    merge(fleet, "release/wordcount")
    refused = tag_merged(fleet)
    assert refused.returncode == 1 and "wordcount/v0.0.1" in refused.stderr
    assert "release: textkit 0.1.0" in refused.stderr  # the library's release commit, named as the change
    assert fleet.tags() == ["textkit/v0.1.0"]


def test_rebase_merged_release_pr_is_tagged_on_its_copy(fleet):
    fleet.change("modules/hello/app.py", "fix: one")
    release_pr(fleet, "hello", "--pr", "release/hello")
    fleet.change("modules/report/app.py", "fix: elsewhere meanwhile")  # another unit: the release is still current
    # GitHub's "rebase and merge": the PR's commit replayed on main as a new commit with the same message
    fleet.git("cherry-pick", "release/hello")
    copy = fleet.head()
    assert copy != fleet.git("rev-parse", "release/hello")
    result = tag_merged(fleet)
    assert result.returncode == 0, result.stderr
    assert fleet.tags() == ["hello/v0.0.1"] and tag_target(fleet, "hello/v0.0.1") == copy


def test_reverted_release_is_not_tagged(fleet):
    """A release PR merged then reverted (`git revert -m 1` of the merge, `git revert` of a squash) is not tagged;
    a later release of the unit is."""
    fleet.change("modules/hello/app.py", "feat: greet")
    fleet.change("modules/wordcount/app.py", "fix: count")
    release_pr(fleet, "hello", "--pr", "release/hello")
    title, body = pr_parts(release_pr(fleet, "wordcount", "--pr", "release/wordcount").stdout)
    merge(fleet, "release/hello")
    fleet.git("revert", "--no-edit", "-m", "1", "HEAD")
    merge_revert = fleet.head()
    fleet.git("merge", "-q", "--squash", "release/wordcount")
    fleet.git("commit", "-q", "-m", f"{title} (#8)", "-m", body)
    fleet.git("revert", "--no-edit", "HEAD")
    squash_revert = fleet.head()

    dry = tag_merged(fleet, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"skipped hello/v0.1.0: reverted by {merge_revert[:7]}: not tagged" in dry.stdout
    assert f"skipped wordcount/v0.0.1: reverted by {squash_revert[:7]}: not tagged" in dry.stdout
    assert "Would create" not in dry.stdout
    result = tag_merged(fleet)
    assert result.returncode == 0 and fleet.tags() == []
    assert all(not row["tag_problems"] for row in json.loads(fleet.cmfleet("status", "--json").stdout))

    # released again by a new PR: that release is tagged
    fleet.change("modules/hello/app.py", "fix: greet politely")
    release_pr(fleet, "hello", "--pr", "release/hello-again")
    again = merge(fleet, "release/hello-again")
    result = tag_merged(fleet)
    assert result.returncode == 0, result.stderr
    assert fleet.tags() == ["hello/v0.1.0"] and tag_target(fleet, "hello/v0.1.0") == again
