"""A simulated quarter of a team's work in one real git repository: conventional commits, releases, shared-library
updates (one breaking), a refusal, a rename, a removal and a revert. It ends with every pin naming a released
version, every module passing `cmfleet build --check` at its tag, and `status`, `release --dry-run` and
`build --check` giving the same answer about what needs a release."""

from __future__ import annotations

import json
import re

from cmfleet.discovery import Repository
from cmfleet.release.pins import pins


def ok(fleet, *args: str) -> str:
    result = fleet.cmfleet(*args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def refused(fleet, *args: str, code: int = 1) -> str:
    """Run a command that must refuse: exit ``code``, nothing written (files, index, HEAD, tags)."""
    before = fleet.snapshot()
    result = fleet.cmfleet(*args)
    assert result.returncode == code, (args, result.stdout, result.stderr)
    assert fleet.snapshot() == before, args
    return result.stderr


def planned(out: str, unit: str, step: str, level: str | None = None) -> bool:
    """Whether the plan printed by ``release`` has ``unit`` going ``step`` (at ``level``)."""
    tail = rf"\s+\[{re.escape(level)}\]" if level else ""
    return re.search(rf"^  {unit}\s+{re.escape(step)}{tail}", out, re.MULTILINE) is not None


def released_versions(fleet, name: str) -> set[str]:
    return {t.split("/v", 1)[1] for t in fleet.tags() if t.startswith(f"{name}/v")}


def assert_pins_released(fleet) -> None:
    """Every pin of an in-repo library names one of its releases (or >=0.0.0 before its first)."""
    repo = Repository.load(fleet.root)
    for pin in pins(repo):
        aliases = repo.get(pin.lib).renamed_from
        versions = set().union(*(released_versions(fleet, n) for n in (pin.lib, *aliases)))
        assert pin.minimum in versions or pin.minimum == "0.0.0", (pin, versions)


def needs_release(fleet) -> dict[str, set[str]]:
    """What needs a release, asked three ways: status, release --dry-run, build --check (modules)."""
    rows = json.loads(ok(fleet, "status", "--json"))
    status = {r["name"] for r in rows if r["needs_release"]}
    root = fleet.git("rev-list", "--max-parents=0", "HEAD")
    dry = fleet.cmfleet("release", "--affected", "--since", root, "--dry-run", "--json")
    planned = {u["unit"] for u in json.loads(dry.stdout)["units"]} if dry.returncode == 0 else set()
    repo = Repository.load(fleet.root)
    unreleased_builds = set()
    for module in repo.modules():
        built = fleet.cmfleet("build", "--check", module.name)
        if built.returncode != 0:
            assert "not a release build" in built.stderr, built.stdout + built.stderr
            unreleased_builds.add(module.name)
    # a module's build is a release build only when it and every unit in its image need no release
    status_builds = {
        m.name
        for m in repo.modules()
        if m.name in status or any(u.name in status for u in [*repo.closure(m), repo.get("cmcore")])
    }
    return {"status": status, "dry_run": planned, "build": unreleased_builds, "status_builds": status_builds}


def test_a_quarter_of_releases(make_repo):
    fleet = make_repo(toolkit=True)
    fleet.add_module("payments", deps=("textkit",))
    fleet.add_module("slugger", deps=("fmtlib",))
    fleet.add_module("legacy")
    fleet.commit("feat: payments, slugger and legacy")

    # week 1: everything's first release
    units = ["textkit", "fmtlib", "hello", "wordcount", "report", "payments", "slugger", "legacy"]
    ok(fleet, "release", *units, "--bump", "minor")
    assert all(f"{u}/v0.1.0" in fleet.tags() for u in units)
    assert_pins_released(fleet)
    week1 = fleet.head()

    # week 3: a feature in textkit, a fix in hello; release what is affected (one code path: pins move too)
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat(tokens): split on punctuation")
    fleet.change("modules/hello/app.py", "fix: trailing newline")
    out = ok(fleet, "release", "--affected", "--since", week1)
    assert planned(out, "textkit", "0.1.0 -> 0.2.0", "minor") and "(breaking)" not in out
    assert planned(out, "payments", "0.1.0 -> 0.1.1", "patch") and planned(out, "hello", "0.1.0 -> 0.1.1", "patch")
    assert '"textkit>=0.2.0"' in (fleet.root / "modules/payments/pyproject.toml").read_text()
    assert "split on punctuation" in (fleet.root / "modules/payments/CHANGELOG.md").read_text()
    assert_pins_released(fleet)

    # week 5: a breaking change in fmtlib, released with its dependents
    fleet.change("shared/fmtlib/src/fmtlib/__init__.py", "feat!: format() takes a template")
    out = ok(fleet, "bump-shared", "fmtlib", "--release-dependents")
    assert planned(out, "fmtlib", "0.1.1 -> 0.2.0") and planned(out, "slugger", "0.1.1 -> 0.2.0", "minor")
    slugger = (fleet.root / "modules/slugger/CHANGELOG.md").read_text()
    assert "fmtlib 0.2.0 (breaking) released in this release" in slugger and "breaking: format() takes" in slugger
    assert_pins_released(fleet)

    # week 6: refusals write nothing: a dependent that fails its checks, a pin naming an unreleased version
    app = fleet.root / "modules/payments/app.py"
    good_app = app.read_text()
    fleet.change("shared/textkit/src/textkit/__init__.py", "fix: unicode")
    fleet.change("modules/payments/app.py", "chore: wip", "def broken(:\n")
    assert "`cmfleet check` fails for payments" in refused(fleet, "bump-shared", "textkit")
    assert "unknown unit 'ghost'" in refused(fleet, "release", "ghost", code=2)
    fleet.change("modules/payments/app.py", "fix: payments imports again", good_app)
    wordcount = fleet.root / "modules/wordcount/pyproject.toml"
    wordcount.write_text(wordcount.read_text().replace('"textkit>=0.2.0"', '"textkit>=0.9.0"'))
    fleet.commit("fix: wordcount wants textkit 0.9")
    assert "names 0.9.0, which was never released" in refused(fleet, "release", "wordcount")
    ok(fleet, "bump-shared", "textkit")  # moves the pin back to a released version (0.2.1)
    assert '"textkit>=0.2.1"' in wordcount.read_text()
    assert_pins_released(fleet)

    # week 8: payments becomes billing; legacy is retired
    ok(fleet, "rename", "payments", "billing")
    fleet.commit("refactor: rename payments to billing")
    assert "already exists" in refused(fleet, "rename", "billing", "hello", code=2)
    fleet.git("rm", "-r", "-q", "modules/legacy")
    fleet.commit("feat!: retire legacy")
    removed = json.loads(ok(fleet, "status", "--removed", "--json"))
    assert removed == [{"name": "legacy", "last_release": "0.1.0", "tag": "legacy/v0.1.0"}]
    billing = json.loads(ok(fleet, "status", "payments", "--json"))[0]
    assert billing["name"] == "billing" and billing["last_release"] == "0.1.1" and billing["needs_release"]

    # week 10: a release is reverted; the revert asks for no release
    fleet.change("modules/hello/app.py", "feat: greet in French")
    ok(fleet, "release", "hello")
    fleet.git("revert", "--no-edit", "HEAD")
    hello = json.loads(ok(fleet, "status", "hello", "--json"))[0]
    assert hello["last_release"] == "0.2.0" and not hello["needs_release"]

    # before the quarter's last release the three answers agree
    answers = needs_release(fleet)
    # textkit 0.2.1 moved the pins of fmtlib and wordcount (not released then); fmtlib's dependents follow it
    libs_and_modules = {"fmtlib", "billing", "wordcount", "report", "slugger"}
    assert answers["status"] == answers["dry_run"] == libs_and_modules, answers
    assert answers["build"] == answers["status_builds"] == libs_and_modules - {"fmtlib"}, answers

    # the quarter's last release: everything that needs one, then nobody needs one
    root = fleet.git("rev-list", "--max-parents=0", "HEAD")
    out = ok(fleet, "release", "--affected", "--since", root)
    assert planned(out, "billing", "0.1.1 -> 0.1.2")
    answers = needs_release(fleet)
    assert answers == {"status": set(), "dry_run": set(), "build": set(), "status_builds": set()}, answers
    assert_pins_released(fleet)

    # every module builds from its own newest tag
    repo = Repository.load(fleet.root)
    for module in repo.modules():
        tags = sorted(released_versions(fleet, module.name), key=lambda v: [int(x) for x in re.findall(r"\d+", v)])
        fleet.git("checkout", "-q", f"{module.name}/v{tags[-1]}")
        try:
            built = fleet.cmfleet("build", "--check", module.name)
            assert built.returncode == 0, (module.name, built.stdout, built.stderr)
        finally:
            fleet.git("checkout", "-q", "main")
