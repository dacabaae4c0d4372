"""``cmfleet status`` asks git each distinct question once and, in a history without merges, answers the units'
``git log REF..HEAD -- PATHS`` from one reading of the history (``repo.git.reading``). Its rows must be exactly
those of asking git unit by unit: compared here on real repositories with final, pre- and library releases,
commits since, uncommitted changes, and a history with a merge (where git is asked as before)."""

from __future__ import annotations

import contextlib
import json

import pytest

from cmfleet.discovery import Repository
from cmfleet.release import status as status_module
from cmfleet.release.status import repository_status
from cmfleet.repo.git import Git


def _both(root) -> tuple[list[dict], list[dict]]:
    repo = Repository.load(root)
    fast = repository_status(repo)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(status_module, "reading", contextlib.nullcontext)  # every question to git, unit by unit
        slow = repository_status(Repository.load(root))
    return fast, slow


def _release(fleet, *args: str) -> None:
    result = fleet.cmfleet("release", *args)
    assert result.returncode == 0, (result.stdout, result.stderr)


def _history(fleet) -> None:
    """Releases of every kind and commits after them, on a straight line of commits."""
    _release(fleet, "textkit", "hello", "wordcount", "--bump", "patch")
    fleet.change("modules/hello/app.py", "feat: greet by name")
    _release(fleet, "hello", "--pre", "rc")
    fleet.change("shared/textkit/src/textkit/__init__.py", "fix: a library fix")
    _release(fleet, "textkit")
    fleet.change("modules/report/app.py", "fix: report only")
    fleet.change("shared/fmtlib/src/fmtlib/__init__.py", "feat!: breaking library change")


def test_status_rows_equal_asking_git_unit_by_unit_on_a_straight_history(fleet):
    _history(fleet)
    fleet.write("modules/wordcount/app.py", (fleet.root / "modules/wordcount/app.py").read_text() + "\n# edited\n")
    assert Git(fleet.root).run("rev-list", "--min-parents=2", "--count", "HEAD").strip() == "0"
    fast, slow = _both(fleet.root)
    assert fast == slow
    rows = {r["name"]: r for r in fast}
    assert rows["hello"]["pre_release"] is not None and rows["report"]["commits_since"] >= 1
    assert rows["fmtlib"]["needs_release"] and rows["wordcount"]["needs_release"]


def test_status_rows_equal_asking_git_unit_by_unit_with_a_merge(fleet):
    _history(fleet)
    fleet.git("checkout", "-q", "-b", "side")
    fleet.change("modules/hello/app.py", "fix: on a side branch")
    fleet.git("checkout", "-q", "main")
    fleet.change("modules/wordcount/app.py", "feat: on main meanwhile")
    fleet.git("merge", "-q", "--no-ff", "side", "-m", "Merge branch 'side'")
    assert Git(fleet.root).run("rev-list", "--min-parents=2", "--count", "HEAD").strip() == "1"
    fast, slow = _both(fleet.root)
    assert fast == slow
    assert {r["name"]: r for r in fast}["hello"]["commits_since"] >= 1


def test_names_of_one_unit_give_one_row(fleet):
    """A unit and its former name (cmfleet rename), or a name given twice: one row each, in the order first given."""
    result = fleet.cmfleet("rename", "hello", "greeter")
    assert result.returncode == 0, result.stderr
    fleet.commit("refactor: rename hello to greeter")
    for names, expected in (
        (("greeter", "hello"), ["greeter"]),
        (("hello", "wordcount", "greeter", "wordcount"), ["greeter", "wordcount"]),
        (("wordcount", "hello"), ["wordcount", "greeter"]),
        (("hello", "wordcount", "greeter"), ["greeter", "wordcount"]),
    ):
        status = fleet.cmfleet("status", *names, "--json", "--offline")
        assert status.returncode == 0, status.stderr
        assert [r["name"] for r in json.loads(status.stdout)] == expected, names
        table = fleet.cmfleet("status", *names, "--offline").stdout.splitlines()
        assert [line.split()[0] for line in table[1:]] == expected, table
