"""One release model: pins move with releases, the release gate, the unit-graph rules, test-uses, reverts,
dependents' changelogs, renames and removals; in real git repositories (and a fresh copy of this one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cmfleet.discovery import Repository, graph_problems
from cmfleet.release.planner import plan_release

REPO_ROOT = Path(__file__).resolve().parents[4]


def changelog(fleet, unit_dir: str) -> str:
    return (fleet.root / unit_dir / "CHANGELOG.md").read_text()


def fresh_copy(repo_type, tmp_path: Path, message: str):
    """This repository's tracked files in a new git repository: an empty root commit, then one commit of it all."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    root = tmp_path / "fresh"
    root.mkdir()
    repo = repo_type(root)
    repo.git("init", "-q", "-b", "main")
    repo.commit("chore: root")
    for rel in filter(None, listed.stdout.split("\0")):
        if (REPO_ROOT / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / rel, root / rel)
    repo.commit(message)
    return repo


def test_first_release_of_a_fresh_clone_builds_every_module(tmp_path, make_repo):
    # a non-conventional message asks for a patch everywhere: 0.0.1 for cmfleet too, which the shipped pins admit
    fresh = fresh_copy(type(make_repo("unused")), tmp_path, "import the fleet")
    root_commit = fresh.git("rev-list", "--max-parents=0", "HEAD")
    result = fresh.cmfleet("release", "--affected", "--since", root_commit)
    assert result.returncode == 0, result.stderr
    repo = Repository.load(fresh.root)
    assert sorted(fresh.tags()) == sorted(f"{name}/v0.0.1" for name in repo.units)
    config = (fresh.root / "conda_recipes/conda_build_config.yaml").read_text()
    for lib in repo.shared():
        assert f'{lib.name}:\n  - ">=0.0.1"' in config
    assert '"textkit>=0.0.1"' in (fresh.root / "modules/wordcount/pyproject.toml").read_text()
    modules = [u.name for u in repo.modules()]
    built = fresh.cmfleet("build", "--check", *modules)
    assert built.returncode == 0, built.stdout + built.stderr
    assert all(f"{name}: OK" in built.stdout for name in modules)


def test_releasing_a_library_moves_its_pins_in_the_release_commit(fleet):
    fleet.tag("textkit/v0.1.0")
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: tokens")
    result = fleet.cmfleet("release", "textkit")
    assert result.returncode == 0, result.stderr
    changed = set(fleet.git("show", "--name-only", "--format=", "HEAD").split())
    assert changed == {
        "conda_recipes/conda_build_config.yaml",
        "modules/wordcount/pyproject.toml",
        "shared/fmtlib/pyproject.toml",
        "shared/textkit/CHANGELOG.md",
    }
    assert '"textkit>=0.2.0"' in (fleet.root / "shared/fmtlib/pyproject.toml").read_text()
    assert "pins move in (not released): fmtlib, wordcount" in result.stdout
    # a pre-release leaves the pins alone (bump-shared --pre pins it)
    fleet.change("shared/textkit/src/textkit/__init__.py", "fix: x")
    assert fleet.cmfleet("release", "textkit", "--pre", "rc").returncode == 0
    assert '"textkit>=0.2.0"' in (fleet.root / "shared/fmtlib/pyproject.toml").read_text()


def test_a_feat_is_not_breaking_and_dependents_list_what_reached_them(fleet):
    for tag in ("textkit/v0.3.0", "fmtlib/v0.3.0", "wordcount/v1.0.0", "report/v1.0.0"):
        fleet.tag(tag)
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat(split): sentences")
    fleet.change("shared/textkit/src/textkit/__init__.py", "fix: empty input")
    assert fleet.cmfleet("release", "textkit").returncode == 0  # 0.4.0: a minor step asked for by a feat
    result = fleet.cmfleet("release", "wordcount", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "wordcount  1.0.0 -> 1.0.1  [patch]" in result.stdout
    assert "(breaking)" not in result.stdout
    assert "textkit 0.4.0 released since the last release" in result.stdout
    assert "- **split:** sentences (" in result.stdout and "- empty input (" in result.stdout
    # a breaking change is labelled so, and its dependents move a minor step
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat!: drop split")
    assert fleet.cmfleet("release", "textkit").returncode == 0
    assert fleet.cmfleet("release", "wordcount").returncode == 0
    section = changelog(fleet, "modules/wordcount").split("## 1.0.1")[0]
    assert "## 1.1.0" in section and "textkit 0.5.0 (breaking)" in section and "breaking: drop split" in section


def test_revert_of_a_release_commit_asks_for_no_release_and_is_noted(fleet):
    fleet.change("modules/hello/app.py", "feat: greet")
    assert fleet.cmfleet("release", "hello").returncode == 0
    release_sha = fleet.head()
    fleet.git("revert", "--no-edit", release_sha)
    assert "hello/v0.1.0" in fleet.tags()
    status = json.loads(fleet.cmfleet("status", "hello", "--json").stdout)[0]
    assert status["last_release"] == "0.1.0" and status["needs_release"] is False
    result = fleet.cmfleet("release", "hello")
    assert result.returncode == 1 and "ask for no release" in result.stderr
    fleet.change("modules/hello/app.py", "fix: trailing space")
    assert fleet.cmfleet("release", "hello").returncode == 0
    text = changelog(fleet, "modules/hello")
    assert "## 0.1.1" in text and f"The release commit {release_sha[:7]} was reverted" in text


def test_the_gate_refuses_a_failing_check_or_test_and_writes_nothing(fleet):
    fleet.write("modules/hello/app.py", "from compute_modules.annotations import function\n\nimport nosuchlib\n")
    fleet.commit("fix: broken import")
    snapshot = fleet.snapshot()
    result = fleet.cmfleet("release", "hello")
    assert result.returncode == 1
    assert "`cmfleet check` fails for hello" in result.stderr and "Nothing was written." in result.stderr
    assert fleet.snapshot() == snapshot

    fleet.change("modules/hello/app.py", "fix: ok again", MODULE_APP)
    fleet.write("modules/hello/tests/test_app.py", "def test_ping():\n    assert 1 == 2, 'hello is broken'\n")
    fleet.commit("test: a failing test")
    snapshot = fleet.snapshot()
    result = fleet.cmfleet("release", "hello", env={"CMFLEET_NO_TESTS": ""})
    assert result.returncode == 1, result.stdout
    assert "hello: `tox -e module-hello` failed" in result.stderr and "hello is broken" in result.stderr
    assert fleet.snapshot() == snapshot  # the envs live in .git/cmfleet-tox


MODULE_APP = (
    "from compute_modules.annotations import function\n\n\n@function\ndef ping(context, event) -> str:\n"
    "    return 'pong'\n"
)


def test_bump_shared_gates_every_unit_whose_pins_move(fleet):
    fleet.tag("textkit/v0.1.0")
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: tokens")
    fleet.write("modules/wordcount/app.py", "import textkit\n\nthis is not python\n")
    fleet.commit("chore: break wordcount")
    snapshot = fleet.snapshot()
    result = fleet.cmfleet("bump-shared", "textkit")
    assert result.returncode == 1
    assert "`cmfleet check` fails for wordcount" in result.stderr
    assert fleet.snapshot() == snapshot


def test_a_pin_naming_an_unreleased_version_is_refused(fleet):
    path = fleet.root / "modules/wordcount/pyproject.toml"
    path.write_text(path.read_text().replace('"textkit",', '"textkit>=0.9.0",'))
    fleet.commit("fix: pin textkit")
    snapshot = fleet.snapshot()
    result = fleet.cmfleet("release", "wordcount")
    assert result.returncode == 1
    assert "modules/wordcount/pyproject.toml:" in result.stderr and "names 0.9.0, which was never released" in (
        result.stderr
    )
    assert fleet.snapshot() == snapshot
    # releasing textkit in the same run rewrites the pin to the release: accepted
    result = fleet.cmfleet("release", "textkit", "wordcount", "--bump", "patch")
    assert result.returncode == 0, result.stderr
    assert '"textkit>=0.0.1"' in path.read_text()


@pytest.mark.parametrize(
    ("breakage", "message", "location"),
    [
        ("cycle", "dependency cycle between shared libraries: fmtlib -> textkit -> fmtlib", "shared/fmtlib/pyproject"),
        ("module-dep", "module 'report' depends on the module 'hello'", "modules/report/pyproject.toml:"),
        ("name", "named 'hello' but its pyproject names the project 'greeter'", "modules/hello/pyproject.toml:6"),
        ("tag", "tag-pattern '^textkit/v", "shared/fmtlib/pyproject.toml:"),
    ],
)
def test_graph_rules_are_check_findings_and_stop_every_command(fleet, breakage, message, location):
    if breakage == "cycle":
        fleet.add_shared("textkit", deps=("fmtlib",))
    elif breakage == "module-dep":
        fleet.add_module("report", deps=("fmtlib", "hello"))
    elif breakage == "name":
        path = fleet.root / "modules/hello/pyproject.toml"
        path.write_text(path.read_text().replace('name = "hello"', 'name = "greeter"'))
    else:
        path = fleet.root / "shared/fmtlib/pyproject.toml"
        path.write_text(path.read_text().replace("'^fmtlib/v", "'^textkit/v"))
    fleet.commit("chore: break the graph")
    assert any(message in p.message for p in graph_problems(Repository.load(fleet.root)))

    check = fleet.cmfleet("check", "--json")
    assert check.returncode == 1
    found = [f for f in json.loads(check.stdout) if f["rule"] == "unit-graph"]
    assert any(message in f["message"] and f["location"].startswith(location) and f["fix"] for f in found)

    base = fleet.git("rev-list", "--max-parents=0", "HEAD")
    for args in (
        ["list"],
        ["affected", "--since", base],
        ["matrix", "--since", base],
        ["status"],
        ["release", "hello", "--dry-run"],
        ["build", "--check", "hello"],
    ):
        result = fleet.cmfleet(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith(f"Error: {location}") and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    env = dict(os.environ)  # the git identity fixture's
    tox = subprocess.run([sys.executable, "-m", "tox", "l"], cwd=fleet.root, capture_output=True, text=True, env=env)
    assert tox.returncode == 2, tox.stdout + tox.stderr
    assert message in tox.stderr and "Traceback" not in tox.stderr + tox.stdout


def test_test_uses_joins_affected_and_matrix_but_not_releases(fleet):
    path = fleet.root / "shared/fmtlib/pyproject.toml"
    path.write_text(path.read_text() + '\n[tool.cmfleet]\ntest-uses = ["hello"]\n')
    base = fleet.commit("test: fmtlib's tests start hello")
    fleet.change("modules/hello/app.py", "fix: hello")
    result = json.loads(fleet.cmfleet("affected", "--since", base, "--json").stdout)
    assert [u["name"] for u in result["affected"]] == ["fmtlib", "hello", "report"]
    matrix = json.loads(fleet.cmfleet("matrix", "--since", base).stdout)
    assert {e["env"] for e in matrix["shards"][0]["include"]} == {
        "shared-fmtlib",
        "module-hello",
        "artifact-hello",
        "module-report",
        "artifact-report",
    }
    tox = subprocess.run(
        [sys.executable, "-m", "tox", "l", "--no-desc", "-m", "affected", "--cmfleet-since", base],
        cwd=fleet.root,
        capture_output=True,
        text=True,
    )
    assert tox.returncode == 0, tox.stdout + tox.stderr
    assert sorted(tox.stdout.split()) == [
        "artifact-hello",
        "artifact-report",
        "module-hello",
        "module-report",
        "shared-fmtlib",
    ]
    plan = plan_release(Repository.load(fleet.root), {"fmtlib": "auto", "hello": "auto"}, skip_unchanged=True)
    assert [p.unit.name for p in plan.units] == ["hello"]  # a test-time edge asks for no release


def test_rename_moves_a_unit_everywhere_and_keeps_its_releases(fleet):
    fleet.tag("textkit/v0.2.0")
    fleet.tag("wordcount/v1.0.0")
    before = fleet.head()
    result = fleet.cmfleet("rename", "textkit", "txt")
    assert result.returncode == 0, result.stderr
    fleet.commit("refactor: rename textkit to txt")
    moved = json.loads(fleet.cmfleet("affected", "--since", before, "--json").stdout)
    assert moved["removed_units"] == [] and "txt" in [u["name"] for u in moved["affected"]]
    assert not (fleet.root / "shared/textkit").exists()
    assert (fleet.root / "shared/txt/src/txt/__init__.py").exists()
    assert (fleet.root / "conda_recipes/txt/meta.yaml").exists()
    pyproject = (fleet.root / "shared/txt/pyproject.toml").read_text()
    assert 'name = "txt"' in pyproject and "'^(?:txt|textkit)/v(?P<version>" in pyproject
    assert '"--match", "txt/v*", "--match", "textkit/v*"]' in pyproject  # builds read textkit's tags too
    assert 'renamed-from = ["textkit"]' in pyproject
    assert '"txt",' in (fleet.root / "shared/fmtlib/pyproject.toml").read_text()
    assert "import txt" in (fleet.root / "shared/fmtlib/src/fmtlib/__init__.py").read_text()
    assert "txt:\n" in (fleet.root / "conda_recipes/conda_build_config.yaml").read_text()
    assert "Renamed from `textkit`" in changelog(fleet, "shared/txt")
    assert fleet.cmfleet("check").returncode == 0

    status = json.loads(fleet.cmfleet("status", "textkit", "--json").stdout)[0]
    assert status["name"] == "txt" and status["last_release"] == "0.2.0" and status["needs_release"]
    result = fleet.cmfleet("release", "txt")
    assert result.returncode == 0, result.stderr
    assert "txt  0.2.0 -> 0.2.1" in result.stdout
    assert "textkit/v0.2.0" in fleet.tags()  # old tags stay, and count
    removed = fleet.cmfleet("status", "--removed").stdout.strip()
    assert removed == "No removed unit: every unit with release tags has a folder."
    # a name in use, an invalid name: refused, nothing written
    snapshot = fleet.snapshot()
    for new, message in (("hello", "already exists"), ("Bad Name", "contains spaces")):
        result = fleet.cmfleet("rename", "txt", new)
        assert result.returncode == 2 and message in result.stderr
        assert fleet.snapshot() == snapshot


def test_status_removed_lists_units_with_tags_and_no_folder(fleet):
    fleet.tag("hello/v0.3.0")
    fleet.git("rm", "-r", "-q", "modules/hello")
    fleet.commit("feat!: retire hello")
    result = fleet.cmfleet("status", "--removed", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"name": "hello", "last_release": "0.3.0", "tag": "hello/v0.3.0"}]


ECHO_APP = """\
from typing import TypedDict

from compute_modules.annotations import function


class Event(TypedDict):
    a: int


@function
def echo(context, event: dict) -> str:
    return str(event)


@function
def shout(context, event: str) -> str:
    return event.upper()


@function
def typed(context, event: Event) -> int:
    return event["a"]
"""


def test_sdk_schema_flags_event_annotations_the_sdk_cannot_convert(fleet):
    import logging

    from compute_modules.function_registry.function_payload_converter import convert_payload
    from compute_modules.function_registry.function_schema_parser import parse_function_schema

    from cmfleet.checks.live import UNCONVERTIBLE_EVENTS

    # what the rule says of the SDK holds: it accepts a bare dict, publishes no inputs and fails every event
    def echo(context, event: dict) -> str:
        return str(event)

    parsed = parse_function_schema(echo, "echo", [], {})
    assert parsed.function_schema["inputs"] == []
    logging.disable(logging.CRITICAL)
    try:
        with pytest.raises(KeyError):
            convert_payload({"a": 1}, parsed.class_node)
    finally:
        logging.disable(logging.NOTSET)
    assert "dict" in UNCONVERTIBLE_EVENTS and "str" in UNCONVERTIBLE_EVENTS

    fleet.add_module("echo", extra_files={"app.py": ECHO_APP})
    fleet.commit("feat: echo")
    result = fleet.cmfleet("check", "echo", "--json")
    assert result.returncode == 1
    found = {(f["location"], f["rule"]): f for f in json.loads(result.stdout)}
    assert set(found) == {("modules/echo/app.py:11", "sdk-schema"), ("modules/echo/app.py:16", "sdk-schema")}
    assert "as 'dict'" in found[("modules/echo/app.py:11", "sdk-schema")]["message"]
    assert "TypedDict" in found[("modules/echo/app.py:16", "sdk-schema")]["fix"]
